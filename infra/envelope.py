"""Wire format of a case step sent to the province ("step envelope", schema ``esup.step/1``).

Pure functions over bytes, no Kafka import, so the relay, consumers and tests share one
definition. A record is:

- key: the case number (UTF-8), so all steps of one case land in one partition, in order;
- value: a JSON object (orjson) with the schema tag and the fields below;
- headers: ``esup-notification-id`` (the event store's notification id, decimal ASCII) and
  ``esup-schema`` (lets a consumer route or skip without parsing the value).

Consumers dedupe on the notification id: within a partition it only grows (ids may have gaps).
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson

SCHEMA = "esup.step/1"
HEADER_NOTIFICATION_ID = "esup-notification-id"
HEADER_SCHEMA = "esup-schema"

_FIELDS: dict[str, type] = {
    "notification_id": int,
    "topic": str,
    "originator_id": str,
    "originator_version": int,
    "case_no": str,
    "payload": dict,
}


def _check_type(name: str, value: Any, expected: type) -> None:
    # bool is an int subclass; a True notification id is a bug, not a number.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"bad step envelope: {name} must be {expected.__name__}, got {type(value).__name__}")


def encode_envelope(
    *,
    notification_id: int,
    topic: str,
    originator_id: str,
    originator_version: int,
    case_no: str,
    payload: dict,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) for one step record."""
    body = {
        "schema": SCHEMA,
        "notification_id": notification_id,
        "topic": topic,
        "originator_id": originator_id,
        "originator_version": originator_version,
        "case_no": case_no,
        "payload": payload,
    }
    for name, expected in _FIELDS.items():
        _check_type(name, body[name], expected)
    if not case_no:
        raise ValueError("bad step envelope: case_no must not be empty (it is the partition key)")
    # Sorted keys: the same step always encodes to the same bytes (stable for dedupe/diffing).
    value = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    headers = [
        (HEADER_NOTIFICATION_ID, str(notification_id).encode("ascii")),
        (HEADER_SCHEMA, SCHEMA.encode("ascii")),
    ]
    return case_no.encode("utf-8"), value, headers


def json_object(value: bytes | None, what: str) -> dict:
    """A Kafka record's value as a JSON object, or a ValueError saying why not (``what``: the
    kind of record, for the message)."""
    if value is None:
        raise ValueError(f"bad {what}: empty value (tombstone?)")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bad {what}: value is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError(f"bad {what}: value must be a JSON object, got {type(body).__name__}")
    return body


def decode_envelope(
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] | None,
) -> dict:
    """The envelope's JSON object, after checking schema, fields, key and headers agree."""
    body = json_object(value, "step envelope")
    if body.get("schema") != SCHEMA:
        raise ValueError(f"bad step envelope: schema {body.get('schema')!r}, expected {SCHEMA!r}")
    missing = [name for name in _FIELDS if name not in body]
    if missing:
        raise ValueError(f"bad step envelope: missing field(s) {', '.join(missing)}")
    for name, expected in _FIELDS.items():
        _check_type(name, body[name], expected)

    if key is None or key.decode("utf-8", "replace") != body["case_no"]:
        raise ValueError(f"bad step envelope: key {key!r} does not match case_no {body['case_no']!r}")

    hdrs: dict[str, bytes] = {}
    for name, raw in headers or ():
        if name in hdrs:
            raise ValueError(f"bad step envelope: duplicate header {name!r}")
        hdrs[name] = raw
    if hdrs.get(HEADER_SCHEMA) != SCHEMA.encode("ascii"):
        raise ValueError(f"bad step envelope: header {HEADER_SCHEMA} is {hdrs.get(HEADER_SCHEMA)!r}")
    if hdrs.get(HEADER_NOTIFICATION_ID) != str(body["notification_id"]).encode("ascii"):
        raise ValueError(
            f"bad step envelope: header {HEADER_NOTIFICATION_ID} {hdrs.get(HEADER_NOTIFICATION_ID)!r} "
            f"does not match notification_id {body['notification_id']}"
        )
    return body
