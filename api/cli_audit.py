"""``esup audit``: the parser for audit commands. The samples (plan, draw, assign, finding, close,
redraw, report) come from ``api/cli_audits.py``; the audit-log branch adds ``export`` and
``verify-export`` here (``add_audit_commands``)."""

from __future__ import annotations

from typing import Any


def add_audit_commands(sub: Any) -> Any:
    p = sub.add_parser("audit", help="audits (抽查): plan, draw, assign, finding, close, redraw, report")
    audit_sub = p.add_subparsers(dest="audit_cmd", required=True)
    from api.cli_audits import add_sampling_commands

    add_sampling_commands(audit_sub)
    return audit_sub
