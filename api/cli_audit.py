"""``esup audit ...``: the audit toolkit's commands.

``add_audit_commands(sub)`` creates the ``audit`` parser under the CLI's subparsers and returns
its own subparsers object, so other modules add their commands beside these:

    audit = add_audit_commands(sub)          # in api/cli.py
    p = audit.add_parser("plan", help=...)   # e.g. in the samples module
    p.set_defaults(func=cmd_plan)

Each command's ``func(args) -> int`` is run by ``api.cli.main`` like any other command.

* ``esup audit export CASE_NO [-o FILE]``: the case's history with inclusion proofs, the signed
  checkpoint and the district's verifier key, one JSON file (recorded in the access log);
* ``esup audit verify-export FILE [--key VKEY]``: checks such a file with no database at all;
* ``esup audit checkpoint [--log ledger|access]``: sign the tree head now and print the note;
* the audit samples (抽查): ``plan|draw|assign|finding|close|redraw|report|export-draw|verify-draw``
  from ``api/cli_audits.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_audit_commands(sub: Any) -> Any:
    p = sub.add_parser("audit", help="the audit toolkit: samples (抽查), case exports with proofs, verifying them offline")
    audit = p.add_subparsers(dest="audit_cmd", required=True)

    e = audit.add_parser("export", help="a case's history, inclusion proofs, checkpoint and key in one JSON file")
    e.add_argument("case_no")
    e.add_argument("-o", "--output", type=Path, help="file to write (default CASE_NO.audit.json; - for stdout)")
    e.set_defaults(func=cmd_export)

    c = audit.add_parser("checkpoint", help="sign the log's tree head now (if it moved) and print the signed note")
    c.add_argument("--log", choices=["ledger", "access"], default="ledger")
    c.set_defaults(func=cmd_checkpoint)

    v = audit.add_parser("verify-export", help="check an export file with no database (exit 1 if it does not hold)")
    v.add_argument("file", type=Path)
    v.add_argument("--key", help="the district's verifier key, obtained elsewhere (default: the file's own)")
    v.set_defaults(func=cmd_verify_export)

    from api.cli_audits import add_sampling_commands

    add_sampling_commands(audit)  # plan, draw, assign, finding, close, redraw, report, export-draw, verify-draw
    return audit


def cmd_export(args: argparse.Namespace) -> int:
    import getpass
    import socket
    from types import SimpleNamespace

    from api.cli import _open
    from domain.access import Role
    from services.audit_export import export_case

    esup = _open(args)
    try:
        who = SimpleNamespace(key=f"cli:{getpass.getuser()}", role=Role.ADMIN)
        doc = export_case(esup, args.case_no, who, remote=socket.gethostname())
    finally:
        esup.close()
    text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    path = args.output or Path(f"{args.case_no}.audit.json")
    path.write_text(text, encoding="utf-8")
    print(f"{path}: case {args.case_no}, {len(doc['events'])} events, checkpoint size "
          f"{doc['checkpoint'].splitlines()[1]}")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from api.cli import _open

    esup = _open(args)
    try:
        service = esup.checkpoints if args.log == "ledger" else esup.access_checkpoints
        sys.stdout.write(service.issue().note)
    finally:
        esup.close()
    return 0


def cmd_verify_export(args: argparse.Namespace) -> int:
    from domain.export_check import check_export

    try:
        doc = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{args.file}: cannot be read as JSON: {exc}", file=sys.stderr)
        return 1
    problems = check_export(doc, args.key)
    if problems:
        print(f"{args.file}: does NOT verify")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"{args.file}: verified: case {doc['case_no']}, {len(doc['events'])} events, each in the tree of the "
          f"checkpoint signed by {doc['key'].split('+')[0]}")
    return 0
