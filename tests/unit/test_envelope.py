"""The step envelope wire format (infra.envelope): round trip and rejection of bad records."""

from __future__ import annotations

import orjson
import pytest

from infra.envelope import SCHEMA, decode_envelope, encode_envelope

STEP = dict(notification_id=42, topic="domain.case:Case.Received", originator_id="abc",
            originator_version=3, case_no="SP-2026-000042", payload={"step": "受理", "n": 1})


def test_round_trip():
    key, value, headers = encode_envelope(**STEP)
    assert key == "SP-2026-000042".encode()
    assert headers == [("esup-notification-id", b"42"), ("esup-schema", b"esup.step/1")]
    assert decode_envelope(key, value, headers) == {"schema": SCHEMA, **STEP}


def _tampered(**changes):
    body = orjson.loads(encode_envelope(**STEP)[1])
    for name, new in changes.items():
        if new is KeyError:
            del body[name]
        else:
            body[name] = new
    return orjson.dumps(body)


GOOD_KEY, GOOD_VALUE, GOOD_HEADERS = encode_envelope(**STEP)


@pytest.mark.parametrize(
    "key, value, headers, message",
    [
        (GOOD_KEY, b"{not json", GOOD_HEADERS, "not JSON"),
        (GOOD_KEY, b"[1, 2]", GOOD_HEADERS, "JSON object"),
        (GOOD_KEY, None, GOOD_HEADERS, "empty value"),
        (GOOD_KEY, _tampered(schema="esup.step/2"), GOOD_HEADERS, "schema"),
        (GOOD_KEY, _tampered(payload=KeyError), GOOD_HEADERS, "missing field(s) payload"),
        (GOOD_KEY, _tampered(notification_id="42"), GOOD_HEADERS, "notification_id must be int"),
        (GOOD_KEY, _tampered(originator_version=True), GOOD_HEADERS, "originator_version must be int"),
        (b"SP-OTHER", GOOD_VALUE, GOOD_HEADERS, "does not match case_no"),
        (GOOD_KEY, GOOD_VALUE, [("esup-notification-id", b"42")], "esup-schema"),
        (GOOD_KEY, GOOD_VALUE, [("esup-notification-id", b"41"), ("esup-schema", b"esup.step/1")], "does not match notification_id"),
    ],
)
def test_malformed_envelope_raises_value_error(key, value, headers, message):
    with pytest.raises(ValueError, match="bad step envelope") as info:
        decode_envelope(key, value, headers)
    assert message in str(info.value)


def test_encode_rejects_wrong_types():
    with pytest.raises(ValueError):
        encode_envelope(**{**STEP, "payload": "not a dict"})
    with pytest.raises(ValueError):
        encode_envelope(**{**STEP, "case_no": ""})
