"""Goal: log entries written by release 0.1 decode unchanged, and new encodings equal them byte
for byte, now that the protocol types are msgspec Structs.

Method: `tests/data/protocol-v0.1/codec-values.json` holds the bytes that 0.1's hand-written
codec wrote for the values of `samples.py` (every command, workflow command, result and effect,
two proposals, history events, a description). Each is decoded with the current codec and
compared with the sample, then the sample is encoded and compared with the old bytes. A few
more checks pin what the byte layout does not show: free-form attributes decode arrays as lists,
a proposal built from encoded commands equals the plain encoding at every array-header width,
and the struct options the layout relies on.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from raftflow.protocol import codec
from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import results as r
from raftflow.protocol.events import HistoryEvent
from tests.protocol import samples

FIXTURE = Path(__file__).parent.parent / "data" / "protocol-v0.1" / "codec-values.json"
OLD_BYTES: dict[str, str] = json.loads(FIXTURE.read_text())["values"]

Case = tuple[object, Callable[[bytes], object], Callable[[typing.Any], bytes]]


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for name, command in samples.COMMANDS.items():
        cases[f"command/{name}"] = (command, codec.decode_command, codec.encode_command)
    for name, result in samples.RESULTS.items():
        cases[f"result/{name}"] = (result, codec.decode_result, codec.encode_result)
    for name, effect in samples.EFFECTS.items():
        cases[f"effect/{name}"] = (effect, codec.decode_effect, codec.encode_effect)
    for name, value in {**samples.WORKFLOW_COMMANDS, **samples.OTHER_VALUES}.items():
        cases[f"value/{name}"] = (value, codec.decode_value, codec.encode_value)
    for name in ("PROPOSAL", "EMPTY_PROPOSAL"):
        cases[f"proposal/{name}"] = (getattr(samples, name), codec.decode_proposal,
                                     codec.encode_proposal)
    return cases


CASES = _cases()


def test_the_fixture_covers_every_wire_type() -> None:
    assert set(CASES) == set(OLD_BYTES)
    assert {type(v) for v in samples.COMMANDS.values()} == set(typing.get_args(c.Command))
    assert {type(v) for v in samples.WORKFLOW_COMMANDS.values()} == set(
        typing.get_args(c.WorkflowCommand))
    assert {type(v) for v in samples.RESULTS.values()} == set(typing.get_args(r.Result))
    assert {type(v) for v in samples.EFFECTS.values()} == set(typing.get_args(e.Effect))
    covered = {type(value) for value, _, _ in CASES.values()}
    nested = {c.TaskToken, r.WorkflowTaskInfo, r.ActivityTaskInfo}  # inside the results
    assert covered | nested == set(codec.PROTOCOL_CLASSES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bytes_written_by_0_1_decode_to_the_same_value(name: str) -> None:
    value, decode, _ = CASES[name]
    decoded = decode(bytes.fromhex(OLD_BYTES[name]))
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_encoding_is_byte_identical_to_0_1(name: str) -> None:
    value, _, encode = CASES[name]
    assert encode(value) == bytes.fromhex(OLD_BYTES[name])


def test_enums_decode_as_members_and_str_fields_as_plain_str() -> None:
    start = codec.decode_command(bytes.fromhex(OLD_BYTES["command/StartWorkflow"]))
    assert isinstance(start, c.StartWorkflow)
    assert start.id_reuse_policy is c.IdReusePolicy.TERMINATE_IF_RUNNING
    event = codec.decode_value(bytes.fromhex(OLD_BYTES["value/HistoryEvent"]))
    assert isinstance(event, HistoryEvent)
    assert type(event.event_type) is str and event.event_type == "ActivityTaskScheduled"


def test_history_attributes_decode_arrays_as_lists_like_0_1() -> None:
    # 0.1 decoded free-form attributes with `_plain`: every nested array became a list.
    event = HistoryEvent(event_id=1, event_type="MarkerRecorded", time_ms=1, attributes={
        "tuple": (1, (2, 3)), "in_map": {"t": ("a",)}, "bytes": b"\x00", "none": None})
    decoded = codec.decode_value(codec.encode_value(event))
    assert isinstance(decoded, HistoryEvent)
    assert decoded.attributes == {"tuple": [1, [2, 3]], "in_map": {"t": ["a"]},
                                  "bytes": b"\x00", "none": None}
    assert type(decoded.attributes["tuple"]) is list
    assert type(decoded.attributes["tuple"][1]) is list  # type: ignore[index]


@pytest.mark.parametrize("count", [0, 1, 15, 16, 70_000])  # fixarray, array16, array32 headers
def test_proposal_from_encoded_commands_equals_the_plain_encoding(count: int) -> None:
    pool = list(samples.COMMANDS.values())
    commands = tuple(pool[i % len(pool)] for i in range(count))
    whole = codec.encode_proposal(c.Proposal(proposer="node-1", incarnation=2**33, seq=count,
                                             commands=commands))
    parts = codec.encode_proposal_parts(
        proposer="node-1", incarnation=2**33, seq=count,
        encoded_commands=[codec.encode_command(command) for command in commands])
    assert parts == whole
    assert codec.decode_proposal(parts).commands == commands


def test_unknown_or_foreign_entries_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        codec.decode_value(codec.ENCODER.encode(["NoSuchType", 1]))
    with pytest.raises(msgspec.ValidationError):  # a result is not a command
        codec.decode_command(bytes.fromhex(OLD_BYTES["result/Ack"]))
    with pytest.raises(msgspec.ValidationError):  # a field of the wrong type
        codec.decode_command(codec.ENCODER.encode(["FireTimers", "soon"]))


def test_protocol_values_are_frozen_hashable_structs() -> None:
    for cls in codec.PROTOCOL_CLASSES:
        config = cls.__struct_config__
        assert config.frozen and config.array_like and config.tag == cls.__name__, cls
    with pytest.raises(AttributeError):
        samples.TOKEN.attempt = 9  # type: ignore[misc]
    assert len({samples.TOKEN, msgspec.structs.replace(samples.TOKEN, attempt=3)}) == 1
    moved = msgspec.structs.replace(samples.TOKEN, attempt=4)
    assert moved != samples.TOKEN and moved.attempt == 4
