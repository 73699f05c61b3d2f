"""History events as the HTTP API's JSON, both ways, so the gateway that renders them and the
SDK and chaos checker that read them share one definition of the shape.

Theory of operation. The JSON of an event is `{"event_id", "event_type", "timestamp",
"attributes"}`: `timestamp` is ISO 8601 UTC with milliseconds (`time_ms` exactly), and
`attributes` holds the attribute struct's fields with no tag (the tag is `event_type`). Payload
fields (`bytes`: the user's JSON text inside the engine) are embedded as their JSON value, the
empty payload as `null`; nested structs (failures, retry policies) are plain objects; enums are
their values. Reading walks the attribute struct's declared field types, never guessing from the
data, and `msgspec.convert` then checks every value against them: a history that does not match
the vocabulary is refused with `msgspec.ValidationError` at the edge, not deep in replay.

A payload read back is the compact JSON text of its value (`ensure_ascii=False`): the same JSON
value as the engine's bytes, not always the same bytes (the gateway keeps a payload's text as
the client sent it, whitespace removed, so escapes and number spellings may differ).
"""

from __future__ import annotations

import base64
import json
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cache, lru_cache

import msgspec

from raftflow.protocol.events import EventAttributes, EventType, HistoryEvent
from raftflow.protocol.http_answers import HistoryEventAnswer
from raftflow.protocol.payload import msgpack_dec_hook

JsonValue = object

_ATTRIBUTE_TYPES: dict[str, type[msgspec.Struct]] = {
    cls.event_type.value: cls for cls in typing.get_args(EventAttributes)
}
assert set(_ATTRIBUTE_TYPES) == {t.value for t in EventType}, "one struct per event type"


def payload_json(data: bytes) -> JsonValue:
    """A payload's JSON value (None for an empty payload)."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        # Only payloads that entered through the API reach here, so they are JSON; keep any
        # other bytes visible rather than failing the whole response.
        return {"base64": base64.b64encode(data).decode()}


def payload_from_json(value: JsonValue) -> bytes:
    """The engine's bytes for a payload's JSON value (`payload_json`'s inverse)."""
    if value is None:
        return b""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def timestamp(time_ms: int) -> str:
    """RFC 3339 UTC with milliseconds (`2026-12-06T12:00:00.123+00:00`). Rendered for every
    event a task answer carries, so the whole seconds are formatted once per second seen (a
    bounded cache) and only the milliseconds per call; integer parts, no float rounding."""
    seconds, millis = divmod(time_ms, 1000)
    return f"{_whole_second(seconds)}.{millis:03d}+00:00"


# Distinct seconds kept formatted: events rendered together are seconds apart at most.
TIMESTAMP_SECONDS_CACHED = 4096


@lru_cache(maxsize=TIMESTAMP_SECONDS_CACHED)
def _whole_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds").removesuffix(
        "+00:00")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_ms_from_timestamp(text: str) -> int:
    """`timestamp`'s inverse. Raises `msgspec.ValidationError` for text that is no ISO 8601
    time with a zone (the HTTP JSON always has one)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as error:
        raise msgspec.ValidationError(f"timestamp {text!r} is not ISO 8601") from error
    if moment.tzinfo is None:
        raise msgspec.ValidationError(f"timestamp {text!r} has no zone")
    # Integer arithmetic on the parts: float seconds would lose a millisecond now and then.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def value_json(value: object) -> JsonValue:
    """A typed value as JSON: payload bytes as their JSON value, structs as objects of their
    fields with no tag, enums as their values."""
    if isinstance(value, bytes):
        return payload_json(value)
    if isinstance(value, msgspec.Struct):
        return {name: value_json(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, tuple | list):
        return [value_json(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def attributes_json(attributes: EventAttributes) -> dict[str, JsonValue]:
    """An event's attributes as a JSON object: its fields, not its tag (that is `event_type`)."""
    return {name: value_json(getattr(attributes, name))
            for name in attributes.__struct_fields__}


def event_json(event: HistoryEvent) -> dict[str, JsonValue]:
    return {"event_id": event.event_id, "event_type": event.event_type.value,
            "timestamp": timestamp(event.time_ms), "attributes": attributes_json(event.attributes)}


