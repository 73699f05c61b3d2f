"""A workflow task's payloads through the codec, outside the deterministic replay: the history's
payloads decoded before the workflow code replays it, the commands' payloads encoded after.

Theory of operation. Replay (`_replay`) is pure and synchronous, and a codec is async and may
do IO, so replay never meets one: it reads plain payloads in events and writes plain payloads
in commands, exactly as without a codec, and the worker converts at the edge
(`_workflow_task_runner`, `worker._fetch_history`). Replayed commands are matched against
decoded events, so an encrypted marker (whose ciphertext differs at every encoding) still
matches the one its first run recorded.

Every payload field of every event type is decoded, found from the structs' declarations (a
`bytes` field, or a `Failure`'s details), so an event type added later is covered without a
change here; decoding needs no knowledge of the field (`WirePayloads.decode` goes by the
value's shape). Encoding does: each command's payloads are listed with their shape
(`command_payloads`, also the worker's size check), and a new command type is a type error
here until it is listed (`assert_never`).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import assert_never

import msgspec

from raftflow.protocol.commands import (
    CancelTimer,
    CancelWorkflowExecution,
    CompleteWorkflowExecution,
    CompleteWorkflowUpdate,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RecordMarker,
    RequestCancelActivityTask,
    RequestCancelExternalWorkflowExecution,
    ScheduleActivityTask,
    SignalExternalWorkflowExecution,
    StartChildWorkflowExecution,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.events import (
    ActivityTaskFailedEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    EventAttributes,
    HistoryEvent,
    TimerFiredEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes
from raftflow.sdk._payload_envelope import holds_envelope, may_hold_envelope
from raftflow.sdk._wire_payloads import PayloadShape, WirePayloads
from raftflow.sdk.errors import PayloadCodecError


def _payload_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    names: list[str] = []
    for field in msgspec.structs.fields(cls):
        if field.type is bytes or Failure in (field.type, *typing.get_args(field.type)):
            names.append(field.name)
    return tuple(names)


# Event attributes class -> the names of its fields that hold payloads (bytes or a Failure).
PAYLOAD_FIELDS: Mapping[type, tuple[str, ...]] = MappingProxyType(
    {cls: _payload_fields(cls) for cls in typing.get_args(EventAttributes)})
# If payloads were ever declared with another type (say `Payload` rather than `bytes`), this
# search would find none and decode nothing: pin what it must find.
assert PAYLOAD_FIELDS[WorkflowExecutionStartedEventAttributes] == ("input",)
assert PAYLOAD_FIELDS[ActivityTaskFailedEventAttributes] == ("failure",)
assert PAYLOAD_FIELDS[ActivityTaskTimedOutEventAttributes] == ("last_failure",)
assert PAYLOAD_FIELDS[TimerFiredEventAttributes] == ()


async def decode_events(payloads: WirePayloads, events: Sequence[HistoryEvent],
                        source: str) -> list[HistoryEvent]:
    """`events` with every payload decoded (an event without an envelope is kept as it is).
    Raises `PayloadCodecError` naming `source`, the event and the field."""
    decoded = list(events)
    for index, event in enumerate(events):
        # Most events hold no envelope (none do without a codec): checked without a coroutine,
        # so a worker with no codec pays a substring search per payload field, no more.
        if any(may_hold_envelope(data) for data in _payload_texts(event)):
            decoded[index] = await _decode_event(payloads, event, source)
    return decoded


def _payload_texts(event: HistoryEvent) -> list[bytes]:
    """The JSON text of each payload the event holds (a failure's: its details)."""
    texts: list[bytes] = []
    for name in PAYLOAD_FIELDS[type(event.attributes)]:
        value = getattr(event.attributes, name)
        if isinstance(value, Failure):
            texts.append(value.details)
        elif isinstance(value, bytes):
            texts.append(value)
    return texts


async def _decode_event(payloads: WirePayloads, event: HistoryEvent,
                        source: str) -> HistoryEvent:
    attributes = event.attributes
    changes: dict[str, object] = {}
    for name in PAYLOAD_FIELDS[type(attributes)]:
        value = getattr(attributes, name)
        if isinstance(value, bytes) and may_hold_envelope(value):
            changes[name] = await payloads.decode(value, _field(source, event, name))
        elif isinstance(value, Failure) and may_hold_envelope(value.details):
            changes[name] = await payloads.decode_failure(value, _field(source, event, name))
    if not changes:
        return event
    return msgspec.structs.replace(
        event, attributes=msgspec.structs.replace(attributes, **changes))


def refuse_envelopes(events: Sequence[HistoryEvent], source: str) -> None:
    """Raise `PayloadCodecError` if an event holds an encoded payload: for code that replays a
    history with no codec at hand (`replayer.replay_history`), so workflow code never gets an
    envelope as its input."""
    for event in events:
        for name in PAYLOAD_FIELDS[type(event.attributes)]:
            value = getattr(event.attributes, name)
            data = value.details if isinstance(value, Failure) else value
            if (isinstance(data, bytes) and may_hold_envelope(data)
                    and holds_envelope(payload_json(data))):
                raise PayloadCodecError(
                    f"{_field(source, event, name)} was encoded by a payload codec; decode the "
                    f"history first (replayer.decode_workflow_history with the codec)")


def _field(source: str, event: HistoryEvent, name: str) -> str:
    return f"{source}: event {event.event_id} ({event.event_type.value}) {name}"


async def encode_commands(payloads: WirePayloads,
                          commands: Sequence[WorkflowCommand]) -> list[WorkflowCommand]:
    """`commands` with their payloads as the wire carries them (unchanged without a codec).
    Raises `PayloadCodecError` naming the command's field."""
    if payloads.codec is None:
        return list(commands)
    return [await _encode_command(payloads, command) for command in commands]


@dataclass(frozen=True, slots=True)
class CommandPayload:
    """One payload a workflow command carries: the field holding it (a `Failure` field: its
    details), its shape, and how errors name it."""

    field: str
    shape: PayloadShape
    what: str
    in_failure: bool = False


def command_payloads(command: WorkflowCommand) -> tuple[CommandPayload, ...]:
    """The payloads of `command`: the one list of them, for the codec (`encode_commands`) and
    the size check (`_payload_limits`). A new command type is a type error here until listed."""
    match command:
        case ScheduleActivityTask():
            return (CommandPayload("input", PayloadShape.ARGS, f"input of activity "
                                   f"{command.activity_type} ({command.activity_id})"),)
        case CompleteWorkflowExecution():
            return (CommandPayload("result", PayloadShape.VALUE, "workflow result"),)
        case FailWorkflowExecution():
            return (CommandPayload("failure", PayloadShape.ARGS, "workflow failure details",
                                   in_failure=True),)
        case CancelWorkflowExecution():
            return (CommandPayload("details", PayloadShape.VALUE, "workflow cancel details"),)
        case ContinueAsNewWorkflowExecution():
            return (CommandPayload("input", PayloadShape.ARGS, "continue-as-new input"),)
        case RecordMarker():
            return (CommandPayload("details", PayloadShape.VALUE,
                                   f"details of marker {command.marker_name}"),)
        case StartChildWorkflowExecution():
            return (CommandPayload("input", PayloadShape.ARGS, f"input of child workflow "
                                   f"{command.workflow_type} ({command.workflow_id})"),)
        case SignalExternalWorkflowExecution():
            return (CommandPayload("input", PayloadShape.ARGS, f"input of signal "
                                   f"{command.signal_name} to {command.workflow_id}"),)
        case CompleteWorkflowUpdate():
            result = CommandPayload("result", PayloadShape.VALUE,
                                    f"result of update {command.update_id}")
            if command.failure is None:
                return (result,)
            return (result, CommandPayload("failure", PayloadShape.ARGS, f"failure details of "
                                           f"update {command.update_id}", in_failure=True))
        case (RequestCancelActivityTask() | StartTimer() | CancelTimer()
              | UpsertWorkflowSearchAttributes() | RequestCancelExternalWorkflowExecution()):
            return ()  # no payload: ids, durations, search attributes stay plain
        case _:
            assert_never(command)


def payload_data(command: WorkflowCommand, payload: CommandPayload) -> bytes:
    """The payload's JSON text as the command holds it."""
    value = getattr(command, payload.field)
    data = value.details if payload.in_failure else value
    assert isinstance(data, bytes), (payload, type(data))
    return data


async def _encode_command(payloads: WirePayloads, command: WorkflowCommand) -> WorkflowCommand:
    changes: dict[str, object] = {}
    for payload in command_payloads(command):
        value = getattr(command, payload.field)
        changes[payload.field] = (
            await payloads.encode_failure(value, payload.what) if payload.in_failure
            else await payloads.encode(value, payload.shape, payload.what))
    return msgspec.structs.replace(command, **changes) if changes else command
