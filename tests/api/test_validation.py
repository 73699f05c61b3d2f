"""Goal: request bodies decode into their protocol structs and every refusal names the field
and the rule; typed errors render as one JSON shape with the right status and Retry-After.

Method: table-driven cases against the body structs; hypothesis round-trips arbitrary JSON
payloads through `decode_body` (the stored bytes decode back to the input);
error responses are built directly and inspected (no server needed).
"""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftflow.api.errors import (
    ConflictError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotLeaderError,
    OverloadedError,
    PayloadTooLargeError,
    RaftflowError,
    error_for_code,
    error_response,
)
from raftflow.api.validation import (
    BODY_BYTES_MAX,
    ID_LENGTH_MAX,
    PAYLOAD_BYTES_MAX,
    check_path_id,
    decode_body,
    parse_query_int,
)
from raftflow.protocol.commands import IdReusePolicy, StartTimer
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.http_bodies import (
    CompleteWorkflowTaskRequest,
    PollRequest,
    SignalWorkflowRequest,
    StartWorkflowRequest,
    TerminateWorkflowRequest,
)
from raftflow.protocol.payload import EMPTY, Payload

START = {"workflow_id": "order-1", "workflow_type": "Checkout", "task_queue": "orders",
         "input": {"items": [1, 2]}, "request_id": "r-1"}


def _start(body: dict[str, object]) -> StartWorkflowRequest:
    return decode_body(json.dumps(body).encode(), StartWorkflowRequest)


def test_a_valid_start_body_yields_typed_values() -> None:
    body = _start(START | {"id_reuse_policy": "reject_duplicate"})
    assert body.workflow_id == "order-1"
    assert body.input == b'{"items":[1,2]}' and isinstance(body.input, Payload)
    assert body.id_reuse_policy is IdReusePolicy.REJECT_DUPLICATE
    assert body.run_timeout_ms is None


def test_absent_or_null_payload_is_empty_and_null_fields_are_absent() -> None:
    body = decode_body(b'{"signal_name": "approve", "run_id": null}', SignalWorkflowRequest)
    assert body.input == EMPTY and isinstance(body.input, Payload)
    null = decode_body(b'{"signal_name": "a", "input": null}', SignalWorkflowRequest).input
    assert null == EMPTY and isinstance(null, Payload)
    assert decode_body(b'{"signal_name": "a", "input": [null]}', SignalWorkflowRequest).input == (
        b"[null]")
    assert body.run_id is None
    assert decode_body(b"", TerminateWorkflowRequest).reason is None


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"workflow_id": None}, "workflow_id", "must be string, got null"),
        ({"workflow_id": ""}, "workflow_id", "must be string of length >= 1"),
        ({"workflow_id": "x" * (ID_LENGTH_MAX + 1)}, "workflow_id",
         "must be string of length <= 1000"),
        ({"workflow_type": 7}, "workflow_type", "must be string, got integer"),
        ({"task_queue": ["q"]}, "task_queue", "got array"),
        ({"run_timeout_ms": 0}, "run_timeout_ms", ">= 1"),
        ({"run_timeout_ms": True}, "run_timeout_ms", "got boolean"),
        ({"run_timeout_ms": "5"}, "run_timeout_ms", "got string"),
        ({"workflowId": "x"}, "workflowId", "unknown field"),
        ({"input": 1e400}, "input", "must be valid JSON"),
        ({"id_reuse_policy": "sometimes"}, "id_reuse_policy", "Invalid enum value 'sometimes'"),
        ({"retry_policy": {"initial_interval_ms": 0}}, "retry_policy.initial_interval_ms",
         ">= 1"),
        ({"retry_policy": {"backoff_coefficient": 0.5}}, "retry_policy.backoff_coefficient",
         ">= 1.0"),
        ({"retry_policy": {"maximum_attempts": -1}}, "retry_policy.maximum_attempts", ">= 0"),
        ({"retry_policy": {"tries": 3}}, "retry_policy.tries", "unknown field"),
    ],
)
def test_refusals_name_field_and_rule(change: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rule) as caught:
        # json.dumps writes an overflowing float as Infinity; a client may send 1e400.
        raw = json.dumps(START | change).encode().replace(b"Infinity", b"1e400")
        decode_body(raw, StartWorkflowRequest)
    assert caught.value.field == field
    assert f"field {field!r}" in caught.value.message
    assert caught.value.http_status == 400


