"""``esup audit plan|draw|assign|finding|close|redraw|report``: audits (抽查) from the command line.

``add_sampling_commands(audit_subparsers)`` adds them to the ``esup audit`` parser (created in
``api/cli_audit.py``, which the audit-log branch extends with ``export`` and ``verify-export``).
The CLI acts as the operator (an admin principal named ``cli``); findings name their reviewer
(``--reviewer KEY_ID``), who must be assigned the case.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _json_arg(text: str) -> Any:
    """JSON given inline, or ``@file.json``."""
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _principal(key: str = "cli"):
    from domain.access import Role
    from services.ingest import Principal

    return Principal(Role.ADMIN, frozenset(), key)


def _print(obj: Any) -> None:
    from api.http import present

    print(json.dumps(present(obj), ensure_ascii=False, indent=2, default=str))


def cmd_audit_sampling(args: argparse.Namespace) -> int:
    from api.cli import _open

    esup = _open(args)
    try:
        audits = esup.audits
        if args.audit_cmd == "plan":
            plan = args.plan if args.plan is not None else {}
            if args.title:
                plan["title"] = args.title
            out = audits.plan(plan, _principal())
            print(f"audit {out['id']} planned: sample of {out['sampling']['size']}")
        elif args.audit_cmd == "draw":
            out = audits.draw(args.audit_id, args.seed, _principal())
            cp = out["population"]["checkpoint"]
            print(f"draw {out['draw']['id']}: {len(out['draw']['sample'])} of {out['population']['size']} cases, "
                  f"checkpoint {cp['size']} {cp['root']}")
            for c in out["cases"]:
                print(f"  {c['case_no']}  {c['department']:<6} {c['item_code']:<10} π={c['probability']}")
            return 0
        elif args.audit_cmd == "assign":
            pool = args.pool
            out = audits.assign(args.audit_id, pool, args.per_case, _principal())
            for case_no, reviewers in out["assignments"].items():
                print(f"  {case_no}: {', '.join(reviewers)}")
            return 0
        elif args.audit_cmd == "finding":
            body = {"case_no": args.case_no, "points": args.points}
            if args.note:
                body["note"] = args.note
            out = audits.finding(args.audit_id, body, _principal(args.reviewer))
        elif args.audit_cmd == "close":
            out = audits.close(args.audit_id, _principal())["results"]
        elif args.audit_cmd == "redraw":
            out = audits.redraw(args.draw_id)
            _print(out)
            print(f"redraw {'MATCHES' if out['matches'] else 'DOES NOT MATCH'} the recorded draw", file=sys.stderr)
            return 0 if out["matches"] else 1
        elif args.audit_cmd == "export-draw":
            doc = audits.export_draw(args.draw_id)
            text = json.dumps(doc, ensure_ascii=False, indent=1)
            if args.output:
                args.output.write_text(text)
                print(f"wrote {args.output}: {len(doc['population'])} cases, sample of {len(doc['sample'])}")
            else:
                print(text)
            return 0
        elif args.audit_cmd == "report":
            from services.audit_reports import render

            fmt = args.format or (args.output.suffix.lstrip(".") if args.output else "html")
            if fmt not in ("html", "pdf", "xlsx"):
                print("esup: the report is html, pdf or xlsx", file=sys.stderr)
                return 2
            content = render(audits.get(args.audit_id), fmt)
            if args.output:
                args.output.write_bytes(content)
                print(f"wrote {args.output} ({len(content)} bytes)")
            else:
                sys.stdout.buffer.write(content)
            return 0
        else:  # pragma: no cover - argparse keeps to the choices
            return 2
        _print(out)
        return 0
    finally:
        esup.close()


def cmd_verify_draw(args: argparse.Namespace) -> int:
    """No database: the exported note, population digest and sample, redone from the file."""
    from domain.audit import verify_draw_export
    from domain.errors import DomainError

    try:
        out = verify_draw_export(json.loads(args.file.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"esup: cannot read the export: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"esup: {exc.code}: {exc.detail}", file=sys.stderr)
        return 2
    for name, ok in out["checks"].items():
        print(f"  {name:<14} {'ok' if ok else 'FAILED'}")
    print(f"draw {out['draw_id']}: {'MATCHES' if out['matches'] else 'DOES NOT MATCH'} (checked offline)")
    return 0 if out["matches"] else 1


def add_sampling_commands(audit_subparsers: Any) -> None:
    a = audit_subparsers.add_parser("plan", help="plan an audit: its population, sample size, design and checklist")
    a.add_argument("plan", type=_json_arg, nargs="?",
                   help='the plan as JSON or @file.json: {"title", "population": {"from", "to", ...}, "sampling", "design"}')
    a.add_argument("--title")
    a = audit_subparsers.add_parser("draw", help="draw the sample: the population fixed at a checkpoint issued now")
    a.add_argument("audit_id")
    a.add_argument("--seed", required=True, help="the seed the commission announced before the draw")
    a = audit_subparsers.add_parser("assign", help="double random: reviewers per case from a pool, with recusal")
    a.add_argument("audit_id")
    a.add_argument("--pool", type=_json_arg, required=True,
                   help='JSON or @file: [{"id": KEY_ID, "name", "departments": [...], "conflicts": [...]}]')
    a.add_argument("--per-case", type=int, default=2)
    a = audit_subparsers.add_parser("finding", help="record a reviewer's checklist for a case")
    a.add_argument("audit_id")
    a.add_argument("case_no")
    a.add_argument("--reviewer", required=True, help="the reviewer's key id (assigned to the case)")
    a.add_argument("--points", type=_json_arg, required=True,
                   help='JSON or @file: {"acceptance": "conforming", "fees": {"result": "deviation", "note": "..."}}')
    a.add_argument("--note")
    a = audit_subparsers.add_parser("close", help="close: deviation rate, upper limit, strata, weighted estimate")
    a.add_argument("audit_id")
    a = audit_subparsers.add_parser("redraw", help="re-derive a recorded draw from the log alone (exit 1 if it differs)")
    a.add_argument("draw_id")
    a = audit_subparsers.add_parser("report", help="the audit's report with the draw's proof (html, pdf or xlsx)")
    a.add_argument("audit_id")
    a.add_argument("--format", choices=["html", "pdf", "xlsx"])
    a.add_argument("-o", "--output", type=Path, help="write to this file (format from its suffix)")
    a = audit_subparsers.add_parser("export-draw", help="a draw with its population and signed checkpoint, to check offline")
    a.add_argument("draw_id")
    a.add_argument("-o", "--output", type=Path)
    a = audit_subparsers.add_parser("verify-draw", help="check an exported draw with no database (exit 1 if it differs)")
    a.add_argument("file", type=Path)
    a.set_defaults(func=cmd_verify_draw)
    for name in ("plan", "draw", "assign", "finding", "close", "redraw", "report", "export-draw"):
        audit_subparsers.choices[name].set_defaults(func=cmd_audit_sampling)
