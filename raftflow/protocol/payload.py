"""`Payload`: the user's value inside the engine, with one representation per wire.

Theory of operation. A payload (a workflow's input or result, an activity's result, a failure's
details) is the compact JSON text of the user's value. The engine never looks inside: it stores,
sizes and copies bytes. But the two wires carry it differently, so the payload is its own type,
a `bytes` subclass, and each wire gets hooks for it (msgspec calls them for a custom type):

- msgpack (log entries, snapshots, results): plain `bin`, the bytes as they are; decoding gives
  a `Payload` back where a field is declared one (`msgpack_dec_hook`).
- JSON (HTTP bodies and answers): the value itself, not a base64 string. Encoding splices the
  text in (`json_enc_hook`); decoding re-encodes the value msgspec parsed into compact text
  (`json_dec_hook`). JSON `null` is the empty payload both ways, as a field left out is: the
  API never told "no value" from `null` when it rendered one, so neither is stored apart.
  Decoding refuses a payload above `PAYLOAD_BYTES_MAX` or one holding a number other JSON
  readers cannot keep, so every payload in the log is JSON a client can read.

So one struct type (a workflow command, a failure) is both the log entry and the HTTP body.
The JSON value round-trips, not always the exact text: whitespace goes and msgspec's spelling of
strings and numbers is kept (`"\\u00e9"` comes back as `"é"`), as the hand parser did.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Annotated, Any

import msgspec

from raftflow.protocol.limits import PAYLOAD_BYTES_MAX


class Payload(bytes):
    """Compact JSON text of a user's value; `Payload()` (empty) means none was given."""

    __slots__ = ()


EMPTY = Payload()

# How a struct field holding a payload is declared: the annotation gives msgspec the payload's
# JSON Schema (any JSON value), which it cannot work out for a custom type.
PayloadField = Annotated[Payload, msgspec.Meta(extra_json_schema={
    "description": f"Any JSON value, at most {PAYLOAD_BYTES_MAX} bytes encoded; null or left "
                   "out: none."})]

# The start of the message `json_dec_hook` raises for an oversized payload: the gateway turns a
# decode error that starts so into 413 payload_too_large (msgspec appends the field's path).
TOO_LARGE = "JSON payload is"
# A number token that may overflow a float (an exponent of 3+ digits, or 200+ integer digits:
# finite floats end near 1.8e308). Only payloads that match pay for a full check.
_MAYBE_HUGE_NUMBER = re.compile(rb"\d[eE][+-]?\d{3}|\d{200}")
_JSON_CHECK = msgspec.json.Decoder()


def _beyond_float(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return False
    if isinstance(value, int):
        return abs(value) > 1.7976931348623157e308
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_beyond_float(v) for v in value)
    if isinstance(value, dict):
        return any(_beyond_float(v) for v in value.values())
    return False


def json_dec_hook(kind: type, value: Any) -> Any:
    """msgspec JSON `dec_hook`: a payload field's parsed value becomes its compact text."""
    if kind is not Payload:
        raise NotImplementedError(f"no JSON decoding for {kind!r}")
    if value is None:
        return EMPTY  # null and "left out" are one thing: no payload (encoded back as null)
    encoded = msgspec.json.encode(value)
    if len(encoded) > PAYLOAD_BYTES_MAX:
        raise ValueError(f"{TOO_LARGE} {len(encoded)} bytes, limit {PAYLOAD_BYTES_MAX}")
    if _MAYBE_HUGE_NUMBER.search(encoded) and _beyond_float(value):
        raise ValueError("must be valid JSON with numbers a float can hold")
    return Payload(encoded)


def json_enc_hook(value: Any) -> Any:
    """msgspec JSON `enc_hook`: a payload is its JSON value (`null` when empty). Bytes that are
    not JSON (none enter through the API; this guards a hand-built value) become
    `{"base64": ...}` rather than breaking the document around them."""
    if not isinstance(value, Payload):
        raise NotImplementedError(f"no JSON encoding for {type(value).__name__}")
    if not value:
        return None
    try:
        _JSON_CHECK.decode(value)
    except msgspec.DecodeError:
        return {"base64": base64.b64encode(value).decode()}
    return msgspec.Raw(value)


def builtins_enc_hook(value: Any) -> Any:
    """`msgspec.to_builtins` `enc_hook`: a payload as its parsed JSON value (None when empty),
    for code that hands a body to a stdlib JSON encoder."""
    if not isinstance(value, Payload):
        raise NotImplementedError(f"no builtins for {type(value).__name__}")
    return _JSON_CHECK.decode(value) if value else None


def msgpack_enc_hook(value: Any) -> Any:
    """msgpack `enc_hook`: a payload is `bin`, its bytes as they are."""
    if isinstance(value, Payload):
        return bytes(value)
    raise NotImplementedError(f"no msgpack encoding for {type(value).__name__}")


def msgpack_dec_hook(kind: type, value: Any) -> Any:
    """msgpack (and `msgspec.convert`) `dec_hook`: `bin` back into a `Payload` field."""
    if kind is Payload and isinstance(value, bytes | bytearray | memoryview):
        return Payload(value)
    raise NotImplementedError(f"no msgpack decoding of {type(value).__name__} as {kind!r}")
