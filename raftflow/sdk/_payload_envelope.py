"""A codec's payload on the wire: the JSON envelope that stands where a plain value stood.

Pure, no codec calls. `plain_payload(value)` is a value as the `json/plain` payload a codec is
given, `value_of_plain` reads one back; `envelope_json(payload)` is an encoded payload as the
JSON value the API carries, `{"_raftflow_payload": {"metadata": {name: base64}, "data":
base64}}`, and `payload_of_envelope` reads one back. An object holding the marker key is an
envelope and nothing else: the key is reserved (docs/security.md), so an object that holds it
but is not exactly an envelope is refused, never handed to user code as data.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from raftflow.protocol.history_json import JsonValue
from raftflow.sdk.converter import ENCODING_JSON_PLAIN, METADATA_ENCODING, Payload
from raftflow.sdk.errors import PayloadCodecError

ENVELOPE_KEY = "_raftflow_payload"
# The key as it appears in a payload's JSON text. The server keeps payloads as compact JSON it
# re-encoded itself (`protocol.payload.json_dec_hook`), so the key is never spelled with
# escapes there: a payload without this text holds no envelope and needs no parsing.
ENVELOPE_MARK = f'"{ENVELOPE_KEY}"'.encode()


class _EnvelopeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    metadata: dict[str, bytes]  # bytes travel as base64 strings (msgspec's JSON of bytes)
    data: bytes


class _Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: _EnvelopeBody = msgspec.field(name=ENVELOPE_KEY)


def is_envelope(value: object) -> bool:
    """True for a JSON object holding the envelope's marker key (well-formed or not)."""
    return isinstance(value, dict) and ENVELOPE_KEY in value


def holds_envelope(value: object) -> bool:
    """True for an envelope, or a list with an envelope element: the two shapes a payload
    field takes with a codec (`_wire_payloads.PayloadShape`)."""
    return is_envelope(value) or (isinstance(value, list) and any(map(is_envelope, value)))


def may_hold_envelope(data: bytes) -> bool:
    """False when a payload's JSON text certainly holds no envelope (the cheap test)."""
    return ENVELOPE_MARK in data


def envelope_json(payload: Payload) -> dict[str, Any]:
    """An encoded payload as the JSON value the API carries in the plain value's place."""
    body = msgspec.to_builtins(_Envelope(body=_EnvelopeBody(metadata=dict(payload.metadata),
                                                            data=payload.data)))
    assert isinstance(body, dict) and is_envelope(body), body
    return body


def payload_of_envelope(value: object, what: str) -> Payload:
    """`envelope_json`'s inverse. Raises `PayloadCodecError` naming `what` for an object that
    holds the marker key but is not exactly an envelope (another key, data not base64)."""
    assert is_envelope(value), value
    try:
        envelope = msgspec.convert(value, _Envelope)
    except msgspec.ValidationError as error:
        raise PayloadCodecError(f"{what}: malformed payload envelope: {error}") from error
    return Payload(envelope.body.metadata, envelope.body.data)


def plain_payload(value: JsonValue) -> Payload:
    """One JSON value as the `json/plain` payload a codec encodes: its compact UTF-8 text, as
    the SDK writes an unencoded payload (`_replay.commands.payload`)."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Payload({METADATA_ENCODING: ENCODING_JSON_PLAIN}, data)


def value_of_plain(payload: Payload, what: str) -> JsonValue:
    """The JSON value of a decoded payload. Raises `PayloadCodecError` naming `what` if the
    payload is not `json/plain` (the codec did not decode it: not its own, or another codec's)
    or its data is not JSON."""
    if payload.encoding != ENCODING_JSON_PLAIN:
        raise PayloadCodecError(
            f"{what}: the payload codec returned a payload with encoding {payload.encoding!r}, "
            f"expected {ENCODING_JSON_PLAIN!r}: was it encoded by another codec?")
    try:
        value: JsonValue = json.loads(payload.data)
    except ValueError as error:  # UnicodeDecodeError is one too
        raise PayloadCodecError(f"{what}: a decoded json/plain payload is not JSON: "
                                f"{error}") from error
    return value
