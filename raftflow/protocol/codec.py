"""msgpack codec for protocol types: the only place that turns them into bytes and back.

Theory of operation. A dataclass value is packed as an array `[tag, field_1, ..., field_n]` in
field-declaration order, where `tag` is the class name. Encoding lets msgpack's C packer walk the
value and calls `_default` only for dataclasses (no `asdict` deep copies). Decoding is
schema-driven: at import, each registered class gets a field plan built from its type hints
(which fields hold nested dataclasses, tuples of them, enums), so the decoder touches only those.

For speed each class's
decoder is a small generated function (`cls(a=raw[1], b=decode_b(raw[2]), ...)`, the technique
`dataclasses` itself uses), built once at import from field names, never from input data.

`SchemaCodec` is generic over a set of dataclasses so the core's snapshot can reuse it for its
mutable state classes; fields whose metadata says `{"transient": True}` are derived caches and
are neither packed nor passed to the constructor.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from enum import Enum

import msgpack

from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import results as r
from raftflow.protocol.events import HistoryEvent

Decoder = Callable[[object], object]


class SchemaCodec:
    """Packs and unpacks a closed set of dataclasses (and values built from them)."""

    def __init__(self, classes: Iterable[type]) -> None:
        self._by_type: dict[type, tuple[str, tuple[str, ...]]] = {}
        self._builders: dict[str, tuple[Decoder, int]] = {}  # tag -> (builder, array length)
        # tag -> packed defaults of its trailing fields that have a plain default, so that an
        # array written before those fields existed still decodes (fields are only appended).
        self._tails: dict[str, tuple[object, ...]] = {}
        classes = tuple(classes)
        for cls in classes:
            assert dataclasses.is_dataclass(cls), cls
            names = tuple(
                f.name for f in dataclasses.fields(cls) if not f.metadata.get("transient")
            )
            self._by_type[cls] = (cls.__name__, names)
        for cls in classes:
            hints = typing.get_type_hints(cls)
            plan = tuple((name, self._decoder_for(hints[name])) for name in self._by_type[cls][1])
            self._builders[cls.__name__] = (_make_builder(cls, plan), len(plan) + 1)
            self._tails[cls.__name__] = _default_tail(cls, self._by_type[cls][1])
        assert len(self._builders) == len(classes), "tags (class names) must be unique"

    def _default(self, value: object) -> object:
        spec = self._by_type.get(type(value))
        if spec is None:
            raise TypeError(f"cannot encode {type(value).__name__}")
        tag, names = spec
        return [tag, *[getattr(value, name) for name in names]]

    def pack(self, value: object) -> bytes:
        return msgpack.packb(value, default=self._default, use_bin_type=True)  # type: ignore[no-any-return]

    def unpack(self, data: bytes, decode: Decoder) -> object:
        raw = msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False)
        return decode(raw)

    def decode_tagged(self, raw: object) -> object:
        """Rebuild one dataclass value from its `[tag, *fields]` array."""
        assert type(raw) is tuple and raw, raw
        builder, length = self._builders[raw[0]]
        if len(raw) < length:  # written before its last fields were added: their defaults
            missing = length - len(raw)
            tail = self._tails[raw[0]]
            assert missing <= len(tail), (raw[0], len(raw), length)
            raw = raw + tail[len(tail) - missing:]
        assert len(raw) == length, (raw[0], len(raw))
        return builder(raw)

    def _decoder_for(self, hint: object) -> Decoder | None:
        """How to rebuild a field of type `hint` from unpacked msgpack; None means as-is."""
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if isinstance(hint, type) and hint in self._by_type:
            return self.decode_tagged
        if isinstance(hint, type) and issubclass(hint, Enum):
            return hint
        if origin in (typing.Union, types.UnionType):
            return self._union_decoder(args)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = self._decoder_for(args[0])
            if item is None:
                return None
            return lambda raw: tuple(map(item, raw))  # type: ignore[call-overload]
        if origin is list:
            item = self._decoder_for(args[0])
            if item is None:
                return list  # type: ignore[return-value]
            return lambda raw: list(map(item, raw))  # type: ignore[call-overload]
        if origin is dict:
            return self._dict_decoder(args[0], args[1])
        if hint is object:
            return _plain
        return None

    def _union_decoder(self, args: tuple[object, ...]) -> Decoder | None:
        members = [a for a in args if a is not type(None)]
        if all(isinstance(a, type) and a in self._by_type for a in members):
            decode = self.decode_tagged
            return lambda raw: None if raw is None else decode(raw)
        assert len(members) == 1, f"unsupported union {args}"
        inner = self._decoder_for(members[0])
        if inner is None:
            return None
        return lambda raw: None if raw is None else inner(raw)

    def _dict_decoder(self, key_hint: object, value_hint: object) -> Decoder:
        key = self._decoder_for(key_hint)
        value = self._decoder_for(value_hint)
        if key is None and value is None:
            return dict  # type: ignore[return-value]
        k = key or (lambda x: x)
        v = value or (lambda x: x)
        return lambda raw: {k(a): v(b) for a, b in raw.items()}  # type: ignore[attr-defined]


def _default_tail(cls: type, names: tuple[str, ...]) -> tuple[object, ...]:
    """Defaults of the longest run of trailing fields whose default is a plain packed value."""
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    tail: list[object] = []
    for name in reversed(names):
        default = by_name[name].default
        if default is dataclasses.MISSING or not isinstance(default, str | int | float | bool
                                                             | type(None)):
            break
        tail.append(default.value if isinstance(default, Enum) else default)
    return tuple(reversed(tail))


def _make_builder(cls: type, plan: tuple[tuple[str, Decoder | None], ...]) -> Decoder:
    """Generate `lambda raw: cls(f1=raw[1], f2=d2(raw[2]), ...)` for one class."""
    namespace: dict[str, object] = {"cls": cls}
    arguments = []
    for index, (name, decode) in enumerate(plan, start=1):
        assert name.isidentifier(), name
        if decode is None:
            arguments.append(f"{name}=raw[{index}]")
        else:
            namespace[f"d{index}"] = decode
            arguments.append(f"{name}=d{index}(raw[{index}])")
    source = f"def build(raw):\n    return cls({', '.join(arguments)})\n"
    exec(source, namespace)  # noqa: S102 - source built from field names only
    builder = namespace["build"]
    assert callable(builder)
    return builder


_NESTED = (tuple, dict)


def _plain(raw: object) -> object:
    """Free-form data (event attributes): arrays come back as lists, as they were built."""
    if type(raw) is dict:
        return {k: (_plain(v) if type(v) in _NESTED else v) for k, v in raw.items()}
    if type(raw) is tuple:
        return [_plain(v) if type(v) in _NESTED else v for v in raw]
    return raw


PROTOCOL_CLASSES: tuple[type, ...] = (
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

PROTOCOL = SchemaCodec(PROTOCOL_CLASSES)

_COMMAND_TYPES = typing.get_args(c.Command)
_RESULT_TYPES = typing.get_args(r.Result)
_EFFECT_TYPES = typing.get_args(e.Effect)


def encode_proposal(proposal: c.Proposal) -> bytes:
    assert isinstance(proposal, c.Proposal), type(proposal)
    assert proposal.seq >= 0 and proposal.incarnation >= 0, proposal
    return PROTOCOL.pack(proposal)


_PACKER = msgpack.Packer(use_bin_type=True)


def encode_proposal_parts(*, proposer: str, incarnation: int, seq: int,
                          encoded_commands: Sequence[bytes]) -> bytes:
    """The bytes of `encode_proposal(Proposal(...))` built from commands already encoded with
    `encode_command`, so the proposer encodes each command once (it sizes batches by them)."""
    assert seq >= 0 and incarnation >= 0, (seq, incarnation)
    pack = _PACKER.pack
    return b"".join((_PACKER.pack_array_header(5), pack(c.Proposal.__name__), pack(proposer),
                     pack(incarnation), pack(seq),
                     _PACKER.pack_array_header(len(encoded_commands)), *encoded_commands))


def decode_proposal(data: bytes) -> c.Proposal:
    proposal = PROTOCOL.unpack(data, PROTOCOL.decode_tagged)
    assert isinstance(proposal, c.Proposal), type(proposal)
    assert all(isinstance(command, _COMMAND_TYPES) for command in proposal.commands)
    return proposal


def encode_command(command: c.Command) -> bytes:
    assert isinstance(command, _COMMAND_TYPES), type(command)
    return PROTOCOL.pack(command)


def decode_command(data: bytes) -> c.Command:
    command = PROTOCOL.unpack(data, PROTOCOL.decode_tagged)
    assert isinstance(command, _COMMAND_TYPES), type(command)
    return typing.cast(c.Command, command)


def encode_result(result: r.Result) -> bytes:
    assert isinstance(result, _RESULT_TYPES), type(result)
    return PROTOCOL.pack(result)


def decode_result(data: bytes) -> r.Result:
    result = PROTOCOL.unpack(data, PROTOCOL.decode_tagged)
    assert isinstance(result, _RESULT_TYPES), type(result)
    return typing.cast(r.Result, result)


def encode_effect(effect: e.Effect) -> bytes:
    assert isinstance(effect, _EFFECT_TYPES), type(effect)
    return PROTOCOL.pack(effect)


def decode_effect(data: bytes) -> e.Effect:
    effect = PROTOCOL.unpack(data, PROTOCOL.decode_tagged)
    assert isinstance(effect, _EFFECT_TYPES), type(effect)
    return typing.cast(e.Effect, effect)


def encode_value(value: object) -> bytes:
    """Encode any protocol value (e.g. a `WorkflowDescription` or a `HistoryEvent`)."""
    return PROTOCOL.pack(value)


def decode_value(data: bytes) -> object:
    return PROTOCOL.unpack(data, PROTOCOL.decode_tagged)