def event_from_json(body: object) -> HistoryEvent:
    """The typed event of one event's JSON (`event_json`'s inverse). Anything that is not such
    an event raises `msgspec.ValidationError`, naming what is wrong."""
    if not isinstance(body, Mapping):
        raise msgspec.ValidationError(f"an event is a JSON object, not {type(body).__name__}")
    missing = [key for key in ("event_id", "event_type", "timestamp", "attributes")
               if key not in body]
    if missing:
        raise msgspec.ValidationError(f"event {body.get('event_id')!r}: no {missing[0]!r}")
    event_type, attributes, timestamp_text = (body["event_type"], body["attributes"],
                                              body["timestamp"])
    if not isinstance(event_type, str) or event_type not in _ATTRIBUTE_TYPES:
        raise msgspec.ValidationError(f"unknown event_type {event_type!r}")
    if not isinstance(attributes, Mapping) or not isinstance(timestamp_text, str):
        raise msgspec.ValidationError(f"event {body.get('event_id')!r}: malformed")
    return _typed_event(msgspec.convert(body["event_id"], type=int), event_type,
                        timestamp_text, attributes)


def event_from_answer(answer: HistoryEventAnswer) -> HistoryEvent:
    """The typed event of one event already read into the API's answer struct (an event inside
    a polled task, decoded with the task): `event_from_json` past the envelope, which the
    struct has checked. Raises `msgspec.ValidationError` for malformed attributes or time."""
    return _typed_event(answer.event_id, answer.event_type.value, answer.timestamp,
                        answer.attributes)


def _typed_event(event_id: int, event_type: str, timestamp_text: str,
                 attributes: Mapping[str, JsonValue]) -> HistoryEvent:
    """The one reading of an event's attributes and time, behind both envelopes."""
    cls = _ATTRIBUTE_TYPES[event_type]
    typed: EventAttributes = msgspec.convert(  # type: ignore[assignment]
        _struct_builtins(cls, attributes), type=cls,  # cls is one member of the union
        dec_hook=msgpack_dec_hook)  # payload bytes into `Payload` fields (failure details)
    return HistoryEvent(event_id=event_id, time_ms=time_ms_from_timestamp(timestamp_text),
                        attributes=typed)


def history_from_json(bodies: Iterable[Mapping[str, JsonValue]]) -> list[HistoryEvent]:
    return [event_from_json(body) for body in bodies]


def _struct_builtins(cls: type[msgspec.Struct], body: Mapping[str, JsonValue]) -> dict[str, object]:
    """`body` with payloads turned back into bytes and nested structs into their builtins,
    by the declared type of each field. Keys `cls` does not declare are dropped: a newer
    server may add a field, and a reader of this release must still read the event."""
    declared = _declared(cls)
    built = {key: value for key, value in body.items() if key in declared}
    for name, nested in _conversions(cls):
        if name not in built:
            continue
        value = built[name]
        if nested is None:
            built[name] = payload_from_json(value)
        elif isinstance(value, Mapping):
            built[name] = _struct_builtins(nested, value)
    return built


@cache
def _declared(cls: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(cls.__struct_fields__)


@cache
def _conversions(cls: type[msgspec.Struct]) -> tuple[tuple[str, type[msgspec.Struct] | None], ...]:
    """The fields of `cls` that need more than `convert`: payloads (None) and nested structs
    (their class), worked out once per class from the declared types; the other fields are
    passed through as they are (an event decodes per event on the SDK's hot path)."""
    plan: list[tuple[str, type[msgspec.Struct] | None]] = []
    for field in msgspec.structs.fields(cls):
        hint: object = field.type
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            assert len(members) == 1, f"a JSON field of union type {hint} needs a tag"
            hint = members[0]
        if typing.get_origin(hint) is typing.Annotated:  # e.g. `PayloadField`
            hint = typing.get_args(hint)[0]
        if isinstance(hint, type) and issubclass(hint, bytes):  # bytes or Payload
            plan.append((field.name, None))
        elif isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            plan.append((field.name, hint))
    return tuple(plan)
