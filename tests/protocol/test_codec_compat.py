"""Goal: log entries written by release 0.1 (arrays) decode unchanged, and the current layout
(maps of field names, one tag field per union) round-trips every value.

Method: `tests/data/protocol-v0.1/codec-values.json` holds the bytes that 0.1's hand-written
codec wrote for the values of `samples.py` (every command, workflow command, result and effect,
two proposals, history events, a description). Each is decoded with the current codec (through
`legacy_arrays`) and compared with the sample; the sample is encoded in the current layout,
decoded again, and must equal both. A few more checks pin what the byte layout does not show:
0.1's free-form attribute maps become typed attributes, the converter follows the target type and not the
data, a proposal built from encoded commands equals the plain encoding, the tag field names, and
the struct options the layout relies on.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from raftflow.protocol import codec, legacy_arrays
from raftflow.protocol import commands as c
from raftflow.protocol import effects as e
from raftflow.protocol import events as ev
from raftflow.protocol import results as r
from raftflow.protocol.events import EventType, HistoryEvent
from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.search_attributes import SearchAttribute
from raftflow.protocol.updates import WorkflowUpdateRequest
from tests.protocol import samples

FIXTURE = Path(__file__).parent.parent / "data" / "protocol-v0.1" / "codec-values.json"
OLD_BYTES: dict[str, str] = json.loads(FIXTURE.read_text())["values"]

Case = tuple[object, Callable[[bytes], object], Callable[[typing.Any], bytes]]


def _decode_value(cls: type[msgspec.Struct], data: bytes) -> object:
    return codec.decode_value(data, cls)


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for name, command in samples.COMMANDS.items():
        cases[f"command/{name}"] = (command, codec.decode_command, codec.encode_command)
    for name, result in samples.RESULTS.items():
        cases[f"result/{name}"] = (result, codec.decode_result, codec.encode_result)
    for name, effect in samples.EFFECTS.items():
        cases[f"effect/{name}"] = (effect, codec.decode_effect, codec.encode_effect)
    for name, value in {**samples.WORKFLOW_COMMANDS, **samples.OTHER_VALUES}.items():
        cases[f"value/{name}"] = (value, functools.partial(_decode_value, type(value)),
                                  codec.encode_value)
    for name in ("PROPOSAL", "EMPTY_PROPOSAL"):
        cases[f"proposal/{name}"] = (getattr(samples, name), codec.decode_proposal,
                                     codec.encode_proposal)
    return cases


CASES = _cases()


def test_the_fixture_covers_every_wire_type() -> None:
    assert set(CASES) == set(OLD_BYTES)
    assert {type(v) for v in (*samples.COMMANDS.values(), *samples.COMMANDS_SINCE_0_1.values())
            } == set(typing.get_args(c.Command))
    assert {type(v) for v in (*samples.WORKFLOW_COMMANDS.values(),
                              *samples.WORKFLOW_COMMANDS_SINCE_0_1.values())} == set(
        typing.get_args(c.WorkflowCommand))
    assert {type(v) for v in (*samples.RESULTS.values(), *samples.RESULTS_SINCE_0_1.values())
            } == set(typing.get_args(r.Result))
    assert {type(v) for v in (*samples.EFFECTS.values(), *samples.EFFECTS_SINCE_0_1.values())
            } == set(typing.get_args(e.Effect))
    covered = {type(value) for value, _, _ in CASES.values()}
    covered |= {type(value) for value in (*samples.COMMANDS_SINCE_0_1.values(),
                                          *samples.WORKFLOW_COMMANDS_SINCE_0_1.values(),
                                          *samples.RESULTS_SINCE_0_1.values(),
                                          *samples.EFFECTS_SINCE_0_1.values())}
    covered |= set(samples.NESTED_SINCE_0_1)
    nested = {c.TaskToken, r.WorkflowTaskInfo, r.ActivityTaskInfo,  # inside the results
              c.WorkflowUpdateResponse, WorkflowUpdateRequest,  # in a completion, in a task
              *typing.get_args(ev.EventAttributes),  # inside events (tests/core writes all)
              SearchAttribute}  # inside events and descriptions
    assert covered | nested == set(codec.PROTOCOL_CLASSES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bytes_written_by_0_1_decode_to_the_same_value(name: str) -> None:
    value, decode, _ = CASES[name]
    decoded = decode(bytes.fromhex(OLD_BYTES[name]))
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_current_layout_round_trips_and_agrees_with_the_0_1_decode(name: str) -> None:
    value, decode, encode = CASES[name]
    data = encode(value)
    assert not legacy_arrays.is_legacy(data) and msgspec.msgpack.decode(data).__class__ is dict
    decoded = decode(data)
    assert decoded == value and type(decoded) is type(value)
    from_old = decode(bytes.fromhex(OLD_BYTES[name]))
    assert from_old == decoded
    assert encode(from_old) == data  # a 0.1 value re-encodes exactly like a new one


@pytest.mark.parametrize("command", samples.COMMANDS_SINCE_0_1.values(),
                         ids=samples.COMMANDS_SINCE_0_1)
def test_commands_added_since_0_1_round_trip_in_the_current_layout(command: c.Command) -> None:
    data = codec.encode_command(command)
    assert msgspec.msgpack.decode(data).__class__ is dict
    assert codec.decode_command(data) == command


@pytest.mark.parametrize("result", samples.RESULTS_SINCE_0_1.values(),
                         ids=samples.RESULTS_SINCE_0_1)
def test_results_added_since_0_1_round_trip_in_the_current_layout(result: r.Result) -> None:
    data = codec.encode_result(result)
    assert msgspec.msgpack.decode(data).__class__ is dict
    assert codec.decode_result(data) == result


@pytest.mark.parametrize("effect", samples.EFFECTS_SINCE_0_1.values(),
                         ids=samples.EFFECTS_SINCE_0_1)
def test_effects_added_since_0_1_round_trip(effect: e.Effect) -> None:
    assert codec.decode_effect(codec.encode_effect(effect)) == effect


def test_union_members_carry_their_union_tag_field_and_others_none() -> None:
    token = msgspec.msgpack.decode(codec.encode_value(samples.TOKEN))
    assert "kind" in token and not set(token) - set(c.TaskToken.__struct_fields__)
    for union, tag_field in [(c.Command, "command"), (c.WorkflowCommand, "type"),
                             (r.Result, "result"), (e.Effect, "effect")]:
        for cls in typing.get_args(union):
            config = cls.__struct_config__
            assert (config.tag_field, config.tag) == (tag_field, cls.__name__)
    completed = samples.COMMANDS["RespondWorkflowTaskCompleted"]
    as_json = msgspec.json.decode(msgspec.json.encode(completed, enc_hook=json_enc_hook))
    assert as_json["command"] == "RespondWorkflowTaskCompleted"
    assert {command["type"] for command in as_json["commands"]} >= {"StartTimer"}
    assert "type" not in as_json["token"]


def test_json_schemas_are_objects_so_the_types_can_be_http_bodies() -> None:
    unions = (c.WorkflowCommand, c.Command, r.Result, e.Effect, ev.EventAttributes)
    schemas, components = msgspec.json.schema_components(unions)
    assert all("anyOf" in schema for schema in schemas)
    struct_names = {cls.__name__ for cls in codec.PROTOCOL_CLASSES}
    checked = struct_names & set(components)
    assert len(checked) > 60
    for name in checked:
        assert components[name]["type"] == "object", name


def test_the_converter_follows_the_target_type_not_the_data() -> None:
    # A list of strings that starts with a class name is still a list of strings.
    old = codec.ENCODER.encode(["RetryPolicy", 5, 1.5, None, 0, ["RetryPolicy", "Failure"]])
    policy = codec.decode_value(old, c.RetryPolicy)
    assert policy.non_retryable_error_types == ("RetryPolicy", "Failure")
    # Trailing fields written before they existed take their defaults.
    assert codec.decode_value(codec.ENCODER.encode(["RetryPolicy", 7]), c.RetryPolicy) == (
        c.RetryPolicy(initial_interval_ms=7))
    with pytest.raises(msgspec.ValidationError):  # the wrong class where a struct is expected
        codec.decode_value(codec.ENCODER.encode(["Failure", 7]), c.RetryPolicy)


def test_enums_decode_as_members_and_event_types_as_event_type() -> None:
    start = codec.decode_command(bytes.fromhex(OLD_BYTES["command/StartWorkflow"]))
    assert isinstance(start, c.StartWorkflow)
    assert start.id_reuse_policy is c.IdReusePolicy.TERMINATE_IF_RUNNING
    event = codec.decode_value(bytes.fromhex(OLD_BYTES["value/HistoryEvent"]), HistoryEvent)
    assert event.event_type is EventType.ACTIVITY_TASK_SCHEDULED


def test_0_1_attribute_maps_become_typed_attributes() -> None:
    # 0.1's free-form maps: a failure map and a retry-policy map become structs, keys the type
    # lacks are dropped, absent keys take the defaults, the event type becomes the tag.
    old = codec.ENCODER.encode(["HistoryEvent", 4, "ActivityTaskFailed", 7, {
        "scheduled_event_id": 3, "failure": {"message": "m", "type": "T", "non_retryable": True,
                                             "details": b"{}"},
        "retry_state": "NonRetryableFailure", "unknown": [1], "started_event_id": 4}])
    event = codec.decode_value(old, HistoryEvent)
    assert event == HistoryEvent(event_id=4, time_ms=7, attributes=ev.ActivityTaskFailedEventAttributes(
        scheduled_event_id=3, failure=c.Failure(message="m", type="T", non_retryable=True,
                                                details=b"{}"),
        retry_state=ev.RetryState.NON_RETRYABLE_FAILURE, started_event_id=4))
    policy = {"initial_interval_ms": 5, "backoff_coefficient": 1.5, "maximum_interval_ms": None,
              "maximum_attempts": 2, "non_retryable_error_types": ["A"]}
    scheduled = codec.decode_value(codec.ENCODER.encode(
        ["HistoryEvent", 5, "ActivityTaskScheduled", 8, {"activity_id": "a",
                                                          "retry_policy": policy}]), HistoryEvent)
    assert isinstance(scheduled.attributes, ev.ActivityTaskScheduledEventAttributes)
    assert scheduled.attributes.retry_policy == c.RetryPolicy(
        initial_interval_ms=5, backoff_coefficient=1.5, maximum_attempts=2,
        non_retryable_error_types=("A",))
    with pytest.raises(msgspec.ValidationError):  # an event type that does not exist
        codec.decode_value(codec.ENCODER.encode(["HistoryEvent", 1, "Nope", 1, {}]), HistoryEvent)
    with pytest.raises(msgspec.ValidationError):  # a closed enum keeps its set
        codec.decode_value(codec.ENCODER.encode(
            ["HistoryEvent", 1, "WorkflowExecutionTimedOut", 1, {"timeout_type": "soon"}]),
            HistoryEvent)


def test_event_attributes_are_tagged_by_event_type_and_history_events_are_not() -> None:
    data = msgspec.msgpack.decode(codec.encode_value(samples.CLOSE_EVENT))
    assert data == {"event_id": 9, "time_ms": 10, "attributes": {
        "event_type": "WorkflowExecutionFailed", "failure": {
            "message": "m", "type": "", "non_retryable": False, "details": b""},
        "workflow_task_completed_event_id": 8, "new_execution_run_id": ""}}
    assert samples.CLOSE_EVENT.event_type == "WorkflowExecutionFailed"


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
        codec.decode_command(codec.ENCODER.encode(["NoSuchType", 1]))
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command(codec.ENCODER.encode({"command": "NoSuchType", "now_ms": 1}))
    with pytest.raises(msgspec.ValidationError):  # a result is not a command
        codec.decode_command(bytes.fromhex(OLD_BYTES["result/Ack"]))
    with pytest.raises(msgspec.ValidationError):  # a field of the wrong type
        codec.decode_command(codec.ENCODER.encode(["FireTimers", "soon"]))
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command(codec.ENCODER.encode({"command": "FireTimers", "now_ms": "soon"}))


def test_protocol_values_are_frozen_hashable_structs() -> None:
    for cls in codec.PROTOCOL_CLASSES:
        config = cls.__struct_config__
        assert config.frozen and not config.array_like, cls
        assert config.tag in (None, cls.__name__, cls.__name__.removesuffix("EventAttributes"))
    with pytest.raises(AttributeError):
        samples.TOKEN.attempt = 9  # type: ignore[misc]
    assert len({samples.TOKEN, msgspec.structs.replace(samples.TOKEN, attempt=3)}) == 1
    moved = msgspec.structs.replace(samples.TOKEN, attempt=4)
    assert moved != samples.TOKEN and moved.attempt == 4


def test_a_0_1_buffered_activity_close_loses_its_placeholder() -> None:
    # 0.1 wrote started_event_id=-1 into an activity close buffered behind its
    # ActivityTaskStarted; the current core derives that id when the pair is written, from 0.
    import msgpack

    from raftflow.protocol import legacy_arrays
    from raftflow.protocol.events import ActivityTaskCompletedEventAttributes
    from raftflow.shards.core.state import BufferedEvent

    old = msgpack.packb(["BufferedEvent", "ActivityTaskCompleted", 1_000, {
        "scheduled_event_id": 5, "started_event_id": -1, "result": b'"ok"', "identity": "w"}],
        use_bin_type=True)
    event = legacy_arrays.from_legacy(old, BufferedEvent)
    assert isinstance(event, BufferedEvent)
    assert event.attributes == ActivityTaskCompletedEventAttributes(
        scheduled_event_id=5, started_event_id=0, result=b'"ok"', identity="w")


def test_a_log_command_with_a_field_this_code_does_not_know_is_refused() -> None:
    # Fail-stop instead of silent divergence: a newer writer's field must not be dropped.
    import msgspec

    from raftflow.protocol import codec
    from raftflow.protocol.commands import FireTimers

    known = msgspec.msgpack.decode(codec.encode_command(FireTimers(now_ms=5)))
    assert isinstance(known, dict)
    with pytest.raises(msgspec.ValidationError):
        codec.decode_command(msgspec.msgpack.encode({**known, "from_the_future": 1}))
    assert codec.decode_command(msgspec.msgpack.encode(known)) == FireTimers(now_ms=5)
