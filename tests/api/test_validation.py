"""Goal: request bodies are checked declaratively and every refusal names the field and the
rule; typed errors render as one JSON shape with the right status and Retry-After.

Method: table-driven cases against the endpoint schemas; hypothesis round-trips arbitrary JSON
payloads through `validate` (the stored bytes decode back to the input); error responses are
built directly and inspected (no server needed).
"""

from __future__ import annotations

import json

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
    SIGNAL_WORKFLOW,
    START_WORKFLOW,
    TERMINATE_WORKFLOW,
    check_path_id,
    parse_json_body,
    parse_query_int,
    validate,
)
from raftflow.protocol.errors import ErrorCode

START = {"workflow_id": "order-1", "workflow_type": "Checkout", "task_queue": "orders",
         "input": {"items": [1, 2]}, "request_id": "r-1"}


def test_a_valid_start_body_yields_typed_values() -> None:
    body = validate(START_WORKFLOW, START)
    assert body.string("workflow_id") == "order-1"
    assert body.json_bytes("input") == b'{"items":[1,2]}'
    assert body.optional_string("id_reuse_policy") is None
    assert body.optional_integer("run_timeout_ms") is None


def test_absent_payload_is_json_null() -> None:
    body = validate(SIGNAL_WORKFLOW, {"signal_name": "approve"})
    assert body.json_bytes("input") == b"null"
    assert validate(TERMINATE_WORKFLOW, {}).optional_string("reason") is None


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"workflow_id": None}, "workflow_id", "is required"),
        ({"workflow_id": ""}, "workflow_id", "length must be 1 to"),
        ({"workflow_id": "x" * (ID_LENGTH_MAX + 1)}, "workflow_id", "got 1001"),
        ({"workflow_type": 7}, "workflow_type", "must be a string, got number"),
        ({"task_queue": ["q"]}, "task_queue", "got array"),
        ({"run_timeout_ms": 0}, "run_timeout_ms", "must be at least 1"),
        ({"run_timeout_ms": True}, "run_timeout_ms", "must be an integer, got boolean"),
        ({"run_timeout_ms": "5"}, "run_timeout_ms", "must be an integer, got string"),
        ({"workflowId": "x"}, "workflowId", "unknown field for start workflow"),
        ({"input": float("nan")}, "input", "must be valid JSON"),
    ],
)
def test_refusals_name_field_and_rule(change: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rule) as caught:
        validate(START_WORKFLOW, START | change)
    assert caught.value.field == field
    assert f"field {field!r}" in caught.value.message
    assert caught.value.http_status == 400


def test_payload_above_2_mib_is_too_large() -> None:
    just_fits = "x" * (PAYLOAD_BYTES_MAX - 2)  # two bytes of quotes
    assert len(validate(START_WORKFLOW, START | {"input": just_fits}).json_bytes("input")) == (
        PAYLOAD_BYTES_MAX)
    with pytest.raises(PayloadTooLargeError, match="limit 2097152") as caught:
        validate(START_WORKFLOW, START | {"input": just_fits + "y"})
    assert (caught.value.field, caught.value.http_status) == ("input", 413)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(payload=json_values)
def test_payload_bytes_decode_back_to_the_input(payload: object) -> None:
    body = validate(SIGNAL_WORKFLOW, {"signal_name": "s", "input": payload})
    if payload is None:
        assert body.json_bytes("input") == b"null"
    else:
        assert json.loads(body.json_bytes("input")) == payload


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"{", InvalidArgumentError, "not valid JSON"),
        (b"[1]", InvalidArgumentError, "must be a JSON object, got array"),
        (b"\xff", InvalidArgumentError, "not valid JSON"),
        (b" " * (BODY_BYTES_MAX + 1), PayloadTooLargeError, "limit"),
    ],
)
def test_bad_bodies_are_refused(raw: bytes, error: type[RaftflowError], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_json_body(raw)


def test_body_and_query_helpers() -> None:
    assert parse_json_body(b"") == {}
    assert parse_json_body(b'{"a": 1}') == {"a": 1}
    assert parse_query_int("limit", None, default=100, minimum=1, maximum=1000) == 100
    assert parse_query_int("limit", "7", default=100, minimum=1, maximum=1000) == 7
    for raw in ("x", "0", "1001", "1.5"):
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
