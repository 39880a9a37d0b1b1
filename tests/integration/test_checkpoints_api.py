"""The integrity routes over HTTP (both stores): checkpoints, key, proofs, the access log."""

from __future__ import annotations

import base64

from domain import merkle, note
from tests.integration.test_api import api, assert_problem  # noqa: F401  (fixture)
from tests.integration.test_ledger import step, submitted

APPLICANT = {"name": "张三", "id_number": "510101198001011237"}


def cases(api, names=("C1", "C2")):
    for case_no in names:
        r = api("POST", "/api/v1/steps/batch", json=[
            submitted(case_no, applicant=APPLICANT),
            step(case_no, "accepted", "2008-09-26T09:30:00+08:00"),
            step(case_no, "concluded", "2008-09-26T16:00:00+08:00", result="issued"),
        ])
        assert r.status_code == 201, r.text
    api.esup.runner.catch_up()


def test_checkpoints_proofs_and_key_over_http(api):
    assert_problem(api("GET", "/api/v1/checkpoints/latest"), 404, "no_checkpoint")
    assert_problem(api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C1", "version": 1}), 404, "unknown_case")
    cases(api)
    assert_problem(api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C1", "version": 1}), 404, "no_checkpoint")
    assert_problem(api("POST", "/api/v1/checkpoints"), 403, "forbidden_role")  # a department key
    made = api("POST", "/api/v1/checkpoints", key="officer")
    assert made.status_code == 201 and made.json()["size"] == 6
    assert api("POST", "/api/v1/checkpoints", key="admin").status_code == 200  # the log has not moved
    latest = api("GET", "/api/v1/checkpoints/latest", key="province")
    assert latest.status_code == 200 and latest.headers["content-type"].startswith("text/plain")
    key = api("GET", "/api/v1/checkpoints/key", key="province")
    assert key.headers["content-type"].startswith("text/plain")
    verifier = note.Verifier.parse(key.text.strip())
    body = note.verify_checkpoint(latest.text, verifier)
    assert body.size == 6 and body.origin == verifier.name == "esup.esup/ledger"

    proof = api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C2", "version": 2}).json()
    assert proof["leaf_index"] == 4 and proof["tree_size"] == 6
    events = api("GET", "/api/v1/cases/C2/events", key="officer").json()["events"]
    leaf = merkle.leaf_hash(bytes.fromhex(events[1]["hash"]))
    assert base64.b64decode(proof["leaf_hash"]) == leaf
    assert merkle.verify_inclusion(4, 6, leaf, [base64.b64decode(h) for h in proof["proof"]], body.root)
    # Another department learns nothing of the case; bad input is a problem with a stable code.
    assert_problem(api("GET", "/api/v1/proofs/inclusion", key="ds", params={"case_no": "C2", "version": 2}),
                   404, "unknown_case")
    assert_problem(api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C2", "version": 9}), 404, "unknown_event")
    assert_problem(api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C2", "version": 2, "size": 99}),
                   422, "invalid_size")
    assert_problem(api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C2", "version": 2, "size": 3}),
                   422, "not_yet_covered")
    assert_problem(api("GET", "/api/v1/proofs/inclusion", params={"case_no": "C2", "version": "x"}), 422,
                   "invalid_request")

    cases(api, ("C3",))
    second = api("POST", "/api/v1/checkpoints", key="officer").json()
    c = api("GET", "/api/v1/proofs/consistency", params={"from": 6, "to": second["size"]}).json()
    assert c["from_checkpoint"] == latest.text
    assert merkle.verify_consistency(6, 9, body.root, base64.b64decode(second["root"]),
                                     [base64.b64decode(h) for h in c["proof"]])
    assert_problem(api("GET", "/api/v1/proofs/consistency", params={"from": 10}), 422, "invalid_size")
    assert_problem(api("GET", "/api/v1/checkpoints/latest", params={"log": "nope"}), 422, "invalid_query")


def test_officers_reads_are_logged_and_covered_by_the_access_logs_checkpoints(api):
    cases(api, ("C1",))
    assert api("GET", "/api/v1/cases/C1", key="gs").status_code == 200  # a department's own case: not logged
    assert api("GET", "/api/v1/cases/C1", key="province").status_code == 200  # masked: not logged
    assert api("GET", "/api/v1/cases/C1", key="officer").json()["applicant"] == APPLICANT
    assert api("GET", "/api/v1/cases/C1", key="province",
               params={"as_of": "2008-09-26T10:00:00+08:00", "by": "occurred"}).status_code == 200  # a replay
    assert api("GET", "/api/v1/cases/C1/events", key="officer").status_code == 200
    api.esup.runner.catch_up()
    assert_problem(api("GET", "/api/v1/access-log", key="officer"), 403, "forbidden_role")
    entries = api("GET", "/api/v1/access-log", key="admin").json()["entries"]
    assert [(e["action"], e["role"], e["case_no"]) for e in entries] == [
        ("history", "officer", "C1"), ("replay", "province", "C1"), ("personal_data", "officer", "C1")]
    officer_id = api.keys["officer"].split("_")[1]
    assert entries[2]["key"] == officer_id and entries[2]["remote"] == "testclient"
    assert entries[1]["detail"]["as_of"] == "2008-09-26T10:00:00+08:00"
    assert api("GET", "/api/v1/access-log", key="admin", params={"action": "replay"}).json()["entries"] == [entries[1]]
    assert_problem(api("GET", "/api/v1/access-log", key="admin", params={"action": "x"}), 422, "invalid_query")
    # The access log is a tree of its own, signed like the ledger's.
    made = api("POST", "/api/v1/checkpoints", key="admin", params={"log": "access"}).json()
    assert made["size"] == 3
    text = api("GET", "/api/v1/checkpoints/latest", key="admin", params={"log": "access"}).text
    verifier = note.Verifier.parse(api("GET", "/api/v1/checkpoints/key", params={"log": "access"}).text.strip())
    assert note.verify_checkpoint(text, verifier, origin="esup.esup/access").size == 3
