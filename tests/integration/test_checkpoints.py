"""The ledger's Merkle tree kept by its view, signed checkpoints, proofs (both stores)."""

from __future__ import annotations

import base64
import random

from domain import merkle, note
from domain.case import CASE_TOPICS
from projections import merkle as tree_view
from services.checkpoints import check_inclusion
from services.demo import build_district, case_steps
from tests.unit.test_case import at


def populate(esup, clock, cases=40, seed=7, chunk=300, year=2008):
    rng = random.Random(seed)
    if year == 2008:
        clock.set(at("2008-01-01 08:00"))
        build_district(esup, rng)
    steps = list(case_steps(esup, cases, rng, year=year))
    for i in range(0, len(steps), chunk):
        part = steps[i:i + chunk]
        clock.set(part[-1][0])
        esup.ingest.report([b for _, b in part])
    esup.runner.catch_up()
    return steps


def ledger_leaves(esup):
    """Every case event's leaf hash, straight from the log (what the view must agree with)."""
    out, start = [], 0
    while True:
        batch = esup.ledger.recorder.select_notifications(start=start, limit=1000, topics=CASE_TOPICS,
                                                          inclusive_of_start=False)
        if not batch:
            return out
        for n in batch:
            e = esup.ledger.mapper.to_domain_event(n)
            out.append((n.id, e, merkle.leaf_hash(bytes.fromhex(e.hash))))
        start = batch[-1].id


def test_the_view_keeps_the_rfc_tree_of_every_case_event_and_proofs_verify(esup, clock):
    populate(esup, clock, cases=30)
    leaves = ledger_leaves(esup)
    hashes = [h for _, _, h in leaves]
    head = tree_view.head(esup.views)
    assert head.size == len(leaves) > 100
    assert head.root == merkle.root(hashes)  # the same tree recomputed from the log
    assert head.position == leaves[-1][0]
    for size in (1, 2, 17, 64, len(hashes) - 1, len(hashes)):
        assert tree_view.root_at(esup.views, size) == merkle.root(hashes[:size])
        for index in {0, size // 2, size - 1}:
            assert tree_view.inclusion_proof(esup.views, index, size) == merkle.inclusion_proof(hashes, index, size)
        for first in {1, size // 3 or 1, size}:
            assert tree_view.consistency_proof(esup.views, first, size) == merkle.consistency_proof(hashes, first, size)


def test_checkpoints_are_signed_recorded_idempotent_and_prove_inclusion_and_consistency(esup, clock):
    populate(esup, clock, cases=12)
    cps = esup.checkpoints
    assert cps.latest() is None
    first = cps.issue()
    assert cps.issue() == first  # the log has not moved: the same checkpoint
    assert cps.origin == "esup.cdgx/ledger"
    body = note.verify_checkpoint(first.note, note.Verifier.parse(cps.verifier_key()), origin="esup.cdgx/ledger")
    assert (body.size, body.root) == (first.size, first.root) and first.size == tree_view.head(esup.views).size
    assert first.note.startswith(f"esup.cdgx/ledger\n{first.size}\n{base64.b64encode(first.root).decode()}\n\n— esup.cdgx/ledger ")
    leaves = ledger_leaves(esup)
    case_no = leaves[0][1].case_no
    answer = cps.inclusion(case_no, 1)
    assert answer["leaf_index"] == 0 and answer["tree_size"] == first.size and check_inclusion(answer)
    # More steps: the log moves, a new checkpoint extends the first.
    more = populate(esup, clock, cases=5, seed=99, year=2009)
    assert more
    second = cps.issue()
    assert second.size > first.size and cps.at_size(first.size) == first and cps.latest() == second
    c = cps.consistency(first.size, second.size)
    assert merkle.verify_consistency(first.size, second.size, first.root, second.root,
                                     [base64.b64decode(h) for h in c["proof"]])
    old = cps.inclusion(case_no, 1, size=first.size)
    assert old["root"] == base64.b64encode(first.root).decode() and check_inclusion(old)
    # Recorded in the ledger, indexed by the view: a rebuild gives them back.
    esup.runner.rebuild(["merkle"])
    assert [c.size for c in cps.all()] == [first.size, second.size]
    assert tree_view.head(esup.views).root == second.root
