"""msgpack codec for protocol types: the only place that turns them into bytes and back.

Theory of operation. Every protocol type is a frozen `msgspec.Struct` declared with
`array_like=True` and its class name as `tag`, so msgspec packs a value as the array
`[ClassName, field_1, ..., field_n]` in field-declaration order: byte for byte the layout that
release 0.1's hand-written codec wrote (tests/protocol/test_codec_compat.py holds its bytes). An
array that lacks trailing fields with defaults (written before those fields were appended)
decodes with the defaults; fields are therefore only ever appended, never reordered or removed.
Enums travel as their values, bytes as msgpack bin, tuples as arrays, dicts in insertion order.

Decoders are typed: each knows the closed union it accepts, and msgspec validates every field
while it builds the value, so a malformed or foreign entry raises `msgspec.ValidationError` (a
`ValueError`) instead of yielding a half-built object. Free-form history attributes
(`dict[str, object]`) decode arrays as lists, as the old codec did.

Encoders and decoders are built once, at import; they hold no state between calls.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import msgspec

from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import results as r
from raftflow.protocol.events import HistoryEvent

PROTOCOL_CLASSES: tuple[type[msgspec.Struct], ...] = (
    c.TaskToken, c.Failure, c.RetryPolicy,
    c.ScheduleActivityTask, c.RequestCancelActivityTask, c.StartTimer, c.CancelTimer,
    c.CompleteWorkflowExecution, c.FailWorkflowExecution, c.CancelWorkflowExecution,
    c.ContinueAsNewWorkflowExecution, c.RecordMarker,
    c.StartWorkflow, c.SignalWorkflow, c.RequestCancelWorkflow, c.TerminateWorkflow,
    c.RecordWorkflowTaskStarted, c.RespondWorkflowTaskCompleted, c.RespondWorkflowTaskFailed,
    c.RecordActivityTaskStarted, c.RespondActivityTaskCompleted, c.RespondActivityTaskFailed,
    c.RespondActivityTaskCanceled, c.RecordActivityTaskHeartbeat, c.FireTimers, c.Barrier,
    c.Proposal,
    HistoryEvent,
    e.DispatchWorkflowTask, e.DispatchActivityTask, e.ArmTimer, e.WorkflowClosed,
    r.Ack, r.Rejected, r.WorkflowStartedResult, r.WorkflowTaskInfo, r.WorkflowTaskStartedResult,
    r.ActivityTaskInfo, r.ActivityTaskStartedResult, r.WorkflowTaskCompletedResult,
    r.ActivityTaskCompletedResult, r.HeartbeatResult, r.WorkflowDescription,
)


def check_wire_layout(classes: Sequence[type[msgspec.Struct]]) -> None:
    """Assert the struct options the on-disk layout depends on (used for the shard state too)."""
    for cls in classes:
        config = cls.__struct_config__
        # 0.1 wrote each class's name as its tag. A class renamed later must keep its old tag
        # string, and this check must then allow that one exception.
        assert config.tag == cls.__name__, cls
        assert config.array_like and not config.omit_defaults, cls
    tags = [cls.__struct_config__.tag for cls in classes]
    assert len(set(tags)) == len(tags), "tags must be unique"


check_wire_layout(PROTOCOL_CLASSES)
assert all(cls.__struct_config__.frozen for cls in PROTOCOL_CLASSES), "log values are frozen"

_COMMAND_TYPES: tuple[type, ...] = typing.get_args(c.Command)
_RESULT_TYPES: tuple[type, ...] = typing.get_args(r.Result)
_EFFECT_TYPES: tuple[type, ...] = typing.get_args(e.Effect)
assert set(_COMMAND_TYPES) | set(_RESULT_TYPES) | set(_EFFECT_TYPES) <= set(PROTOCOL_CLASSES)

# `order=None`: dicts keep insertion order, which the core keeps deterministic (DESIGN §4 I2).
ENCODER = msgspec.msgpack.Encoder(order=None)
_PROPOSAL_DECODER = msgspec.msgpack.Decoder(c.Proposal, strict=True)
_COMMAND_DECODER = msgspec.msgpack.Decoder(c.Command, strict=True)
_RESULT_DECODER = msgspec.msgpack.Decoder(r.Result, strict=True)
_EFFECT_DECODER = msgspec.msgpack.Decoder(e.Effect, strict=True)
# `decode_value` reads the tag first, then decodes with that class's decoder: one union of every
# class is not possible (`Failure` names its tag field differently, see commands.py).
_VALUE_DECODERS = {cls.__name__: msgspec.msgpack.Decoder(cls, strict=True)
                   for cls in PROTOCOL_CLASSES}


class _TagOnly(msgspec.Struct, frozen=True, array_like=True):
    """The first element of any tagged value; msgspec ignores the elements after it."""

    tag: str


_TAG_DECODER = msgspec.msgpack.Decoder(_TagOnly, strict=True)


class _ProposalOfEncodedCommands(msgspec.Struct, frozen=True, kw_only=True, array_like=True,
                                 tag="Proposal"):
    """`Proposal` whose commands are already msgpack bytes, spliced in verbatim by msgspec."""

    proposer: str
    incarnation: int
    seq: int
    commands: Sequence[msgspec.Raw]


assert _ProposalOfEncodedCommands.__struct_fields__ == c.Proposal.__struct_fields__


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
    proposal = _PROPOSAL_DECODER.decode(data)
    assert proposal.seq >= 0 and proposal.incarnation >= 0, proposal
    return proposal


def encode_command(command: c.Command) -> bytes:
    assert isinstance(command, _COMMAND_TYPES), type(command)
    return ENCODER.encode(command)


def decode_command(data: bytes) -> c.Command:
    command = _COMMAND_DECODER.decode(data)
    assert isinstance(command, _COMMAND_TYPES), type(command)
    return command


def encode_result(result: r.Result) -> bytes:
    assert isinstance(result, _RESULT_TYPES), type(result)
    return ENCODER.encode(result)


def decode_result(data: bytes) -> r.Result:
    result = _RESULT_DECODER.decode(data)
    assert isinstance(result, _RESULT_TYPES), type(result)
    return result


def encode_effect(effect: e.Effect) -> bytes:
    assert isinstance(effect, _EFFECT_TYPES), type(effect)
    return ENCODER.encode(effect)


def decode_effect(data: bytes) -> e.Effect:
    effect = _EFFECT_DECODER.decode(data)
    assert isinstance(effect, _EFFECT_TYPES), type(effect)
    return effect


def encode_value(value: object) -> bytes:
    """Encode any protocol value (e.g. a `WorkflowDescription` or a `HistoryEvent`)."""
    assert isinstance(value, PROTOCOL_CLASSES), type(value)
    return ENCODER.encode(value)


def decode_value(data: bytes) -> msgspec.Struct:
    decoder = _VALUE_DECODERS.get(_TAG_DECODER.decode(data).tag)
    if decoder is None:
        raise msgspec.ValidationError("not a tagged protocol value")
    value = decoder.decode(data)
    assert isinstance(value, PROTOCOL_CLASSES), type(value)
    return value
