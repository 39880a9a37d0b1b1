"""``esup audit export``: one case's history with its inclusion proofs, the signed checkpoint they
lead to and the district's verifier key, in one JSON file anyone can check offline
(domain/export_check.py; ``esup audit verify-export``).

A checkpoint is signed first if the log has moved, so the export covers every event up to now.
The export is an officer's read like any other: it is recorded in the access log.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from domain.canonical import canonical_bytes
from domain.case import case_id
from domain.export_check import FORMAT
from projections import merkle as tree_view


def export_case(esup: Any, case_no: str, principal: Any, remote: str | None = None) -> dict[str, Any]:
    events = esup.cases.events(case_no)  # refuses a damaged case (integrity_violation)
    cp = esup.checkpoints.issue()
    leaves = {v: (idx, pos) for v, idx, pos, _ in tree_view.leaves_of(esup.views, str(case_id(case_no)))}
    out = []
    for e in events:
        idx, pos = leaves[e.originator_version]
        out.append({
            "version": e.originator_version, "step": e.STEP.value, "position": pos,
            "body": json.loads(canonical_bytes(e.hash_body(case_no))), "prev_hash": e.prev_hash, "hash": e.hash,
            "leaf_index": idx, "tree_size": cp.size,
            "proof": [base64.b64encode(h).decode() for h in tree_view.inclusion_proof(esup.views, idx, cp.size)],
        })
    esup.access_log.record(principal, "export", case_no, {"format": FORMAT, "events": len(out),
                                                         "checkpoint_size": cp.size}, remote)
    return {"format": FORMAT, "case_no": case_no, "exported_at": esup.clock.now().isoformat(),
            "checkpoint": cp.note, "key": esup.checkpoints.verifier_key(), "events": out}

