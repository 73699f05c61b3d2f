"""Goal: bounds on the log's own types (workflow commands, failures, retry policies) refuse a
request at the HTTP edge but never stop a replica from decoding its log: an entry an older
release accepted (0.1 took a failure message of any length, and logged commands the core then
refused) must still decode, or every replica would stop at it.

Method: log entries holding values beyond the edge rules go through the msgpack codec (they
decode, equal); the same values as an HTTP body are refused by the gateway's decoder; the
OpenAPI schema of each bounded field states the bound `first_violation` checks.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from raftflow.api.errors import InvalidArgumentError
from raftflow.api.validation import decode_body
from raftflow.protocol import codec
from raftflow.protocol import commands as c
from raftflow.protocol.edge_rules import first_violation
from raftflow.protocol.http_bodies import CompleteWorkflowTaskRequest, FailActivityTaskRequest
from raftflow.protocol.limits import DURATION_MS_MAX, MESSAGE_LENGTH_MAX
from raftflow.protocol.payload import Payload

TOKEN = c.TaskToken(namespace="default", workflow_id="w", run_id="r", scheduled_event_id=5,
                    attempt=1, kind=c.TaskKind.ACTIVITY)
LONG_FAILURE = c.Failure(message="m" * (MESSAGE_LENGTH_MAX + 1), type="Boom",
                         details=Payload(b'{"k":1}'))
BEYOND_RULES: list[c.WorkflowCommand] = [
    c.StartTimer(timer_id="", start_to_fire_timeout_ms=0),
    c.ScheduleActivityTask(activity_id="a", activity_type="", retry_policy=c.RetryPolicy(
        initial_interval_ms=0, backoff_coefficient=0.5, maximum_attempts=-1)),
    c.FailWorkflowExecution(failure=LONG_FAILURE),
    c.RequestCancelActivityTask(scheduled_event_id=0),
]


def test_log_entries_beyond_the_edge_rules_still_decode() -> None:
    failed = c.RespondActivityTaskFailed(now_ms=1, token=TOKEN, failure=LONG_FAILURE)
    completed = c.RespondWorkflowTaskCompleted(now_ms=1, token=TOKEN,
                                               commands=tuple(BEYOND_RULES))
    for command in (failed, completed):
        assert first_violation(command) is not None  # the edge would refuse it
        decoded = codec.decode_command(codec.encode_command(command))
        assert decoded == command
    decoded_failure = codec.decode_command(codec.encode_command(failed))
    assert isinstance(decoded_failure, c.RespondActivityTaskFailed)
    assert type(decoded_failure.failure.details) is Payload


@pytest.mark.parametrize("command", BEYOND_RULES, ids=lambda command: type(command).__name__)
def test_the_same_values_are_refused_at_the_http_edge(command: c.WorkflowCommand) -> None:
    body = msgspec.to_builtins(command, enc_hook=lambda p: json.loads(p) if p else None)
    raw = json.dumps({"task_token": "abc", "commands": [body]}).encode()
    with pytest.raises(InvalidArgumentError) as caught:
        decode_body(raw, CompleteWorkflowTaskRequest)
    assert caught.value.field is not None and caught.value.field.startswith("commands[0].")


def test_a_long_activity_failure_message_is_refused_at_the_edge_only() -> None:
    raw = json.dumps({"task_token": "abc", "failure": {"message": LONG_FAILURE.message}})
    with pytest.raises(InvalidArgumentError, match="length <= 32768") as caught:
        decode_body(raw.encode(), FailActivityTaskRequest)
    assert caught.value.field == "failure.message"


def test_the_document_states_each_rule_the_edge_checks() -> None:
    _, schemas = msgspec.json.schema_components([c.StartTimer, c.RetryPolicy, c.Failure])
    timer = schemas["StartTimer"]["properties"]
    assert (timer["timer_id"]["minLength"], timer["timer_id"]["maxLength"]) == (1, 1000)
    assert (timer["start_to_fire_timeout_ms"]["minimum"],
            timer["start_to_fire_timeout_ms"]["maximum"]) == (1, DURATION_MS_MAX)
    policy = schemas["RetryPolicy"]["properties"]
    assert policy["backoff_coefficient"]["minimum"] == 1.0
    assert policy["non_retryable_error_types"]["items"]["maxLength"] == 1000
    assert schemas["Failure"]["properties"]["message"]["maxLength"] == MESSAGE_LENGTH_MAX
