"""Declarative request-body validation for the HTTP shell.

Theory of operation. A handler declares a `BodySchema` (a tuple of `FieldRule`s), reads the body
with `parse_json_body` and calls `validate(schema, body)`. The first broken rule raises a typed
error naming the field and the rule (`InvalidArgumentError`, or `PayloadTooLargeError` for
sizes), so clients learn exactly what to fix. A valid body comes back as a `ValidBody` with typed
accessors; JSON payload fields (`input`, `result`, ...) come back as the compact UTF-8 JSON text
in `bytes`, which is how the protocol carries user data, so the engine never parses it again.
Unknown fields are refused by default: a typo (`workflowId`) must not be silently ignored.

Limits (DESIGN §4 I7) are named constants below; their relation is asserted at import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from raftflow.api.errors import InvalidArgumentError, PayloadTooLargeError

# Defined once in protocol (the core enforces the same bounds); re-exported for the gateway.
from raftflow.protocol.limits import ID_LENGTH_MAX as ID_LENGTH_MAX
from raftflow.protocol.limits import PAYLOAD_BYTES_MAX as PAYLOAD_BYTES_MAX

# A body carries at most one payload plus ids and names; 256 KiB of headroom covers them.
BODY_BYTES_MAX = PAYLOAD_BYTES_MAX + 256 * 1024
NAME_LENGTH_MAX = ID_LENGTH_MAX  # workflow types, task queues, signal names: the core's bound.
REASON_LENGTH_MAX = 10_000
QUERY_LIMIT_MAX = 1000  # `?limit=` on list endpoints.
# Largest integer a command may carry: log entries are msgpack, whose integers are 64-bit. A
# larger one would fail to encode and take the whole batch of its shard down with it.
INTEGER_MAX = 2**63 - 1
assert BODY_BYTES_MAX > PAYLOAD_BYTES_MAX > ID_LENGTH_MAX


class FieldKind(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    JSON = "JSON value"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRule:
    """One field: its JSON type, whether it must be present, and its bounds."""

    name: str
    kind: FieldKind
    required: bool = True
    length_min: int = 0  # STRING, characters
    length_max: int = NAME_LENGTH_MAX  # STRING, characters
    minimum: int | None = None  # INTEGER
    maximum: int | None = None  # INTEGER
    payload_bytes_max: int = PAYLOAD_BYTES_MAX  # JSON, encoded UTF-8 bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BodySchema:
    name: str
    fields: tuple[FieldRule, ...]
    allow_unknown_fields: bool = False


@dataclass(frozen=True, slots=True)
class ValidBody:
    """A body that passed its schema. Accessors raise KeyError only on a programming error."""

    values: Mapping[str, str | int | bool | bytes | None]

    def string(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str), name
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, str), name
        return value

    def integer(self, name: str) -> int:
        value = self.values[name]
        assert isinstance(value, int) and not isinstance(value, bool), name
        return value

    def optional_integer(self, name: str) -> int | None:
        value = self.values.get(name)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool)), name
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name, default)
        assert isinstance(value, bool), name
        return value

    def json_bytes(self, name: str) -> bytes:
        """The field's JSON text; an absent optional payload reads as `null`."""
        value = self.values.get(name)
        if value is None:
            return b"null"
        assert isinstance(value, bytes), name
        return value


def _type_name(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case _:
            return "object"


def _invalid(rule: FieldRule, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"field {rule.name!r}: {problem}", field=rule.name)


def encode_payload(
    value: object, *, field: str, payload_bytes_max: int = PAYLOAD_BYTES_MAX
) -> bytes:
    """Compact JSON text of a user payload, refused above `payload_bytes_max` bytes."""
    encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                         allow_nan=False).encode("utf-8")
    if len(encoded) > payload_bytes_max:
        raise PayloadTooLargeError(
            f"field {field!r}: JSON payload is {len(encoded)} bytes, limit {payload_bytes_max}",
            field=field,
        )
    return encoded


def _check(rule: FieldRule, value: object) -> str | int | bool | bytes:
    match rule.kind:
        case FieldKind.STRING:
            if not isinstance(value, str):
                raise _invalid(rule, f"must be a string, got {_type_name(value)}")
            if not rule.length_min <= len(value) <= rule.length_max:
                raise _invalid(rule, f"length must be {rule.length_min} to {rule.length_max} "
                                     f"characters, got {len(value)}")
            return value
        case FieldKind.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _invalid(rule, f"must be an integer, got {_type_name(value)}")
            if rule.minimum is not None and value < rule.minimum:
                raise _invalid(rule, f"must be at least {rule.minimum}, got {value}")
            if rule.maximum is not None and value > rule.maximum:
                raise _invalid(rule, f"must be at most {rule.maximum}, got {value}")
            if not -INTEGER_MAX <= value <= INTEGER_MAX:
                raise _invalid(rule, f"must fit in a signed 64-bit integer, got {value}")
            return value
        case FieldKind.BOOLEAN:
            if not isinstance(value, bool):
                raise _invalid(rule, f"must be a boolean, got {_type_name(value)}")
            return value
        case FieldKind.JSON:
            try:
                return encode_payload(value, field=rule.name,
                                      payload_bytes_max=rule.payload_bytes_max)
            except ValueError as err:  # NaN or infinity: not JSON
                raise _invalid(rule, f"must be valid JSON ({err})") from err


