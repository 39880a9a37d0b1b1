"""esup verify finds and locates single-row tamperings of the stored case events (both stores).

The short version of ``python -m tools.tamper_trial`` (204 per store): 30 random tamperings per
store, five of each kind (edit a byte, delete a row, delete a case's last event, delete a whole
case, insert a forged row, swap two rows), each one detected and located to case, version and
log position; the store verifies clean again after each is undone.
"""

from __future__ import annotations

import json
import subprocess
import sys

from api.cli import main as cli
from infra.settings import Settings
from tools.tamper_trial import KINDS, RawLedger, build, run_trials


def test_thirty_random_tamperings_are_all_detected_and_located(store_settings):
    esup = build(store_settings, cases=20)
    try:
        result = run_trials(esup, trials=30, seed=11)
    finally:
        esup.close()
    assert result["misses"] == []
    assert result["total"] == {"trials": 30, "detected": 30, "located": 30}
    assert all(result["kinds"][k]["trials"] == 5 for k in KINDS)


def test_esup_verify_exits_non_zero_naming_the_deleted_event_and_the_truncation(tmp_path, capsys):
    settings = Settings(data_dir=tmp_path / "data")
    esup = build(settings, cases=6)
    raw = RawLedger(esup)
    last = raw.case_rows()[-1]
    from projections import merkle as tree_view

    case_no = tree_view.case_numbers(esup.views)[last[1]]
    esup.close()
    assert cli(["--data-dir", str(settings.data_dir), "verify"]) == 0
    assert "0 faults" in capsys.readouterr().out
    from services.system import Esup

    esup = Esup.open(settings)
    RawLedger(esup).delete(last[0])
    esup.close()
    assert cli(["--data-dir", str(settings.data_dir), "verify"]) == 1
    out = capsys.readouterr().out
    assert f"deleted: case {case_no} v{last[2]} log position {last[0]}" in out
    assert "truncated:" in out
    # --json carries every fault; the process exits 1 (run as a real process once).
    done = subprocess.run([sys.executable, "-m", "api.cli", "--data-dir", str(settings.data_dir), "verify", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    faults = json.loads(done.stdout)["faults"]
    assert {(f["kind"], f["case_no"], f["version"]) for f in faults} >= {("deleted", case_no, last[2])}


def test_a_case_rewritten_with_fresh_hashes_passes_its_chain_but_not_the_tree(store_settings):
    """The attack the per-case chain cannot see: an event changed and every later hash of the
    case recomputed, so the chain holds. The signed tree still names each rewritten event."""
    from domain.canonical import chain_hash
    from projections import merkle as tree_view
    from services.ledger_verify import LedgerVerifier

    esup = build(store_settings, cases=8)
    try:
        raw = RawLedger(esup)
        names = tree_view.case_numbers(esup.views)
        rows = [r for r in raw.case_rows()]
        oid = next(r[1] for r in rows if r[2] == 4)
        case_no = names[oid]
        mine = [r for r in rows if r[1] == oid]
        events = esup.cases.events(case_no)
        prev = events[0].hash
        for e in events[1:]:
            if e.originator_version == 2:
                e.__dict__["actor"] = {**e.actor, "staff": "FORGED"}
            e.__dict__["prev_hash"] = prev
            e.__dict__["hash"] = chain_hash(prev, e.hash_body(case_no))
            prev = e.hash
            pos = next(r[0] for r in mine if r[2] == e.originator_version)
            raw.set_state(pos, bytes(esup.ledger.mapper.to_stored_event(e).state))
        assert esup.cases.verify(case_no)["verified"] is True  # the chain alone is fooled
        report = LedgerVerifier(esup.ledger, esup.views, esup.checkpoints).run()
        named = {(f.kind, f.case_no, f.version) for f in report.faults}
        assert named == {("edited", case_no, v) for v in range(2, len(events) + 1)}
    finally:
        esup.close()


def test_the_access_log_is_verified_against_its_own_tree(store_settings):
    from types import SimpleNamespace

    from domain.access import Role
    from services.ledger_verify import LedgerVerifier, verify_access_log

    esup = build(store_settings, cases=2)
    try:
        who = SimpleNamespace(key="k9", role=Role.OFFICER)
        for i in range(5):
            esup.access_log.record(who, "personal_data", f"C{i}", {"path": f"/api/v1/cases/C{i}"}, "10.1.1.1")
        esup.access_checkpoints.issue()
        assert verify_access_log(esup.ledger, esup.views, esup.access_checkpoints) == (5, [])
        raw = RawLedger(esup)
        with raw.sql() as conn:
            rows = conn.execute(f"SELECT {raw.pos}, state FROM {raw.table} WHERE topic LIKE 'esup.access_log:%'"
                                f" ORDER BY {raw.pos}").fetchall()
            (p1, s1), (p3, _) = (rows[1][0], bytes(rows[1][1])), (rows[3][0], None)
            conn.execute(f"UPDATE {raw.table} SET state = {raw.ph} WHERE {raw.pos} = {raw.ph}",
                         (s1.replace(b"10.1.1.1", b"10.1.1.2"), p1))
            conn.execute(f"DELETE FROM {raw.table} WHERE {raw.pos} = {raw.ph}", (p3,))
        entries, faults = verify_access_log(esup.ledger, esup.views, esup.access_checkpoints)
        assert entries == 4
        assert {(f.kind, f.position) for f in faults} == {("access_edited", p1), ("access_deleted", p3)}
        report = LedgerVerifier(esup.ledger, esup.views, esup.checkpoints, access_checkpoints=esup.access_checkpoints).run()
        assert not report.ok and {f.kind for f in report.faults} == {"access_edited", "access_deleted"}
    finally:
        esup.close()
