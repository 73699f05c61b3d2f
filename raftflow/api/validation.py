"""Decoding request bodies, path ids and query parameters at the HTTP edge.

Theory of operation. A handler names the body's struct (`raftflow.protocol.http_bodies`) and
calls `decode_body`: `msgspec.json` checks types and bounds while it decodes, and the first
broken rule becomes `InvalidArgumentError` naming the field (`commands[2].timer_id`, from
msgspec's `$.` path) and the rule, so clients learn exactly what to fix. A body above
`BODY_BYTES_MAX` is refused before decoding (413). Payload fields decode into their compact
JSON text (`protocol.payload`), refusing one above `PAYLOAD_BYTES_MAX` (413 naming the field)
or one holding a number no JSON reader can keep. Then the edge rules of the log's own types
(workflow commands, failures; `protocol.edge_rules`) are checked, with the same kind of 400.

Limits (DESIGN §4 I7) are named constants in `http_bodies`; the ones the shard core enforces
too are defined once, in `protocol.limits`, so the document's bounds are the core's.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from raftflow.api.errors import InvalidArgumentError, PayloadTooLargeError
from raftflow.protocol import http_bodies as bodies
from raftflow.protocol.edge_rules import first_violation
from raftflow.protocol.limits import ID_LENGTH_MAX as ID_LENGTH_MAX
from raftflow.protocol.limits import PAYLOAD_BYTES_MAX as PAYLOAD_BYTES_MAX
from raftflow.protocol.payload import TOO_LARGE, json_dec_hook

B = TypeVar("B", bound=msgspec.Struct)

BODY_BYTES_MAX = bodies.BODY_BYTES_MAX
QUERY_LIMIT_MAX = 1000  # `?limit=` on list endpoints.

# msgspec's messages end with " - at `$.path`"; the path is the field at fault.
_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_PATH_PART = re.compile(r"\[\d+\]|[^.\[\]]+")
# Integer fields spelled as decimals (`3517.0`) one body may carry; beyond, it is refused.
INTEGRAL_FLOATS_MAX = 16
_NAMED_FIELD = re.compile(r"(?:missing required|contains unknown) field `(?P<name>[^`]+)`")
_QUERY_INTEGER = re.compile(r"-?[0-9]{1,19}")
# msgspec names types as Python does (`int | null`); clients know JSON's names.
_TYPE_EXPRESSION = re.compile(r"`([^`]*)`")
_TYPE_NAMES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _rule(message: str) -> str:
    """msgspec's wording of a broken rule, with JSON's type names."""
    if message.startswith("Object missing required field"):
        return "is required"
    if message.startswith("Object contains unknown field"):
        return "unknown field"
    if message.startswith("Number out of range"):  # a payload's number beyond a float
        return "must be valid JSON with numbers a float can hold"
    message = _TYPE_EXPRESSION.sub(lambda found: " or ".join(
        _TYPE_NAMES.get(name.strip(), name.strip()) for name in found.group(1).split("|")),
        message)
    return message.replace("Expected", "must be", 1)


def invalid_body(error: msgspec.ValidationError,
                 what: str) -> InvalidArgumentError | PayloadTooLargeError:
    """The 400 for a body that broke a rule: `field 'x.y': <rule>`, with the field named."""
    message = str(error)
    found = _AT_PATH.search(message)
    path = found.group("path") if found else ""
    message = message[:found.start()] if found else message
    named = _NAMED_FIELD.search(message)
    if named is not None:  # the field is a key of the object at `path`
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    if not path:
        return InvalidArgumentError(f"{what} {_rule(message)}")
    if message.startswith(TOO_LARGE):
        return PayloadTooLargeError(f"field {path!r}: {message}", field=path)
    return InvalidArgumentError(f"field {path!r}: {_rule(message)}", field=path)


def decode_body(raw: bytes, body_type: type[B], *, body_bytes_max: int = BODY_BYTES_MAX) -> B:
    """Decode a request body into `body_type`; an empty body is the empty object.

    Raises:
        InvalidArgumentError: not JSON, not an object, or a field breaks its type or bound.
        PayloadTooLargeError: the body is above `body_bytes_max` bytes.
    """
    if len(raw) > body_bytes_max:
        raise PayloadTooLargeError(f"request body is {len(raw)} bytes, limit {body_bytes_max}")
    if not raw.strip():
        raw = b"{}"
    for _ in range(INTEGRAL_FLOATS_MAX + 1):
        try:
            body = msgspec.json.decode(raw, type=body_type, dec_hook=json_dec_hook)
        except msgspec.ValidationError as error:
            fixed = _integral_float_as_integer(raw, str(error))
            if fixed is None:
                raise invalid_body(error, "request body") from None
            raw = fixed
            continue
        except msgspec.DecodeError as error:
            raise InvalidArgumentError(f"request body is not valid JSON: {error}") from None
        broken = first_violation(body)
        if broken is not None:
            field, rule = broken
            raise InvalidArgumentError(f"field {field!r}: {rule}", field=field)
        return body
    raise InvalidArgumentError(f"request body has more than {INTEGRAL_FLOATS_MAX} integers "
                               "spelled as decimals")


def _integral_float_as_integer(raw: bytes, message: str) -> bytes | None:
    """`raw` with the number msgspec refused as a float for an integer field spelled as an
    integer, if it is integral (`3517.0`): JSON has one number type, and JSON Schema calls such
    a number an integer. None when the refusal is anything else. Rare, so the body is simply
    decoded, fixed and encoded again (payloads stay equal as JSON values)."""
    found = _AT_PATH.search(message)
    if found is None or not message.startswith("Expected `int") or "got `float`" not in message:
        return None
    tree = msgspec.json.decode(raw)
    parent: Any = None
    key: str | int = ""
    node: Any = tree
    for part in _PATH_PART.findall(found.group("path")):
        parent, key = node, (int(part[1:-1]) if part.startswith("[") else part)
        node = node[key]
    if not isinstance(node, float) or not node.is_integer() or abs(node) > 2**63:
        return None
    parent[key] = int(node)
    return msgspec.json.encode(tree)


def check_path_id(name: str, value: str) -> str:
    """Validate an id taken from the URL path (namespace, workflow id)."""
    if not 1 <= len(value) <= ID_LENGTH_MAX:
        raise InvalidArgumentError(
            f"path parameter {name!r}: length must be 1 to {ID_LENGTH_MAX} characters, "
            f"got {len(value)}", field=name)
    return value


def parse_query_int(name: str, raw: str | None, *, default: int, minimum: int,
                    maximum: int) -> int:
    """An integer query parameter (`?limit=`), `default` when absent (`?limit=` is no integer)."""
    if raw is None:
        return default
    # ASCII digits only (str.isdigit takes "²"), and few enough that int() takes them.
    if _QUERY_INTEGER.fullmatch(raw) is None:
        raise InvalidArgumentError(f"query parameter {name!r}: must be an integer, got {raw!r}",
                                   field=name)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidArgumentError(
            f"query parameter {name!r}: must be {minimum} to {maximum}, got {value}", field=name)
    return value