def validate(schema: BodySchema, body: Mapping[str, object]) -> ValidBody:
    """Check `body` against `schema`; the first broken rule raises, naming field and rule.

    Raises:
        InvalidArgumentError: missing required field, wrong type, out of bounds, unknown field.
        PayloadTooLargeError: a JSON payload field above its byte limit.
    """
    if not schema.allow_unknown_fields:
        known = {rule.name for rule in schema.fields}
        unknown = sorted(key for key in body if key not in known)
        if unknown:
            raise InvalidArgumentError(
                f"field {unknown[0]!r}: unknown field for {schema.name} "
                f"(expected one of {', '.join(sorted(known))})",
                field=unknown[0],
            )
    values: dict[str, str | int | bool | bytes | None] = {}
    for rule in schema.fields:
        value = body.get(rule.name)
        if value is None:  # JSON null counts as absent
            if rule.required:
                raise _invalid(rule, "is required")
            values[rule.name] = None
            continue
        values[rule.name] = _check(rule, value)
    assert set(values) == {rule.name for rule in schema.fields}
    return ValidBody(values)


def parse_json_body(raw: bytes, *, body_bytes_max: int = BODY_BYTES_MAX) -> dict[str, object]:
    """Decode a request body that must be one JSON object of at most `body_bytes_max` bytes."""
    if len(raw) > body_bytes_max:
        raise PayloadTooLargeError(
            f"request body is {len(raw)} bytes, limit {body_bytes_max}")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArgumentError(f"request body is not valid JSON: {err}") from err
    if not isinstance(body, dict):
        raise InvalidArgumentError(f"request body must be a JSON object, got {_type_name(body)}")
    return body


def check_path_id(name: str, value: str) -> str:
    """Validate an id taken from the URL path (namespace, workflow id)."""
    if not 1 <= len(value) <= ID_LENGTH_MAX:
        raise InvalidArgumentError(
            f"path parameter {name!r}: length must be 1 to {ID_LENGTH_MAX} characters, "
            f"got {len(value)}", field=name)
    return value


def parse_query_int(name: str, raw: str | None, *, default: int, minimum: int,
                    maximum: int) -> int:
    """An integer query parameter (`?limit=`), `default` when absent."""
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        raise InvalidArgumentError(f"query parameter {name!r}: must be an integer, got {raw!r}",
                                   field=name)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidArgumentError(
            f"query parameter {name!r}: must be {minimum} to {maximum}, got {value}", field=name)
    return value


def _id(name: str, *, required: bool = True) -> FieldRule:
    return FieldRule(name=name, kind=FieldKind.STRING, required=required, length_min=1,
                     length_max=ID_LENGTH_MAX)


def _name(name: str) -> FieldRule:
    return FieldRule(name=name, kind=FieldKind.STRING, length_min=1, length_max=NAME_LENGTH_MAX)


START_WORKFLOW = BodySchema(name="start workflow", fields=(
    _id("workflow_id"), _name("workflow_type"), _name("task_queue"),
    FieldRule(name="input", kind=FieldKind.JSON, required=False),
    _id("request_id", required=False),
    FieldRule(name="id_reuse_policy", kind=FieldKind.STRING, required=False, length_min=1,
              length_max=64),
    FieldRule(name="execution_timeout_ms", kind=FieldKind.INTEGER, required=False, minimum=1),
    FieldRule(name="run_timeout_ms", kind=FieldKind.INTEGER, required=False, minimum=1),
    FieldRule(name="task_timeout_ms", kind=FieldKind.INTEGER, required=False, minimum=1),
    # Eager start: the caller's own worker (its identity) runs the first workflow task.
    FieldRule(name="eager_task_queue", kind=FieldKind.STRING, required=False,
              length_max=NAME_LENGTH_MAX),
    FieldRule(name="eager_identity", kind=FieldKind.STRING, required=False,
              length_max=NAME_LENGTH_MAX),
))
SIGNAL_WORKFLOW = BodySchema(name="signal workflow", fields=(
    _name("signal_name"),
    FieldRule(name="input", kind=FieldKind.JSON, required=False),
    _id("request_id", required=False), _id("run_id", required=False),
))
TERMINATE_WORKFLOW = BodySchema(name="terminate workflow", fields=(
    FieldRule(name="reason", kind=FieldKind.STRING, required=False,
              length_max=REASON_LENGTH_MAX),
    _id("request_id", required=False), _id("run_id", required=False),
))
CANCEL_WORKFLOW = BodySchema(name="cancel workflow", fields=(
    FieldRule(name="reason", kind=FieldKind.STRING, required=False,
              length_max=REASON_LENGTH_MAX),
    _id("request_id", required=False), _id("run_id", required=False),
))