def test_a_missing_field_is_named_with_its_path() -> None:
    with pytest.raises(InvalidArgumentError, match="is required") as caught:
        _start({"workflow_type": "t", "task_queue": "q"})
    assert caught.value.field == "workflow_id"
    raw = json.dumps({"task_token": "abc", "commands": [
        {"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 5},
        {"type": "StartTimer", "timer_id": "u"}]}).encode()
    with pytest.raises(InvalidArgumentError, match="is required") as caught:
        decode_body(raw, CompleteWorkflowTaskRequest)
    assert caught.value.field == "commands[1].start_to_fire_timeout_ms"


def test_worker_commands_decode_into_protocol_commands() -> None:
    raw = (b'{"task_token": "abc", "commands": [{"type": "StartTimer", "timer_id": "t",'
           b' "start_to_fire_timeout_ms": 5}]}')
    body = decode_body(raw, CompleteWorkflowTaskRequest)
    assert body.commands == [StartTimer(timer_id="t", start_to_fire_timeout_ms=5)]


@pytest.mark.parametrize(
    ("command", "field", "rule"),
    [
        ({"type": "StartTimer", "timer_id": "", "start_to_fire_timeout_ms": 5},
         "commands[1].timer_id", "must be string of length >= 1"),
        ({"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 0},
         "commands[1].start_to_fire_timeout_ms", "must be >= 1"),
        ({"type": "ScheduleActivityTask", "activity_id": "a", "activity_type": "A",
          "start_to_close_timeout_ms": 5, "retry_policy": {"backoff_coefficient": 0.5}},
         "commands[1].retry_policy.backoff_coefficient", "must be >= 1.0"),
        ({"type": "ScheduleActivityTask", "activity_id": "a", "activity_type": "A",
          "retry_policy": {"non_retryable_error_types": ["ok", "x" * (ID_LENGTH_MAX + 1)]}},
         "commands[1].retry_policy.non_retryable_error_types[1]", "length <= 1000"),
        ({"type": "FailWorkflowExecution", "failure": {"message": "m" * 40_000}},
         "commands[1].failure.message", "length <= 32768"),
        ({"type": "RequestCancelActivityTask", "scheduled_event_id": 0},
         "commands[1].scheduled_event_id", "must be >= 1"),
        ({"type": "FailWorkflowExecution", "failure": {"message": "m", "typo": 1}},
         "commands[1].failure.typo", "unknown field"),
    ],
)
def test_command_bounds_are_checked_at_the_edge(command: dict[str, object], field: str,
                                                rule: str) -> None:
    """The log's own types carry their bounds as edge rules: refused at decode, field named."""
    raw = json.dumps({"task_token": "abc", "commands": [
        {"type": "CancelTimer", "timer_id": "fine"}, command]}).encode()
    with pytest.raises(InvalidArgumentError, match=rule) as caught:
        decode_body(raw, CompleteWorkflowTaskRequest)
    assert caught.value.field == field


def test_payload_above_2_mib_is_too_large() -> None:
    just_fits = "x" * (PAYLOAD_BYTES_MAX - 2)  # two bytes of quotes
    assert len(_start(START | {"input": just_fits}).input) == PAYLOAD_BYTES_MAX
    with pytest.raises(PayloadTooLargeError, match="limit 2097152") as caught:
        _start(START | {"input": just_fits + "y"})
    assert (caught.value.field, caught.value.http_status) == ("input", 413)
    nested = json.dumps({"task_token": "abc", "commands": [{"type": "FailWorkflowExecution",
                         "failure": {"details": just_fits + "y"}}]}).encode()
    with pytest.raises(PayloadTooLargeError) as caught:
        decode_body(nested, CompleteWorkflowTaskRequest, body_bytes_max=2 * PAYLOAD_BYTES_MAX)
    assert caught.value.field == "commands[0].failure.details"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(payload=json_values)
def test_payload_bytes_decode_back_to_the_input(payload: object) -> None:
    raw = json.dumps({"signal_name": "s", "input": payload}, indent=1).encode()
    stored = decode_body(raw, SignalWorkflowRequest).input
    if payload is None:  # JSON null is the empty payload (protocol/payload.py)
        assert stored == EMPTY
        return
    assert json.loads(stored) == payload
    # Stored compact: the same bytes whatever whitespace the client sent.
    assert stored == msgspec.json.encode(payload)


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"{", InvalidArgumentError, "not valid JSON"),
        (b"[1]", InvalidArgumentError, "must be object, got array"),
        (b"\xff", InvalidArgumentError, "not valid JSON"),
        (b" " * (BODY_BYTES_MAX + 1), PayloadTooLargeError, "limit"),
    ],
)
def test_bad_bodies_are_refused(raw: bytes, error: type[RaftflowError], message: str) -> None:
    with pytest.raises(error, match=message):
        decode_body(raw, TerminateWorkflowRequest)


