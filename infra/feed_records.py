"""The provincial feed's records on the wire: versioned envelopes checked against the JSON Schemas
in ``infra/schemas/`` (the one definition; also served at ``GET /api/v1/feed/schemas``).

Every record is:

- key: the case number (steps, warning acts, anomalies: one case keeps its order in one
  partition) or the district code (checkpoints, digests, positions, resend requests);
- value: a JSON object (orjson, sorted keys: the same event always encodes to the same bytes,
  which the daily digest relies on) tagged ``schema`` (``esup.step/1`` ...) with the district
  code and the district ledger's log position (``notification_id``);
- headers: ``esup-schema``, ``esup-district`` and ``esup-notification-id`` (the log position),
  so a consumer can route, dedupe or skip without parsing the value.

The step envelope's fields are those of ``infra.envelope`` (``esup.step/1``) plus ``district``.
Pure functions over bytes, no Kafka import.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import orjson

from infra.envelope import HEADER_NOTIFICATION_ID, HEADER_SCHEMA, json_object

HEADER_DISTRICT = "esup-district"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

STEP = "esup.step/1"
WARNING = "esup.warning/1"
ANOMALY = "esup.anomaly/1"
CHECKPOINT = "esup.checkpoint/1"
DIGEST = "esup.digest/1"
POSITION = "esup.position/1"
RESEND = "esup.resend/1"
KEYED_BY_CASE = (STEP, WARNING, ANOMALY)


def _file(name: str) -> Path:
    return SCHEMA_DIR / (name.replace("esup.", "").replace("/", "-") + ".json")


@lru_cache(maxsize=None)
def schemas() -> dict[str, dict[str, Any]]:
    """Every envelope's JSON Schema, by its tag."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out[doc["properties"]["schema"]["const"]] = doc
    return out


_TYPES = {"string": str, "integer": int, "object": dict, "array": list, "boolean": bool, "null": type(None),
          "number": (int, float)}


def _check(where: str, value: Any, spec: dict[str, Any]) -> None:
    """The subset of JSON Schema the envelopes use: const, type, required, properties, items, minLength, minimum."""
    if "const" in spec and value != spec["const"]:
        raise ValueError(f"bad feed record: {where} is {value!r}, expected {spec['const']!r}")
    if "type" in spec:
        kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        ok = any(isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                 for k in kinds)
        if not ok:
            raise ValueError(f"bad feed record: {where} must be {'/'.join(kinds)}, got {type(value).__name__}")
    if isinstance(value, str) and len(value) < spec.get("minLength", 0):
        raise ValueError(f"bad feed record: {where} must not be empty")
    if isinstance(value, int) and "minimum" in spec and value < spec["minimum"]:
        raise ValueError(f"bad feed record: {where} must be >= {spec['minimum']}")
    if isinstance(value, dict):
        missing = [k for k in spec.get("required", ()) if k not in value]
        if missing:
            raise ValueError(f"bad feed record: {where} lacks {', '.join(missing)}")
        for name, sub in spec.get("properties", {}).items():
            if name in value:
                _check(f"{where}.{name}", value[name], sub)
    if isinstance(value, list) and "items" in spec:
        for i, item in enumerate(value):
            _check(f"{where}[{i}]", item, spec["items"])


def validate(body: dict[str, Any]) -> None:
    name = body.get("schema") if isinstance(body, dict) else None
    spec = schemas().get(name)  # type: ignore[arg-type]
    if spec is None:
        raise ValueError(f"bad feed record: unknown schema {name!r}")
    _check("record", body, spec)


def encode(schema: str, district: str, position: int, fields: dict[str, Any],
           key: str | None = None, check: bool = True) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one record; ``key`` defaults to the case number (records of a case)
    or the district code. ``check=False`` skips the schema check (the relay's hot path: its
    records are shaped by code the tests check, and every consumer checks on ``decode``)."""
    body = {"schema": schema, "district": district, "notification_id": position, **fields}
    if check:
        validate(body)
    if key is None:
        key = body["case_no"] if schema in KEYED_BY_CASE else district
    value = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    headers = [(HEADER_SCHEMA, schema.encode("ascii")), (HEADER_DISTRICT, district.encode("utf-8")),
               (HEADER_NOTIFICATION_ID, str(position).encode("ascii"))]
    return key.encode("utf-8"), value, headers


def header(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    for k, v in headers or ():
        if k == name:
            return v.decode("utf-8", "replace")
    return None


def decode(key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> dict[str, Any]:
    """The record's JSON object, after checking it against its schema and that key and headers agree."""
    body = json_object(value, "feed record")
    validate(body)
    hdrs = list(headers or ())
    if header(hdrs, HEADER_SCHEMA) != body["schema"]:
        raise ValueError(f"bad feed record: header {HEADER_SCHEMA} does not match {body['schema']}")
    if header(hdrs, HEADER_DISTRICT) != body["district"]:
        raise ValueError(f"bad feed record: header {HEADER_DISTRICT} does not match {body['district']}")
    if header(hdrs, HEADER_NOTIFICATION_ID) != str(body["notification_id"]):
        raise ValueError(f"bad feed record: header {HEADER_NOTIFICATION_ID} does not match {body['notification_id']}")
    want = body["case_no"] if body["schema"] in KEYED_BY_CASE else body["district"]
    if key is None or key.decode("utf-8", "replace") != want:
        raise ValueError(f"bad feed record: key {key!r} is not {want!r}")
    return body
