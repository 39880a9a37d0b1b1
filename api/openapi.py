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
    403: ["forbidden_role", "forbidden_department"],
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
        "ok": {201: CHECKPOINT, 200: CHECKPOINT},
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
    ("post", "/api/v1/steps"): {
        "body": ref("Step"), "ok": {201: ref("StepOutcome"), 200: ref("StepOutcome")}, "problems": STEP_REFUSALS,
        "ok_descriptions": {201: "stored", 200: "the same event_id again: the original outcome"},
    },
    ("post", "/api/v1/steps/batch"): {
        "body": arr(ref("Step"), minItems=1), "problems": STEP_REFUSALS,
        "ok": {201: obj({"created": INT, "duplicates": INT, "outcomes": arr(ref("StepOutcome"))})} | {
            200: obj({"created": INT, "duplicates": INT, "outcomes": arr(ref("StepOutcome"))})},
    },
    ("get", "/api/v1/cases/{case_no}"): {
        "ok": {200: ref("Case")},
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
