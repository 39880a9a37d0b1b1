"""The feed's pure parts: envelopes against their JSON Schemas, the day digest, the witness's rules."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from domain import merkle, note, witness
from domain.reconciliation import compare, day_root, merkle_root
from infra import feed_records as fr

STEP = {"topic": "esup.case:Case.Accepted", "originator_id": "abc", "originator_version": 2, "case_no": "C1",
        "payload": {"step": "accepted", "version": 2, "department": "GS", "occurred_at": "2008-09-26T09:30:00+08:00",
                    "recorded_at": "2008-09-26T10:00:00+08:00", "flags": [], "hash": "ab" * 32, "prev_hash": "cd" * 32}}


def test_a_step_round_trips_and_is_keyed_by_its_case():
    key, value, headers = fr.encode(fr.STEP, "CDGX", 42, STEP)
    assert key == b"C1"
    assert dict(headers) == {"esup-schema": b"esup.step/1", "esup-district": b"CDGX", "esup-notification-id": b"42"}
    assert fr.decode(key, value, headers) == {"schema": "esup.step/1", "district": "CDGX", "notification_id": 42, **STEP}
    assert fr.encode(fr.STEP, "CDGX", 42, STEP)[1] == value  # the same event, the same bytes (digests rely on it)


def test_district_records_are_keyed_by_the_district():
    key, value, headers = fr.encode(fr.DIGEST, "CDGX", 9, {"day": "2008-09-26", "count": 0, "root": "", "positions": []})
    assert key == b"CDGX" and fr.decode(key, value, headers)["day"] == "2008-09-26"


@pytest.mark.parametrize("change, message", [
    (lambda b: b.pop("payload"), "lacks payload"),
    (lambda b: b["payload"].pop("hash"), "lacks hash"),
    (lambda b: b.update(originator_version="2"), "must be integer"),
    (lambda b: b.update(notification_id=True), "must be integer"),
    (lambda b: b.update(schema="esup.step/9"), "unknown schema"),
    (lambda b: b.update(case_no=""), "must not be empty"),
])
def test_bad_records_are_refused(change, message):
    key, value, headers = fr.encode(fr.STEP, "CDGX", 42, STEP)
    body = orjson.loads(value)
    change(body)
    with pytest.raises(ValueError, match=message):
        fr.decode(key, orjson.dumps(body), headers)


def test_key_and_headers_must_agree_with_the_value():
    key, value, headers = fr.encode(fr.STEP, "CDGX", 42, STEP)
    with pytest.raises(ValueError, match="key"):
        fr.decode(b"C2", value, headers)
    with pytest.raises(ValueError, match="esup-district"):
        fr.decode(key, value, [(k, b"XJ" if k == "esup-district" else v) for k, v in headers])
    with pytest.raises(ValueError, match="esup-notification-id"):
        fr.decode(key, value, [(k, b"41" if k == "esup-notification-id" else v) for k, v in headers])


def test_every_schema_file_is_a_json_schema_with_its_tag():
    assert set(fr.schemas()) == {fr.STEP, fr.WARNING, fr.ANOMALY, fr.CHECKPOINT, fr.DIGEST, fr.POSITION, fr.RESEND}
    for name, doc in fr.schemas().items():
        assert doc["$schema"].endswith("2020-12/schema") and doc["properties"]["schema"]["const"] == name


def test_the_day_root_is_rfc6962_like_the_audit_toolkit():
    values = [f"record {i}".encode() for i in range(7)]
    assert day_root(values) == merkle.root([merkle.leaf_hash(v) for v in values])
    assert merkle_root([]) == hashlib.sha256(b"").digest()


def test_compare_names_missing_and_extra_positions():
    values = {p: f"v{p}".encode() for p in (3, 5, 8)}
    root = day_root([values[p] for p in (3, 5, 8)]).hex()
    assert compare("D", "2008-09-26", 3, root, [3, 5, 8], list(values.items())).status == "ok"
    report = compare("D", "2008-09-26", 3, root, [3, 5, 8], [(3, values[3]), (8, values[8]), (9, b"x")])
    assert report.status == "mismatch" and report.missing == (5,) and report.extra == (9,)
    changed = compare("D", "2008-09-26", 3, root, [3, 5, 8], [(3, values[3]), (5, b"other"), (8, values[8])])
    assert changed.status == "mismatch" and changed.differing == (3, 5, 8)


LOG = note.Signer("esup.cdgx/ledger", bytes(32))
WITNESS = note.Signer("esup.province/witness", bytes(range(32)))


def _checkpoint(leaves: list[bytes]) -> tuple[str, bytes]:
    root = merkle.root(leaves)
    return note.sign_checkpoint(note.CheckpointBody(LOG.name, len(leaves), root), LOG), root


def test_the_witness_accepts_extensions_and_cosigns():
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(10)]
    first, root4 = _checkpoint(leaves[:4])
    second, _ = _checkpoint(leaves)
    v = LOG.verifier
    assert witness.judge(first, v, LOG.name, None, 0, []).decision == "accept"
    last = witness.Accepted(4, root4, first)
    proof = merkle.consistency_proof(leaves, 4, 10)
    verdict = witness.judge(second, v, LOG.name, last, 4, proof)
    assert verdict.decision == "accept"
    line = witness.cosign(verdict.body.text(), WITNESS, 1222390800)
    assert witness.verify_cosignature(verdict.body.text(), line, WITNESS.verifier)
    assert not witness.verify_cosignature(verdict.body.text().replace("10", "11"), line, WITNESS.verifier)
    assert witness.judge(first, v, LOG.name, last, 4, []).decision == "same"


def test_the_witness_alarms_on_rewritten_history_shrinking_and_bad_signatures():
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(10)]
    first, root4 = _checkpoint(leaves[:4])
    last = witness.Accepted(4, root4, first)
    rewritten = leaves[:2] + [merkle.leaf_hash(b"changed")] + leaves[3:]
    second, _ = _checkpoint(rewritten)
    verdict = witness.judge(second, LOG.verifier, LOG.name, last, 4, merkle.consistency_proof(rewritten, 4, 10))
    assert verdict.decision == "alarm" and verdict.code == "not_an_extension"
    assert verdict.evidence["accepted_note"] == first and verdict.evidence["note"] == second
    other4, _ = _checkpoint(rewritten[:4])
    assert witness.judge(other4, LOG.verifier, LOG.name, last, 4, []).code == "not_an_extension"
    shorter, _ = _checkpoint(leaves[:3])
    assert witness.judge(shorter, LOG.verifier, LOG.name, last, 0, []).code == "shrunk"
    forged = note.sign_checkpoint(note.CheckpointBody(LOG.name, 10, merkle.root(leaves)),
                                  note.Signer(LOG.name, bytes([1]) * 32))
    assert witness.judge(forged, LOG.verifier, LOG.name, last, 4, []).code == "bad_signature"
