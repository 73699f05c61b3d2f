"""The SDK's HTTP edge for typed values: histories come in as protocol events, workflow
commands go out as the JSON the worker API takes.

Theory of operation. Everything past this module works on `raftflow.protocol` types: a
history is decoded once, where a task or a `/history` page arrives (`decode_history`), so
replay matches event classes and never meets a malformed event; a completion's commands are
rendered once, in the body of `/tasks/workflow/complete` (`command_json`).

Command JSON (api/task_bodies.py reads it): `{"type": <command name>, ...fields}`, field names
and units (`_ms`) as the structs declare them, payloads as their JSON value. A field equal to
its default is left out, which is how the SDK always sent it (the server reads a missing
field as that same default), and an empty payload (`b""`: none) is left out at any depth, so
the server stores no payload rather than `null`; a payload holding JSON `null` (a workflow
that returned None) is sent as `null`, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import msgspec

from raftflow.protocol.commands import WorkflowCommand
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import JsonValue, event_from_json, payload_json, value_json
from raftflow.sdk.errors import MalformedHistoryError


def decode_history(bodies: object, source: str) -> list[HistoryEvent]:
    """The typed events of a JSON list of events. Raises `MalformedHistoryError` naming
    `source` and the event, for any event outside the protocol's vocabulary."""
    if not isinstance(bodies, list):
        raise MalformedHistoryError(f"{source}: events must be a list, got "
                                    f"{type(bodies).__name__}")
    events: list[HistoryEvent] = []
    for index, body in enumerate(bodies):
        name = body.get("event_id", f"#{index}") if isinstance(body, Mapping) else f"#{index}"
        try:
            events.append(event_from_json(body))
        except msgspec.ValidationError as error:  # the one error event_from_json raises
            event_type = body.get("event_type") if isinstance(body, Mapping) else None
            raise MalformedHistoryError(
                f"{source}: event {name} ({event_type!r}) is malformed: {error!r}") from error
    return events


def command_json(command: WorkflowCommand) -> dict[str, JsonValue]:
    """One workflow command as the worker API's JSON (see the module docstring)."""
    kind = command.__struct_config__.tag
    assert isinstance(kind, str), command
    body: dict[str, JsonValue] = {"type": kind}
    for name, required, default in _fields(type(command)):
        value = getattr(command, name)
        if required or value != default:
            body[name] = _value_json(value)
    return body


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[tuple[str, bool, object], ...]:
    # msgspec.structs.fields evaluates the class's annotations on every call (15 % of a
    # benchmark worker's CPU when called per command), so each class's list is kept.
    return tuple((f.name, f.required, f.default) for f in msgspec.structs.fields(cls))


def commands_json(commands: Sequence[WorkflowCommand]) -> list[dict[str, JsonValue]]:
    return [command_json(c) for c in commands]


def _value_json(value: object) -> JsonValue:
    if isinstance(value, bytes):
        return payload_json(value)
    if isinstance(value, msgspec.Struct):
        return {name: _value_json(getattr(value, name)) for name in value.__struct_fields__
                if getattr(value, name) != b""}
    return value_json(value)
