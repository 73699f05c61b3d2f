"""msgpack codec for protocol types: the only place that turns them into bytes and back.

Theory of operation. Every protocol type is a frozen `msgspec.Struct` encoded as a map of its
field names, the same shape its JSON takes over HTTP. A member of a union carries its class name
under that union's tag field (`command`, `type`, `result`, `effect`, and `event_type`
for history event attributes); other structs carry
no tag, their place in the enclosing type says what they are. A map that lacks a field with a
default (written before that field was added) decodes with the default, so fields are only ever
added with a default. Enums travel as their values, bytes and payloads (`payload.Payload`, through
its hooks) as msgpack bin, tuples as arrays, dicts in insertion order.

Release 0.1 packed every value as the array `[ClassName, f1, ..., fn]`. A stored value is an
array exactly when 0.1 wrote it, so every decoder looks at the first byte and hands such bytes to
`legacy_arrays.from_legacy`, which rebuilds the same typed value.

Decoders are typed: each knows the closed union it accepts, and msgspec validates every field
while it builds the value, so a malformed or foreign entry raises `msgspec.ValidationError` (a
`ValueError`) instead of yielding a half-built object.

Encoders and decoders are built once, at import; they hold no state between calls.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import msgspec

from raftflow.protocol import batches as b
from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import events as ev
from raftflow.protocol import legacy_arrays
from raftflow.protocol import messages as m
from raftflow.protocol import results as r
from raftflow.protocol import schedule_calendars as cal
from raftflow.protocol import schedule_commands as sc
from raftflow.protocol import schedules as sp
from raftflow.protocol import search_attributes as sa
from raftflow.protocol import updates as u
from raftflow.protocol.payload import msgpack_dec_hook, msgpack_enc_hook

T = typing.TypeVar("T")
StructT = typing.TypeVar("StructT", bound=msgspec.Struct)

PROTOCOL_CLASSES: tuple[type[msgspec.Struct], ...] = (
    c.TaskToken, c.Failure, c.RetryPolicy,
    c.ScheduleActivityTask, c.RequestCancelActivityTask, c.StartTimer, c.CancelTimer,
    c.CompleteWorkflowExecution, c.FailWorkflowExecution, c.CancelWorkflowExecution,
    c.ContinueAsNewWorkflowExecution, c.RecordMarker, sa.UpsertWorkflowSearchAttributes,
    sa.SearchAttribute, c.SignalExternalWorkflowExecution,
    c.RequestCancelExternalWorkflowExecution, c.StartChildWorkflowExecution,
    c.StartWorkflow, c.SignalWorkflow, c.RequestCancelWorkflow, c.TerminateWorkflow,
    c.RecordWorkflowTaskStarted, c.RespondWorkflowTaskCompleted, c.RespondWorkflowTaskFailed,
    c.RecordActivityTaskStarted, c.RespondActivityTaskCompleted, c.RespondActivityTaskFailed,
    c.RespondActivityTaskCanceled, c.RecordActivityTaskHeartbeat, c.FireTimers, c.Barrier,
    c.ConfigureNamespace, c.ResetWorkflow, m.DeliverMessages, m.AckMessages,
    m.SignalMessage, m.CancelMessage, m.TerminateMessage, m.StartChildMessage,
    m.ChildClosedMessage, m.OutboxEntry, m.MessageOutcome,
    b.StartBatch, b.RecordBatchProgress, b.StopBatch, b.BatchOperation,
    m.ScheduleStartMessage, m.ScheduleActionClosedMessage,
    sc.CreateSchedule, sc.UpdateSchedule, sc.PatchSchedule, sc.DeleteSchedule, sc.ScheduleTick,
    sc.ScheduleDueTime, sc.BackfillTick,
    sp.Schedule, sp.ScheduleSpec, sp.IntervalSpec, sp.SchedulePolicies, sp.ScheduleState,
    sp.ScheduleStartWorkflowAction, sp.ScheduleBackfill, cal.CalendarSpec, cal.ScheduleRange,
    c.Proposal,
    ev.HistoryEvent,
    e.DispatchWorkflowTask, e.DispatchActivityTask, e.ArmTimer, e.WorkflowClosed, e.MessageQueued, e.BatchActive,
    r.Ack, r.Rejected, r.WorkflowStartedResult, r.WorkflowTaskInfo, r.WorkflowTaskStartedResult,
    r.ActivityTaskInfo, r.ActivityTaskStartedResult, r.WorkflowTaskCompletedResult,
    r.ActivityTaskCompletedResult, r.HeartbeatResult, r.WorkflowDescription,
    r.MessagesDelivered,
    *typing.get_args(ev.EventAttributes),
    u.RequestWorkflowUpdate, u.WorkflowUpdateRequest, u.WorkflowUpdateResponse,
    u.CompleteWorkflowUpdate, u.WorkflowUpdateResult,
)


UNION_TAG_FIELDS: dict[object, str] = {
    c.Command: "command", c.WorkflowCommand: "type", r.Result: "result", e.Effect: "effect",
    ev.EventAttributes: "event_type", m.MessageBody: "message",
}


_EVENT_TAGS: dict[type, str] = {
    cls: cls.event_type.value for cls in typing.get_args(ev.EventAttributes)}


def check_wire_layout(classes: Sequence[type[msgspec.Struct]]) -> None:
    """Assert the struct options the stored layout depends on (used for the shard state too)."""
    for cls in classes:
        config = cls.__struct_config__
        assert not config.array_like and not config.omit_defaults, cls
        # Tags are class names (a class renamed later keeps its old tag string, and this check
        # must then allow it), except event attributes: Temporal's event type name.
        tag = _EVENT_TAGS.get(cls, cls.__name__)
        assert config.tag is None or config.tag == tag, cls
        assert config.tag_field is None or config.tag_field not in cls.__struct_fields__, cls


check_wire_layout(PROTOCOL_CLASSES)
assert all(cls.__struct_config__.frozen for cls in PROTOCOL_CLASSES), "log values are frozen"
for _union, _tag_field in UNION_TAG_FIELDS.items():
    # Each union has its own tag field; its members, and only they, carry it.
    assert {m.__struct_config__.tag_field for m in typing.get_args(_union)} == {_tag_field}
assert {cls for cls in PROTOCOL_CLASSES if cls.__struct_config__.tag is not None} == {
    m for union in UNION_TAG_FIELDS for m in typing.get_args(union)}

_COMMAND_TYPES: tuple[type, ...] = typing.get_args(c.Command)
_RESULT_TYPES: tuple[type, ...] = typing.get_args(r.Result)
_EFFECT_TYPES: tuple[type, ...] = typing.get_args(e.Effect)
assert set(_COMMAND_TYPES) | set(_RESULT_TYPES) | set(_EFFECT_TYPES) <= set(PROTOCOL_CLASSES)

# `order=None`: dicts keep insertion order, which the core keeps deterministic (DESIGN §4 I2).
ENCODER = msgspec.msgpack.Encoder(order=None, enc_hook=msgpack_enc_hook)


def decoder(target: type[T]) -> msgspec.msgpack.Decoder[T]:
    """A strict msgpack decoder of `target` that reads payload fields."""
    return msgspec.msgpack.Decoder(target, strict=True, dec_hook=msgpack_dec_hook)


_PROPOSAL_DECODER = decoder(c.Proposal)
_COMMAND_DECODER: msgspec.msgpack.Decoder[c.Command] = decoder(c.Command)  # type: ignore[arg-type]
_RESULT_DECODER: msgspec.msgpack.Decoder[r.Result] = decoder(r.Result)  # type: ignore[arg-type]
_EFFECT_DECODER: msgspec.msgpack.Decoder[e.Effect] = decoder(e.Effect)  # type: ignore[arg-type]
_VALUE_DECODERS = {cls: decoder(cls) for cls in PROTOCOL_CLASSES}


class _ProposalOfEncodedCommands(msgspec.Struct, frozen=True, kw_only=True):
    """`Proposal` whose commands are already msgpack bytes, spliced in verbatim by msgspec."""

    proposer: str
    incarnation: int
    seq: int
    commands: Sequence[msgspec.Raw]


assert _ProposalOfEncodedCommands.__struct_fields__ == c.Proposal.__struct_fields__


def _decode(decoder: msgspec.msgpack.Decoder[T], target: object, data: bytes) -> T:
    """Current bytes through `decoder`; bytes 0.1 wrote (arrays) through the converter, which
    validates them against the same `target` type."""
    if legacy_arrays.is_legacy(data):
        return typing.cast(T, legacy_arrays.from_legacy(data, target))
    return decoder.decode(data)


def encode_proposal(proposal: c.Proposal) -> bytes:
    assert isinstance(proposal, c.Proposal), type(proposal)
    assert proposal.seq >= 0 and proposal.incarnation >= 0, proposal
    return ENCODER.encode(proposal)


def encode_proposal_parts(*, proposer: str, incarnation: int, seq: int,
                          encoded_commands: Sequence[bytes]) -> bytes:
    """The bytes of `encode_proposal(Proposal(...))` built from commands already encoded with
    `encode_command`, so the proposer encodes each command once (it sizes batches by them)."""
    assert seq >= 0 and incarnation >= 0, (seq, incarnation)
    return ENCODER.encode(_ProposalOfEncodedCommands(
        proposer=proposer, incarnation=incarnation, seq=seq,
        commands=[msgspec.Raw(command) for command in encoded_commands]))


def decode_proposal(data: bytes) -> c.Proposal:
    proposal = _decode(_PROPOSAL_DECODER, c.Proposal, data)
    assert proposal.seq >= 0 and proposal.incarnation >= 0, proposal
    return proposal


def encode_command(command: c.Command) -> bytes:
    assert isinstance(command, _COMMAND_TYPES), type(command)
    return ENCODER.encode(command)


def decode_command(data: bytes) -> c.Command:
    command = _decode(_COMMAND_DECODER, c.Command, data)
    assert isinstance(command, _COMMAND_TYPES), type(command)
    return command


def encode_result(result: r.Result) -> bytes:
    assert isinstance(result, _RESULT_TYPES), type(result)
    return ENCODER.encode(result)


def decode_result(data: bytes) -> r.Result:
    result = _decode(_RESULT_DECODER, r.Result, data)
    assert isinstance(result, _RESULT_TYPES), type(result)
    return result


def encode_effect(effect: e.Effect) -> bytes:
    assert isinstance(effect, _EFFECT_TYPES), type(effect)
    return ENCODER.encode(effect)


def decode_effect(data: bytes) -> e.Effect:
    effect = _decode(_EFFECT_DECODER, e.Effect, data)
    assert isinstance(effect, _EFFECT_TYPES), type(effect)
    return effect


def encode_value(value: object) -> bytes:
    """Encode any protocol value (e.g. a `WorkflowDescription` or a `HistoryEvent`)."""
    assert isinstance(value, PROTOCOL_CLASSES), type(value)
    return ENCODER.encode(value)


def decode_value(data: bytes, cls: type[StructT]) -> StructT:
    """Decode a protocol value of class `cls` (current or 0.1 layout)."""
    decoder = _VALUE_DECODERS.get(cls)
    if decoder is None:
        raise msgspec.ValidationError(f"{cls.__name__} is not a protocol class")
    value = _decode(decoder, cls, data)
    assert isinstance(value, cls), type(value)
    return value
