"""The OpenAPI document: what a generated client needs to work against this server.

FastAPI derives paths and parameters from the routes; the routes take raw JSON bodies (parsed and
refused by the domain, with stable codes) and answer plain dicts, so their bodies, answers and
refusals are declared here, one table per operation, and merged into the generated document.
``tests/integration/test_openapi.py`` runs schemathesis over the live app against this document:
an answer the document does not describe (status, media type or shape) fails the suite.

An operation missing from the table (a route added later) still gets the bearer scheme and a
``default`` problem response, so the document never claims less than the server does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from domain.steps import Step

PROBLEM = "application/problem+json"


def _t(kind: str | list[str], **kw: Any) -> dict[str, Any]:
    return {"type": kind, **kw}


STR, INT, NUM, BOOL = _t("string"), _t("integer"), _t("number"), _t("boolean")
NSTR, NINT, NNUM, NBOOL = _t(["string", "null"]), _t(["integer", "null"]), _t(["number", "null"]), _t(["boolean", "null"])
INSTANT = _t("string", format="date-time", description="RFC 3339 in China time, e.g. 2008-10-06T10:00:00+08:00")
NINSTANT = _t(["string", "null"], format="date-time")
DUE_DATE = _t(["string", "null"], format="date", description="the last day the deadline covers (the *_due_at "
                                                              "beside it is the instant it ends)")
DATE, NDATE = _t("string", format="date"), _t(["string", "null"], format="date")
ANY_OBJ = _t("object")
RATE = _t(["number", "null"], minimum=0, maximum=100, description="a percentage, 0-100 (null when nothing to count)")


def obj(props: dict[str, Any], required: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required, **kw}


def arr(items: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **kw}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


CODE = _t("string", minLength=1, maxLength=64, pattern=r"^[^\x00-\x1f]+$")
STEP_NAMES = [s.value for s in Step]
LIMIT = obj({"value": _t("integer", minimum=0), "unit": _t("string", enum=["working_days", "working_hours", "calendar_days"])})

SCHEMAS: dict[str, Any] = {
    "Problem": obj({
        "type": STR, "title": STR, "status": INT, "detail": STR,
        "code": _t("string", description="stable refusal code (see README, 'What is refused')"),
        "missing": arr(STR, description="missing_field: every field that is missing"),
        "errors": arr(ANY_OBJ, description="batch_refused: one entry per refused step (index, event_id, code, status, detail)"),
        "stored": INT,
    }, required=["type", "title", "status", "detail", "code"]),
    "Flag": obj({"code": STR, "detail": STR, "detail_zh": STR}, required=["code", "detail"]),
    "Step": obj({
        "event_id": {**CODE, "description": "the source's own event id (idempotency key, per department)"},
        "case_no": _t("string", minLength=1, maxLength=50, description="办件编号"),
        "step": _t("string", enum=STEP_NAMES),
        "occurred_at": {**INSTANT, "description": "ISO 8601 with a UTC offset (business time)"},
        "department": CODE,
        "window": CODE,
        "staff": CODE,
        "item_code": {**CODE, "description": "required on submitted"},
        "data": _t("object", description="step-specific fields: result, reason, amount, score, procedure, granted, "
                                         "value, unit, applicant, comment ..."),
    }, required=["event_id", "case_no", "step", "occurred_at", "department"], additionalProperties=False),
    "StepOutcome": obj({
        "status": _t("string", enum=["created", "duplicate"]), "event_id": STR, "case_no": STR,
        "step": _t("string", enum=STEP_NAMES), "version": INT, "recorded_at": INSTANT, "hash": STR,
        "flags": arr(ref("Flag")), "promised_due_at": NINSTANT, "legal_due_at": NINSTANT, "on_time": NBOOL,
        "promised_due_date": DUE_DATE, "legal_due_date": DUE_DATE,
    }, required=["status", "event_id", "case_no", "step", "version", "recorded_at", "hash", "flags"]),
    "Case": obj({
        "case_no": STR, "item_code": NSTR, "item_version": NINT, "department": STR, "window": NSTR,
        "status": STR, "suspended": BOOL, "version": INT, "submitted_at": NINSTANT, "accepted_at": NINSTANT,
        "promised_due_at": NINSTANT, "legal_due_at": NINSTANT, "concluded_at": NINSTANT, "closed_at": NINSTANT,
        "promised_due_date": DUE_DATE, "legal_due_date": DUE_DATE, "result": {}, "granted": NBOOL, "on_time": NBOOL, "within_legal": NBOOL,
        "suspensions": arr(ANY_OBJ), "extensions": INT, "supplements": INT, "fees": ANY_OBJ, "score": NINT,
        "irregularities": arr(ANY_OBJ), "last_hash": STR, "applicant": _t(["object", "null"]),
        "applicant_kind": NSTR,
    }, required=["case_no", "department", "status", "version", "promised_due_at", "legal_due_at",
                 "promised_due_date", "legal_due_date", "on_time"]),
    "Event": obj({
        "version": INT, "step": STR, "event_id": STR, "occurred_at": INSTANT, "recorded_at": INSTANT,
        "actor": ANY_OBJ, "data": ANY_OBJ, "derived": ANY_OBJ, "flags": arr(ref("Flag")), "prev_hash": STR, "hash": STR,
    }),
    "Item": obj({
        "code": STR, "name": STR, "department": STR, "kind": STR, "legal_limit": ANY_OBJ, "promised_limit": ANY_OBJ,
        "on_the_spot": BOOL, "fee": STR, "version": INT,
    }),
    "ItemInput": obj({
        "name": _t("string", minLength=1), "department": CODE,
        "kind": _t("string", enum=["licence", "non_licence", "service"]),
        "legal_limit": LIMIT, "promised_limit": LIMIT, "on_the_spot": BOOL,
        "fee": _t(["number", "string", "null"], description="yuan; null or 0 for a free item"),
        "valid_from": DATE, "valid_to": DATE,
    }, required=["name", "department", "kind", "legal_limit", "promised_limit"]),
    "Unit": obj({"code": STR}, required=["code"]),
    "UnitInput": obj({"name": _t("string", minLength=1)}, required=[],
                     description="name and the unit's links (center, hall, department, window); a center may "
                                 "set office_hours"),
    "Schedule": obj({"year": INT, "holidays": arr(DATE), "workdays": arr(DATE)}),
    "ScheduleInput": obj({"holidays": arr(DATE), "workdays": arr(DATE)}),
    "Warning": obj({
        "id": NSTR, "case_no": STR, "department": STR, "item_code": NSTR, "level": _t("string", enum=["yellow", "red", "severe"]),
        "rule": STR, "basis": NSTR,
        "status": _t("string", enum=["issued", "answered", "escalated", "closed", "withdrawn", "earned"],
                     description="earned: on the board by business time (by=occurred), never issued (id null)"),
        "threshold_at": INSTANT, "issued_at": NINSTANT, "withdrawn_at": NINSTANT, "clock_stopped_at": NINSTANT,
        "withdrawal": _t(["object", "null"], description="why the system withdrew it: reason and the step (evidence)"), "promised_due_at": NINSTANT, "legal_due_at": NINSTANT,
        "answered_at": NINSTANT, "explanation": NSTR, "escalated_at": NINSTANT, "escalation_due_at": NINSTANT,
        "closed_at": NINSTANT, "history": arr(ANY_OBJ), "promised_due_date": DUE_DATE, "legal_due_date": DUE_DATE,
        "escalation_due_date": DUE_DATE,
    }, required=["id", "case_no", "department", "level", "status", "threshold_at"]),
    "Anomaly": obj({
        "case_no": STR, "type": STR, "type_label": STR, "rule": STR, "rule_label": STR, "reason": STR, "status": STR,
        "department": STR, "window": NSTR, "item_code": NSTR, "occurred_at": NINSTANT, "detected_at": NINSTANT,
        "evidence": {}, "details": {},
    }, required=["case_no", "type", "rule", "reason", "status"]),
    "Policy": _t("object", description='partial warning policy: yellow ({"share": 0.8} | {"before": 1} | null), red, '
                                       "severe (booleans), steps, escalation ({value, unit})",
                 properties={"yellow": _t(["object", "null"]), "red": BOOL, "severe": BOOL, "steps": ANY_OBJ,
                             "escalation": LIMIT}),
}

JSON_OK = "application/json"


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON_OK: {"schema": schema}}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON_OK: {"schema": schema}}}


AUTH = {401: ["missing_key", "missing_bearer", "invalid_key"]}
ROLE = {403: ["forbidden_role"]}
BODY = {413: ["body_too_large"], 422: ["malformed_json", "invalid_body"]}
QUERY = {422: ["invalid_request"]}
STEP_REFUSALS = {
    403: ["forbidden_role", "forbidden_department", "batch_refused"],  # a batch with a step for another department
    404: ["unknown_case"],
    409: ["case_exists", "case_closed", "already_accepted", "already_suspended", "not_suspended", "already_rated",
          "before_submission", "item_mismatch", "extension_unit_mismatch", "event_id_reused"],
    413: ["body_too_large"],
    422: ["malformed_json", "invalid_body", "missing_field", "unknown_field", "invalid_code", "invalid_case_no",
          "unknown_step", "invalid_timestamp", "naive_timestamp", "future_timestamp", "implausible_timestamp",
          "invalid_field", "invalid_amount", "invalid_score", "invalid_limit", "unknown_item", "unknown_department",
          "calendar_unknown", "batch_refused", "batch_too_large", "empty_batch"],
}
WARNING_ACT = {**ROLE, 404: ["unknown_warning"], 409: ["warning_closed", "warning_withdrawn"], **BODY,
               422: ["malformed_json", "invalid_body", "missing_field", "invalid_field", "invalid_timestamp",
                     "naive_timestamp", "invalid_limit"]}


def _merge(*tables: dict[int, list[str]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for t in tables:
        for status, codes in t.items():
            out.setdefault(status, [])
            out[status] += [c for c in codes if c not in out[status]]
    return out


def _unit_ops() -> dict[tuple[str, str], dict[str, Any]]:
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for path in ("centers", "halls", "windows", "departments", "staff"):
        ops[("put", f"/api/v1/{path}/{{code}}")] = {
            "body": ref("UnitInput"), "ok": {200: ref("Unit"), 201: ref("Unit")},
            "problems": _merge(ROLE, BODY, {422: ["invalid_body", "invalid_field", "invalid_code", "unknown_field",
                                                   "unknown_department", "invalid_office_hours", "invalid_date",
                                                   "invalid_timezone", "invalid_request"]}),
        }
        ops[("get", f"/api/v1/{path}")] = {"ok": {200: obj({path: arr(ref("Unit"))})}}
    return ops


WARNING_LIST = obj({"warnings": arr(ref("Warning")), "as_of": INSTANT, "by": _t("string", enum=["recorded", "occurred"])},
                   required=["warnings"])

# -- audits (抽查) ------------------------------------------------------------------------------
AUDIT = obj({"id": STR, "title": STR, "state": _t("string", enum=["planned", "drawn", "assigned", "closed"]),
             "planned_at": INSTANT, "population_criteria": ANY_OBJ, "sampling": ANY_OBJ, "design": ANY_OBJ,
             "checklist": arr(ANY_OBJ), "population": _t(["object", "null"]), "draw": _t(["object", "null"]),
             "cases": arr(ANY_OBJ), "pool": arr(ANY_OBJ), "assignments": ANY_OBJ, "findings": arr(ANY_OBJ),
             "results": _t(["object", "null"]), "closed_at": NINSTANT},
            required=["id", "title", "state", "draw", "results"])
AUDIT_UNKNOWN = {404: ["unknown_audit"]}
AUDIT_ACT = _merge(ROLE, BODY, AUDIT_UNKNOWN, {409: ["audit_state"]})
FINDING = obj({"case_no": STR, "reviewer": STR, "points": ANY_OBJ, "note": NSTR, "recorded_at": INSTANT},
              required=["case_no", "reviewer", "points"])
REPORT_MEDIA = {"text/html": {"schema": STR}, "application/pdf": {"schema": _t("string", format="binary")},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": _t("string", format="binary")}}
AUDIT_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/v1/audits/sample-size"): {
        "ok": {200: obj({"n": INT, "confidence": NUM, "tolerable": NUM, "expected": NUM, "allowed_deviations": INT},
                        required=["n"])},
        "problems": {422: ["invalid_sampling", "missing_field", "invalid_request"]},
        "params": {"confidence": {"description": "0 < c < 1, e.g. 0.95 (or 95%)"},
                   "tolerable": {"description": "tolerable deviation rate, e.g. 0.05"},
                   "expected": {"description": "expected deviation rate, below the tolerable one (default 0)"}},
    },
    ("get", "/api/v1/audits/mine"): {"ok": {200: obj({"cases": arr(ANY_OBJ)})}, "problems": ROLE},
    ("get", "/api/v1/audits/draws/{draw_id}/redraw"): {
        "ok": {200: obj({"draw_id": STR, "audit_id": STR, "matches": BOOL, "checks": ANY_OBJ, "sample": arr(STR),
                         "recorded_sample": arr(STR)}, required=["draw_id", "matches", "checks"])},
        "problems": _merge(ROLE, {404: ["unknown_draw"]}),
    },
    ("post", "/api/v1/audits"): {
        "body": obj({"title": _t("string", minLength=1, maxLength=200),
                     "population": obj({"from": DATE, "to": DATE, "on": _t("string", enum=["concluded", "accepted"]),
                                        "departments": arr(STR), "items": arr(STR), "item_kinds": arr(STR),
                                        "only": _t(["string", "null"], enum=["warnings", "anomalies", "flagged", None])},
                                       required=["from", "to"]),
                     "sampling": obj({"confidence": NUM, "tolerable": NUM, "expected": NUM, "n": INT}, required=[]),
                     "design": obj({"method": _t("string", enum=["simple", "stratified", "weighted"]),
                                    "stratify_by": _t("string", enum=["department", "item_kind"]),
                                    "allocation": _t("string", enum=["proportional", "equal"]),
                                    "weights": ANY_OBJ}, required=[]),
                     "checklist": arr(ANY_OBJ)}, required=["title", "population"]),
        "ok": {201: AUDIT},
        "problems": _merge(ROLE, BODY, {422: ["missing_field", "invalid_field", "unknown_field", "invalid_sampling"]}),
    },
    ("get", "/api/v1/audits"): {"ok": {200: obj({"audits": arr(ANY_OBJ)})}, "problems": ROLE},
    ("get", "/api/v1/audits/{audit_id}"): {"ok": {200: AUDIT}, "problems": _merge(ROLE, AUDIT_UNKNOWN)},
    ("post", "/api/v1/audits/{audit_id}/draw"): {
        "body": obj({"seed": _t("string", minLength=1, maxLength=500)}), "ok": {200: AUDIT},
        "problems": _merge(AUDIT_ACT, {409: ["empty_population"], 422: ["missing_field", "invalid_field",
                                                                        "invalid_sampling"]}),
    },
    ("post", "/api/v1/audits/{audit_id}/assign"): {
        "body": obj({"pool": arr(obj({"id": STR, "name": STR, "departments": arr(STR), "conflicts": arr(STR)},
                                     required=["id"]), minItems=1),
                     "per_case": _t("integer", minimum=1, maximum=10)}, required=["pool"]),
        "ok": {200: AUDIT},
        "problems": _merge(AUDIT_ACT, {409: ["recusal_impossible"], 422: ["missing_field", "invalid_field",
                                                                          "unknown_reviewer"]}),
    },
    ("post", "/api/v1/audits/{audit_id}/findings"): {
        "body": obj({"case_no": STR, "points": ANY_OBJ, "note": STR}, required=["case_no", "points"]),
        "ok": {201: FINDING},
        "problems": _merge(AUDIT_ACT, {403: ["not_assigned"], 422: ["missing_field", "invalid_field", "unknown_field",
                                                                    "not_in_sample"]}),
    },
    ("post", "/api/v1/audits/{audit_id}/close"): {
        "body": obj({"note": STR}, required=[]), "body_required": False, "ok": {200: AUDIT},
        "problems": _merge(ROLE, AUDIT_UNKNOWN, {409: ["audit_state", "findings_incomplete"]}),
    },
    ("get", "/api/v1/audits/{audit_id}/report"): {
        "ok": {200: {"description": "the report with the draw's proof", "content": REPORT_MEDIA}},
        "problems": _merge(ROLE, AUDIT_UNKNOWN, {422: ["invalid_query", "invalid_request"]}),
        "params": {"format": {"enum": ["html", "pdf", "xlsx"]}},
    },
}


# Parallel-approval channels and bundles (并联审批; api/bundles.py).
CHANNEL_PROPS = {"name": STR, "department": CODE, "center": _t(["string", "null"]), "items": arr(CODE, minItems=2),
                 "promised_limit": LIMIT, "legal_limit": LIMIT, "serial_limit": {"anyOf": [LIMIT, _t("null")]}}
SCHEMAS.update({
    "ChannelInput": obj(CHANNEL_PROPS, required=["name", "department", "items", "promised_limit", "legal_limit"]),
    "Channel": obj({"code": STR, **CHANNEL_PROPS, "version": INT, "effective_from": NINSTANT},
                   required=["code", "name", "items", "promised_limit", "legal_limit", "version"]),
    "BundleInput": obj({"event_id": CODE, "bundle_no": _t("string", minLength=1, maxLength=50), "channel": CODE,
                        "occurred_at": INSTANT, "parts": arr(_t("string", minLength=1, maxLength=50), minItems=2),
                        "window": _t(["string", "null"]), "staff": _t(["string", "null"]),
                        "enterprise": _t(["string", "null"]), "project": _t(["string", "null"])},
                       required=["event_id", "bundle_no", "channel", "occurred_at", "parts"]),
    "Bundle": obj({"kind": _t("string", enum=["bundle"]), "bundle_no": STR, "channel": STR, "channel_name": STR,
                   "status": _t("string", enum=["submitted", "accepted", "concluded"]), "version": INT,
                   "submitted_at": INSTANT, "accepted_at": NINSTANT, "promised_due_at": NINSTANT,
                   "legal_due_at": NINSTANT, "concluded_at": NINSTANT, "on_time": NBOOL, "within_legal": NBOOL,
                   "late": BOOL, "late_parts": arr(STR), "open_parts_past_due": arr(STR), "parts_total": INT,
                   "parts_closed": INT, "parts": arr(obj({"case_no": STR, "status": STR}))},
                  required=["kind", "bundle_no", "channel", "status", "late", "parts"]),
})
BUNDLE_ACT = _merge(BODY, {403: ["forbidden_department"], 404: ["unknown_bundle"],
                           409: ["already_accepted", "bundle_closed", "event_id_reused", "contention"],
                           422: ["missing_field", "unknown_field", "invalid_code", "invalid_timestamp",
                                 "naive_timestamp", "future_timestamp", "before_submission"]})
BUNDLE_OPS: dict[tuple[str, str], dict[str, Any]] = {
    ("put", "/api/v1/channels/{code}"): {
        "body": ref("ChannelInput"), "ok": {200: ref("Channel"), 201: ref("Channel")},
        "problems": _merge(ROLE, BODY, {422: ["missing_field", "unknown_field", "invalid_field", "invalid_limit",
                                               "invalid_code", "unknown_department", "unknown_center", "unknown_item",
                                               "invalid_request"]}),
    },
    ("get", "/api/v1/channels"): {"ok": {200: obj({"channels": arr(ref("Channel"))})}},
    ("get", "/api/v1/channels/{code}"): {
        "ok": {200: {"allOf": [ref("Channel"), obj({"versions": arr(ref("Channel"))})]}},
        "problems": {404: ["unknown_channel"]},
    },
    ("post", "/api/v1/bundles"): {
        "body": ref("BundleInput"), "ok": {201: ref("Bundle"), 200: ref("Bundle")},
        "problems": _merge(BODY, {403: ["forbidden_department"], 404: ["unknown_bundle"],
                                  409: ["bundle_exists", "case_exists", "event_id_reused", "part_in_other_bundle"],
                                  422: ["missing_field", "unknown_field", "invalid_code", "invalid_case_no",
                                        "invalid_parts", "unknown_channel", "item_not_in_channel", "invalid_timestamp",
                                        "naive_timestamp", "future_timestamp"]}),
    },
    ("post", "/api/v1/bundles/{bundle_no}/accept"): {
        "body": obj({"event_id": CODE, "occurred_at": INSTANT, "window": _t(["string", "null"]),
                     "staff": _t(["string", "null"])}, required=["event_id", "occurred_at"]),
        "ok": {201: ref("Bundle"), 200: ref("Bundle")}, "problems": BUNDLE_ACT,
    },
    ("get", "/api/v1/bundles"): {
        "ok": {200: obj({"bundles": arr(ANY_OBJ)})}, "problems": {422: ["invalid_query", "invalid_request"]},
        "params": {"status": {"enum": ["submitted", "accepted", "concluded", "open"]},
                   "limit": {"minimum": 1, "maximum": 1000}, "offset": {"minimum": 0, "maximum": 2**31 - 1}},
    },
    ("get", "/api/v1/bundles/alerts"): {"ok": {200: obj({"alerts": arr(ANY_OBJ)})}},
    ("get", "/api/v1/bundles/anomalies"): {"ok": {200: obj({"anomalies": arr(ANY_OBJ), "rules": ANY_OBJ})}},
    ("get", "/api/v1/bundles/{bundle_no}"): {"ok": {200: ref("Bundle")}, "problems": {404: ["unknown_bundle"]}},
    ("get", "/api/v1/metrics/centers"): {
        "ok": {200: obj({"from": NDATE, "to": NDATE, "tiers": arr(ANY_OBJ), "centers": arr(ANY_OBJ)},
                        required=["tiers", "centers"])},
        "problems": {404: ["unknown_center"], 422: ["invalid_query", "invalid_field", "invalid_request"]},
        "params": {"tier": {"enum": ["district", "street", "community"]}, "from": {"format": "date"},
                   "to": {"format": "date"}},
    },
    ("get", "/api/v1/metrics/channels"): {
        "ok": {200: obj({"channels": arr(ANY_OBJ)})}, "problems": {422: ["invalid_query", "invalid_request"]},
        "params": {"from": {"format": "date"}, "to": {"format": "date"}},
    },
}


TEXT_OK = lambda what: {"description": what, "content": {"text/plain": {"schema": STR}}}  # noqa: E731
LOG_PARAM = {"log": {"enum": ["ledger", "access"], "description": "ledger (case events, default) or access (officers' reads)"}}
CHECKPOINT = obj({"size": INT, "root": _t("string", description="base64 RFC 6962 root"), "note": STR,
                  "issued_at": INSTANT, "position": INT})
B64_LIST = arr(_t("string", description="base64 SHA-256"))
INTEGRITY_OPS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/v1/checkpoints/latest"): {
        "ok": {200: TEXT_OK("the signed note (C2SP tlog-checkpoint)")},
        "problems": {404: ["no_checkpoint"], 422: ["invalid_query"]}, "params": LOG_PARAM,
    },
    ("post", "/api/v1/checkpoints"): {
        "body": obj({}, required=[], description="nothing: the tree head is signed as it stands"),
        "body_required": False, "ok": {201: CHECKPOINT, 200: CHECKPOINT},
        "ok_descriptions": {201: "signed and recorded", 200: "the log has not moved: the latest checkpoint"},
        "problems": _merge(ROLE, {422: ["invalid_query"], 500: ["tree_inconsistent"]}), "params": LOG_PARAM,
    },
    ("get", "/api/v1/checkpoints/key"): {
        "ok": {200: TEXT_OK("the verifier key, name+keyid+base64(0x01 and the Ed25519 public key)")},
        "problems": {422: ["invalid_query"]}, "params": LOG_PARAM,
    },
    ("get", "/api/v1/proofs/inclusion"): {
        "ok": {200: obj({"case_no": STR, "version": INT, "leaf_index": INT, "position": INT, "tree_size": INT,
                         "leaf_hash": STR, "root": STR, "proof": B64_LIST, "checkpoint": NSTR})},
        "problems": {404: ["unknown_case", "unknown_event", "no_checkpoint"],
                     422: ["invalid_size", "invalid_version", "not_yet_covered"]},
    },
    ("get", "/api/v1/proofs/consistency"): {
        "ok": {200: obj({"from": INT, "to": INT, "from_root": STR, "to_root": STR, "proof": B64_LIST,
                         "from_checkpoint": NSTR, "to_checkpoint": NSTR})},
        "problems": {404: ["no_checkpoint"], 422: ["invalid_size", "invalid_query"]}, "params": LOG_PARAM,
    },
    ("get", "/api/v1/access-log"): {
        "ok": {200: obj({"entries": arr(obj({
            "index": INT, "position": INT, "id": STR, "at": INSTANT, "key": NSTR, "role": NSTR,
            "action": _t("string", enum=["personal_data", "replay", "export", "history"]), "case_no": NSTR,
            "detail": ANY_OBJ, "remote": NSTR}))})},
        "problems": _merge(ROLE, {422: ["invalid_query"]}),
        "params": {"action": {"enum": ["personal_data", "replay", "export", "history"]}},
    },
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    **BUNDLE_OPS,
    ("post", "/api/v1/steps"): {
        "body": ref("Step"), "ok": {201: ref("StepOutcome"), 200: ref("StepOutcome")}, "problems": STEP_REFUSALS,
        "ok_descriptions": {201: "stored", 200: "the same event_id again: the original outcome"},
    },
    ("post", "/api/v1/steps/batch"): {
        # A batch whose refused steps share one status answers that status with ``batch_refused``.
        "body": arr(ref("Step"), minItems=1),
        "problems": {k: v + (["batch_refused"] if "batch_refused" not in v else []) for k, v in STEP_REFUSALS.items()},
        "ok": {201: obj({"created": INT, "duplicates": INT, "outcomes": arr(ref("StepOutcome"))})} | {
            200: obj({"created": INT, "duplicates": INT, "outcomes": arr(ref("StepOutcome"))})},
    },
    ("get", "/api/v1/cases/{case_no}"): {
        "ok": {200: {"anyOf": [ref("Case"), ref("Bundle")]}},
        "problems": {404: ["unknown_case", "not_yet"], 422: ["invalid_timestamp", "naive_timestamp", "invalid_query",
                                                              "invalid_request"]},
        "params": {"by": {"enum": ["recorded", "occurred"]}, "as_of": {"format": "date-time"}},
    },
    ("get", "/api/v1/cases/{case_no}/events"): {
        "ok": {200: obj({"case_no": STR, "events": arr(ref("Event"))})}, "problems": {404: ["unknown_case"]},
    },
    ("get", "/api/v1/cases/{case_no}/verify"): {
        "ok": {200: obj({"case_no": STR, "events": INT, "verified": BOOL, "first_bad_version": NINT, "head": STR},
                        required=["case_no", "verified"])},
        "problems": {404: ["unknown_case"]},
    },
    ("put", "/api/v1/items/{code}"): {
        "body": ref("ItemInput"), "ok": {200: ref("Item"), 201: ref("Item")},
        "problems": _merge(ROLE, BODY, {422: ["missing_field", "invalid_field", "invalid_limit", "invalid_amount",
                                               "invalid_code", "invalid_date", "invalid_datetime", "naive_datetime",
                                               "unknown_field", "unknown_department", "invalid_request"]}),
    },
    ("get", "/api/v1/items"): {"ok": {200: obj({"items": arr(ref("Item"))})}},
    ("get", "/api/v1/feed/schemas"): {"ok": {200: obj({"schemas": obj({}, additionalProperties=True)})}},
    ("get", "/api/v1/items/{code}"): {
        "ok": {200: {"allOf": [ref("Item"), obj({"versions": arr(ref("Item"))})]}}, "problems": {404: ["unknown_item"]},
    },
    **_unit_ops(),
    ("put", "/api/v1/calendar/{year}"): {
        "body": ref("ScheduleInput"), "ok": {200: ref("Schedule"), 201: ref("Schedule")},
        "problems": _merge(ROLE, BODY, {422: ["invalid_schedule", "invalid_date", "invalid_field", "invalid_request"]}),
    },
    ("get", "/api/v1/calendar/{year}"): {
        "ok": {200: {"allOf": [ref("Schedule"), obj({"source": STR, "office_hours": ANY_OBJ})]}},
        "problems": {404: ["unknown_center"], 422: ["calendar_unknown", "invalid_request"]},
    },
    ("post", "/api/v1/keys"): {
        "body": obj({"role": _t("string", enum=["department", "officer", "province", "admin"]),
                     "departments": arr(CODE), "label": STR}, required=["role"]),
        "ok": {201: obj({"key": STR, "role": STR, "departments": arr(STR)})},
        "problems": _merge(ROLE, BODY, {422: ["invalid_role", "invalid_key", "invalid_field", "missing_field",
                                               "unknown_department"]}),
    },
    ("get", "/api/v1/keys"): {
        "ok": {200: obj({"keys": arr(obj({"id": STR, "role": STR, "departments": arr(STR), "label": NSTR,
                                           "revoked": BOOL}, required=["id", "role", "revoked"]))})},
        "problems": ROLE,
    },
    ("delete", "/api/v1/keys/{public_id}"): {"ok": {}, "problems": _merge(ROLE, {404: ["unknown_key"]})},
    ("get", "/api/v1/sources/refusals"): {
        "ok": {200: obj({"refusals": _t("object", additionalProperties=_t("object", additionalProperties=INT),
                                        description="department -> refusal code -> count")})},
    },
    ("get", "/api/v1/monitor/summary"): {
        "ok": {200: obj({"date": DATE, "today": DATE, "as_of": INSTANT, "position": INT,
                         "counters": obj({"on_time_rate": RATE}, required=["on_time_rate"]),
                         "hourly": arr(ANY_OBJ), "trend": arr(ANY_OBJ), "period_days": INT,
                         "departments": arr(obj({"department": STR, "on_time_rate": RATE, "rank": INT})),
                         "latest_date": NDATE}, required=["date", "counters", "hourly", "trend", "departments"])},
        "problems": {403: ["forbidden_department"], 422: ["invalid_query", "invalid_request"]},
        "params": {"date": {"format": "date"}, "days": {"minimum": 1, "maximum": 92}},
    },
    ("get", "/api/v1/monitor/stream"): {
        "problems": {403: ["forbidden_department"], 422: ["invalid_query", "invalid_position", "invalid_request"]},
        "params": {"backlog": {"minimum": 0, "maximum": 500}, "after": {"pattern": "^[0-9]{0,18}$"}},
    },
    ("get", "/api/v1/warnings"): {
        "ok": {200: WARNING_LIST},
        "problems": {403: ["forbidden_department"], 422: ["invalid_timestamp", "naive_timestamp", "invalid_query",
                                                          "invalid_field", "invalid_request"]},
        "params": {"level": {"description": "yellow, red or severe (comma-separated)"},
                   "as_of": {"format": "date-time"}, "limit": {"minimum": 1, "maximum": 10000},
                   "by": {"enum": ["recorded", "occurred"],
                          "description": "with as_of: as recorded then (default), or by business time"},
                   "offset": {"minimum": 0, "maximum": 2**31 - 1}},
    },
    ("get", "/api/v1/warnings/{warning_id}"): {"ok": {200: ref("Warning")}, "problems": {404: ["unknown_warning"]}},
    ("post", "/api/v1/warnings/{warning_id}/answer"): {
        "body": obj({"explanation": _t("string", minLength=1)}), "ok": {200: ref("Warning")}, "problems": WARNING_ACT,
    },
    ("post", "/api/v1/warnings/{warning_id}/escalate"): {
        "body": obj({"note": STR, "due_at": INSTANT, "within": LIMIT}, required=[]),
        "ok": {200: ref("Warning")}, "problems": WARNING_ACT,
    },
    ("post", "/api/v1/warnings/{warning_id}/close"): {
        "body": obj({"note": STR}, required=[]), "body_required": False, "ok": {200: ref("Warning")},
        "problems": WARNING_ACT,
    },
    ("get", "/api/v1/warning-policy"): {
        "ok": {200: obj({"center": NSTR, "item_code": NSTR, "policy": ref("Policy"), "default": ref("Policy"),
                         "overrides": ANY_OBJ})},
        "problems": {404: ["unknown_center", "unknown_item"]},
    },
    ("put", "/api/v1/warning-policies/centers/{code}"): {
        "body": ref("Policy"), "problems": _merge(ROLE, BODY, {404: ["unknown_center"], 422: ["invalid_policy"]}),
        "ok": {s: obj({"scope": STR, "code": STR, "override": ANY_OBJ, "created": BOOL, "changed": BOOL,
                       "replanned_cases": INT}) for s in (200, 201)},
    },
    ("put", "/api/v1/warning-policies/items/{code}"): {
        "body": ref("Policy"), "problems": _merge(ROLE, BODY, {404: ["unknown_item"], 422: ["invalid_policy"]}),
        "ok": {s: obj({"scope": STR, "code": STR, "override": ANY_OBJ, "created": BOOL, "changed": BOOL,
                       "replanned_cases": INT}) for s in (200, 201)},
    },
    ("get", "/api/v1/anomalies"): {
        "ok": {200: obj({"position": INT, "total": INT, "counts": _t("object", additionalProperties=INT),
                         "anomalies": arr(ref("Anomaly"))})},
        "problems": {403: ["forbidden_department"], 422: ["invalid_field", "invalid_type", "invalid_timestamp",
                                                          "naive_timestamp", "invalid_request"]},
        "params": {"status": {"enum": ["open", "cleared"]}},
    },
    ("get", "/api/v1/anomalies/rules"): {"ok": {200: obj({"types": arr(ANY_OBJ), "rules": arr(ANY_OBJ)})}},
    ("get", "/api/v1/metrics"): {
        "ok": {200: {"description": "figures as JSON, CSV (UTF-8 with BOM) or an xlsx workbook", "content": {
            JSON_OK: {"schema": obj({"group_by": STR, "from": NDATE, "to": NDATE, "rows": arr(ANY_OBJ),
                                     "total": obj({"on_time_rate": RATE}, required=["on_time_rate"]), "notes": ANY_OBJ},
                                    required=["group_by", "rows", "total", "notes"])},
            "text/csv": {"schema": STR},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": _t("string", format="binary")},
        }}},
        "problems": {403: ["forbidden_department"], 422: ["invalid_field", "invalid_query", "invalid_request"]},
        "params": {"group_by": {"enum": ["center", "hall", "department", "window", "staff", "item", "day"]},
                   "format": {"enum": ["json", "csv", "xlsx"]}, "from": {"format": "date"}, "to": {"format": "date"}},
    },
    **INTEGRITY_OPS,
    **AUDIT_OPERATIONS,
    ("get", "/healthz"): {"public": True, "ok": {200: obj({
        "status": _t("string", enum=["ok", "degraded"]), "store": STR, "ledger_position": NINT,
        "alarms": arr(obj({"code": STR, "view": STR, "position": INT, "detail": STR})),
        "calendar": ANY_OBJ, "views": ANY_OBJ}, required=["status"])}},
}


def _problem_response(status: int, codes: list[str]) -> dict[str, Any]:
    return {"description": "problem document; code: " + ", ".join(f"`{c}`" for c in codes),
            "content": {PROBLEM: {"schema": ref("Problem")}},
            **({"headers": {"WWW-Authenticate": {"schema": STR, "description": "Bearer"}}} if status == 401 else {})}


def _apply(op: dict[str, Any], spec: dict[str, Any] | None) -> None:
    spec = spec or {}
    responses = op.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's HTTPValidationError: ours is a problem document
    if "ok" in spec:
        for status in [s for s in list(responses) if s.startswith("2")]:
            if int(status) not in spec["ok"] and spec["ok"]:
                responses.pop(status)
        for status, schema in spec["ok"].items():
            described = spec.get("ok_descriptions", {}).get(status, "OK" if status == 200 else "created")
            responses[str(status)] = schema if "content" in schema else _json(schema, described)
    for status in list(responses):
        content = responses[status].get("content", {})
        if JSON_OK in content and content[JSON_OK].get("schema") in ({"type": "string"}, {}):
            content[JSON_OK]["schema"] = ANY_OBJ  # never "string": an object we have not described field by field
    if "body" in spec:
        op["requestBody"] = _body(spec["body"], spec.get("body_required", True))
    for param in op.get("parameters", []):
        extra = spec.get("params", {}).get(param["name"])
        if extra:
            schema = param.setdefault("schema", {})
            if "anyOf" in schema:  # Optional[str]: constrain the string branch
                for branch in schema["anyOf"]:
                    if branch.get("type") not in (None, "null"):
                        branch.update(extra)
            else:
                schema.update(extra)
        if param["in"] == "path" and param.get("schema", {}).get("type") == "string":
            param["schema"].setdefault("minLength", 1)
    if spec.get("public"):
        op["security"] = []
        return
    op["security"] = [{"bearer": []}]
    problems = _merge(AUTH, QUERY if op.get("parameters") else {}, spec.get("problems", {}))
    if not spec:  # a route this table does not know yet: at least say that refusals are problems
        responses["default"] = {"description": "problem document", "content": {PROBLEM: {"schema": ref("Problem")}}}
    for status, codes in sorted(problems.items()):
        responses[str(status)] = _problem_response(status, codes)


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                          tags=app.openapi_tags)
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.update(SCHEMAS)
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "an esup API key: `Authorization: Bearer esup_...` (keys are bound to a role)"}}
        for path, ops in doc.get("paths", {}).items():
            for method, op in ops.items():
                _apply(op, OPERATIONS.get((method, path)))
        if not schemas:
            components.pop("schemas")
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


# -- complaints (投诉) and supervision notices (督察意见 → 整改): api/oversight.py ----------------------

SCHEMAS["Complaint"] = obj({
    "id": STR, "complaint_no": STR, "channel": _t("string", enum=["phone", "letter", "online", "in_person"]),
    "department": STR, "window": NSTR, "staff": NSTR, "case_no": NSTR, "summary": STR,
    "status": _t("string", enum=["received", "accepted", "not_accepted", "assigned", "investigated", "concluded"]),
    "stage": _t(["string", "null"], enum=["accept", "assign", "investigate", "conclude", None]),
    "due_at": NINSTANT, "received_at": INSTANT, "substantiated": NBOOL, "action": NSTR,
    "stages": arr(ANY_OBJ, description="each stage: started_at, due_at, done_at, late, warned_at"),
    "complainant": _t(["object", "null"], description="sealed personal data: shown to officers, masked to others"),
    "history": arr(ANY_OBJ),
}, required=["complaint_no", "channel", "department", "status", "stage", "due_at", "received_at", "stages"])
SCHEMAS["ComplaintInput"] = obj({
    "complaint_no": _t("string", minLength=1, maxLength=50), "channel": _t("string", enum=["phone", "letter", "online", "in_person"]),
    "department": CODE, "window": CODE, "staff": CODE, "case_no": CODE, "summary": _t("string", minLength=1),
    "complainant": obj({k: STR for k in ("name", "phone", "id_number", "address")}, required=[]),
    "received_at": {**INSTANT, "description": "when the desk received it (default: now)"},
}, required=["complaint_no", "channel", "department", "summary"])
SCHEMAS["Notice"] = obj({
    "id": STR, "notice_no": STR, "department": STR, "title": STR, "status": _t("string", enum=["open", "closed"]),
    "issued_at": INSTANT, "closed_at": NINSTANT, "inspection": _t(["object", "null"]),
    "problems": arr(obj({"no": INT, "source": _t("string", enum=["audit", "anomaly", "complaint", "inspection"]),
                         "description": STR, "status": _t("string", enum=["open", "reported", "closed"]),
                         "due_at": INSTANT, "returns": INT, "warnings": arr(INSTANT)},
                        required=["no", "source", "status", "due_at"])),
    "history": arr(ANY_OBJ),
}, required=["notice_no", "department", "title", "status", "problems"])
SCHEMAS["NoticeInput"] = obj({
    "notice_no": _t("string", minLength=1, maxLength=50), "department": CODE, "title": _t("string", minLength=1),
    "problems": arr(obj({"source": _t("string", enum=["audit", "anomaly", "complaint", "inspection"]), "ref": CODE,
                         "description": _t("string", minLength=1), "due_date": DATE, "within": LIMIT},
                        required=["source", "description"]), minItems=1),
    "inspection": obj({"round": CODE, "inspector": CODE, "inspected": CODE}),
}, required=["notice_no", "department", "title", "problems"])

_TEXT_422 = ["malformed_json", "invalid_body", "missing_field", "invalid_field", "unknown_field"]
COMPLAINT_ACT = _merge(ROLE, BODY, {404: ["unknown_complaint"], 409: ["complaint_closed", "complaint_out_of_order",
                                                                      "concurrent_change"], 422: _TEXT_422})
PROBLEM_ACT = _merge(BODY, {403: ["forbidden_role", "forbidden_department"], 404: ["unknown_notice", "unknown_problem"],
                            409: ["problem_closed", "problem_not_reported", "problem_already_reported",
                                  "concurrent_change"], 422: [*_TEXT_422, "invalid_limit"]})
PAGE = {"limit": {"minimum": 1, "maximum": 1000}, "offset": {"minimum": 0, "maximum": 2**31 - 1}}
OPERATIONS.update({
    ("post", "/api/v1/complaints"): {
        "body": ref("ComplaintInput"), "ok": {201: ref("Complaint")},
        "problems": _merge(ROLE, BODY, {409: ["complaint_exists"], 422: [
            *_TEXT_422, "unknown_department", "unknown_window", "unknown_staff", "invalid_timestamp",
            "naive_timestamp", "future_timestamp", "implausible_timestamp"]}),
    },
    ("get", "/api/v1/complaints"): {
        "ok": {200: obj({"total": INT, "complaints": arr(ANY_OBJ)})},
        "problems": {403: ["forbidden_department"], 422: ["invalid_query", "invalid_request"]}, "params": PAGE,
    },
    ("get", "/api/v1/complaints/{complaint_no}"): {"ok": {200: ref("Complaint")},
                                                  "problems": {404: ["unknown_complaint"]}},
    **{("post", f"/api/v1/complaints/{{complaint_no}}/{act}"): {
        "body": obj({"note": STR, "reason": STR, "assignee": STR, "findings": STR, "substantiated": BOOL,
                     "action": STR}, required=[]),
        "body_required": False, "ok": {200: ref("Complaint")}, "problems": COMPLAINT_ACT,
    } for act in ("accept", "refuse", "assign", "investigate", "conclude")},
    ("post", "/api/v1/notices"): {
        "body": ref("NoticeInput"), "ok": {201: ref("Notice")},
        "problems": _merge(ROLE, BODY, {409: ["notice_exists"], 422: [*_TEXT_422, "unknown_department",
                                                                        "invalid_limit"]}),
    },
    ("get", "/api/v1/notices"): {
        "ok": {200: obj({"total": INT, "notices": arr(ANY_OBJ)})},
        "problems": {403: ["forbidden_department"], 422: ["invalid_query", "invalid_request"]}, "params": PAGE,
    },
    ("get", "/api/v1/notices/{notice_no}"): {"ok": {200: ref("Notice")}, "problems": {404: ["unknown_notice"]}},
    **{("post", f"/api/v1/notices/{{notice_no}}/problems/{{problem_no}}/{act}"): {
        "body": obj({"rectification": STR, "note": STR, "reason": STR, "due_date": DATE, "within": LIMIT}, required=[]),
        "body_required": False, "ok": {200: ref("Notice")}, "problems": PROBLEM_ACT,
    } for act in ("report", "verify", "send-back")},
    ("get", "/api/v1/oversight/summary"): {
        "ok": {200: obj({"year": NINT, "complaints": ANY_OBJ, "notices": ANY_OBJ})},
        "problems": {**ROLE, 422: ["invalid_query", "invalid_request"]},
    },
})

OPERATIONS.update({
    ("get", "/api/v1/assessment/{year}"): {
        "ok": {200: {"description": "the ranking (JSON), or with format=xlsx the workbook", "content": {
            "application/json": {"schema": obj({"year": INT, "assessed": INT, "quota": INT, "distribution": ANY_OBJ,
                                                "policy": ANY_OBJ, "staff": arr(ANY_OBJ)})},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": _t("string", format="binary")}}}},
        "problems": {**ROLE, 422: ["invalid_query", "invalid_request"]},
        "params": {"format": {"enum": ["json", "xlsx"]}},
    },
    ("get", "/api/v1/assessment/{year}/facts"): {
        "ok": {200: obj({"year": INT, "staff": NSTR, "kind": NSTR, "facts": arr(obj({
            "staff": STR, "kind": STR, "case_no": NSTR, "event_ref": STR, "position": INT}))})},
        "problems": {**ROLE, 422: ["invalid_query", "invalid_request"]},
    },
})