def test_body_and_query_helpers() -> None:
    assert decode_body(b"", TerminateWorkflowRequest) == TerminateWorkflowRequest()
    assert decode_body(b'{"reason": "r"}', TerminateWorkflowRequest).reason == "r"
    assert parse_query_int("limit", None, default=100, minimum=1, maximum=1000) == 100
    assert parse_query_int("limit", "7", default=100, minimum=1, maximum=1000) == 7
    for raw in ("", "x", "0", "1001", "1.5", "\u00b2", "9" * 5000):
        with pytest.raises(InvalidArgumentError, match="query parameter 'limit'"):
            parse_query_int("limit", raw, default=100, minimum=1, maximum=1000)
    assert check_path_id("workflow_id", "a") == "a"
    with pytest.raises(InvalidArgumentError, match="path parameter 'workflow_id'"):
        check_path_id("workflow_id", "")


@pytest.mark.parametrize(
    ("err", "status", "retry_after"),
    [
        (InvalidArgumentError("bad", field="x"), 400, None),
        (ConflictError(ErrorCode.WORKFLOW_ALREADY_STARTED, "dup"), 409, None),
        (OverloadedError("full", retry_after_s=2.5), 503, "3"),
        (NotLeaderError(3, "moved"), 503, "1"),
        (DeadlineExceededError("slow"), 504, None),
    ],
)
def test_error_response_shape(err: RaftflowError, status: int, retry_after: str | None) -> None:
    response = error_response(err)
    assert response.status == status
    assert response.headers.get("Retry-After") == retry_after
    assert response.content_type == "application/json"
    assert response.text is not None
    body = json.loads(response.text)
    assert body == {"error": {"code": str(err.code), "message": err.message, "field": err.field}}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_maps_to_a_typed_error_with_its_status(code: ErrorCode) -> None:
    err = error_for_code(code, "m", "f" if code is ErrorCode.INVALID_ARGUMENT else None)
    assert err.code == code
    assert error_response(err).status == err.http_status


def test_retry_after_comes_from_any_error_that_declares_it() -> None:
    class ShellError(RaftflowError):  # like the actors' MailboxFullError
        retry_after_s = 0.2

    response = error_response(ShellError(ErrorCode.OVERLOADED, "full"))
    assert (response.status, response.headers["Retry-After"]) == (503, "1")
    assert error_response(RaftflowError(ErrorCode.NOT_LEADER, "x")).headers["Retry-After"] == "1"


def test_an_integer_may_be_spelled_as_an_integral_decimal() -> None:
    """JSON has one number type and JSON Schema calls 3517.0 an integer (`make fuzz` sends
    it); a fraction or a string is still refused."""
    assert decode_body(b'{"wait_ms": 3517.0}', PollRequest).wait_ms == 3517
    raw = (b'{"task_token": "abc", "eager_activities_max": 2.0, "commands": [{"type": '
           b'"StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 5e3}]}')
    body = decode_body(raw, CompleteWorkflowTaskRequest)
    assert body.eager_activities_max == 2
    assert body.commands == [StartTimer(timer_id="t", start_to_fire_timeout_ms=5000)]
    for wrong in (b'{"wait_ms": 3517.5}', b'{"wait_ms": "3517"}'):
        with pytest.raises(InvalidArgumentError, match="must be integer or null") as caught:
            decode_body(wrong, PollRequest)
        assert caught.value.field == "wait_ms"
