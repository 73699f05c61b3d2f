"""Goal: the SDK works on protocol types and converts to and from JSON only at its HTTP edge,
without changing what travels: commands render to the JSON the server parses back into the
very same structs; a history that is not in the protocol's vocabulary is refused where it is
read (a clear `MalformedHistoryError`, or `MalformedTaskError` when it came in a task: the
task fails, no workflow code runs) instead of being half-understood deep in replay; the
status and id-reuse enums are the protocol's.

Method: every command the SDK builds goes through `command_json` (and, as a completion's body,
through the transport's `encode_body`) and the gateway's own body decoder
(`api/validation.decode_body`, into the same protocol structs); malformed histories go through
the replayer and through a worker's workflow-task handler driven with a fake exchange that
records what it posts; the client's start body is captured by a fake transport.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from raftflow.api import validation
from raftflow.protocol import results
from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    IdReusePolicy,
    WorkflowCommand,
)
from raftflow.protocol.http_answers import WorkflowDescription
from raftflow.protocol.http_bodies import CompleteWorkflowTaskRequest
from raftflow.sdk import ApplicationError, RetryPolicy, errors
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk._http import Answer, Transport, encode_body
from raftflow.sdk._replay import commands
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import TaskExchange
from raftflow.sdk._wire_json import command_json, decode_history
from raftflow.sdk._workflow_task_runner import WorkflowTaskRunner
from raftflow.sdk.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHistory
from raftflow.sdk.replayer import replay_history
from tests.protocol.recorded_histories import with_added_fields
from tests.sdk.history_builder import HistoryBuilder
from tests.sdk.recording_exchange import RecordingExchange, no_history
from tests.sdk.sample_workflows import Order

HISTORIES = Path(__file__).resolve().parents[1] / "data" / "histories"

SDK_COMMANDS: list[WorkflowCommand] = [
    commands.schedule_activity(
        activity_id="1", activity_type="charge", args=["o", {"n": (1, 2)}], task_queue="pay",
        start_to_close_timeout_ms=5000, schedule_to_close_timeout_ms=60_000,
        schedule_to_start_timeout_ms=1000, heartbeat_timeout_ms=2000,
        retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=("Bad",))
        .to_protocol()),
    commands.schedule_activity(
        activity_id="2", activity_type="ship", args=[], task_queue=None,
        start_to_close_timeout_ms=5000, schedule_to_close_timeout_ms=None,
        schedule_to_start_timeout_ms=None, heartbeat_timeout_ms=None, retry_policy=None),
    commands.start_timer("1", 1500),
    commands.cancel_timer("1"),
    commands.request_cancel_activity(7),
    commands.record_marker("patch", {"id": "ship-first"}),
    commands.complete(None),
    commands.complete({"e": [1, 2.5, None, True]}),
    commands.fail(ApplicationError("declined", {"code": 7}, type="Card", non_retryable=True)),
    commands.fail(KeyError("other")),
    commands.cancel(),
    commands.continue_as_new(errors.ContinueAsNewError(
        [5], workflow_type=None, task_queue=None, run_timeout_ms=None, task_timeout_ms=None)),
    commands.continue_as_new(errors.ContinueAsNewError(
        [], workflow_type="Other", task_queue="q2", run_timeout_ms=9000, task_timeout_ms=800)),
]


@pytest.mark.parametrize("command", SDK_COMMANDS, ids=lambda c: type(c).__name__)
def test_the_server_parses_a_rendered_command_back_into_the_same_struct(
        command: WorkflowCommand) -> None:
    """Decoded as the gateway decodes a completion (api/task_handlers.complete_workflow_task),
    so the shard logs exactly what the workflow code produced."""
    assert _through_the_gateway(command) == command


@pytest.mark.parametrize("command", SDK_COMMANDS, ids=lambda c: type(c).__name__)
def test_a_completion_the_worker_sends_decodes_into_the_same_commands(
        command: WorkflowCommand) -> None:
    """The worker posts the request struct itself, encoded by the transport (`encode_body`:
    msgspec, payloads spliced in as their JSON text)."""
    sent = CompleteWorkflowTaskRequest(task_token="t", commands=[command, command],
                                       identity="w", sticky_queue="s")
    assert validation.decode_body(encode_body(sent), CompleteWorkflowTaskRequest) == sent


def _through_the_gateway(command: WorkflowCommand) -> WorkflowCommand:
    # Encoded as the SDK's transport encodes a body (_http.Transport: json.dumps).
    wire = json.dumps({"task_token": "t", "commands": [command_json(command)]}).encode()
    [parsed] = validation.decode_body(wire, CompleteWorkflowTaskRequest).commands
    return parsed


def test_a_non_ascii_payload_reaches_the_server_as_the_same_json_value() -> None:
    # The transport sends JSON with ASCII escapes; the gateway stores a payload as msgspec's
    # compact text of the value, so the bytes may differ from the SDK's while the value is
    # the same.
    command = commands.complete({"é": ["ü"]})
    parsed = _through_the_gateway(command)
    assert isinstance(parsed, CompleteWorkflowExecution)
    assert json.loads(parsed.result) == json.loads(command.result) == {"é": ["ü"]}


def test_rendering_is_the_protocol_struct_with_payloads_as_json_values() -> None:
    """Every field is written (the server reads each as given), the tag is `type`, an empty
    payload is null and a payload is its JSON value, not base64."""
    assert command_json(commands.cancel()) == {"type": "CancelWorkflowExecution",
                                               "details": None}
    assert command_json(commands.complete(None)) == {"type": "CompleteWorkflowExecution",
                                                     "result": None}
    assert command_json(commands.complete([1, "x"]))["result"] == [1, "x"]
    assert command_json(commands.fail(KeyError("k")))["failure"] == {
        "message": "'k'", "type": "KeyError", "non_retryable": False, "details": None}


def test_a_payload_json_cannot_carry_is_refused_when_the_command_is_built() -> None:
    with pytest.raises(TypeError, match="workflow result is not JSON-serializable"):
        commands.complete({1, 2})


def _with_bad_event(event_type: str, **attributes: Any) -> list[dict[str, Any]]:
    history = HistoryBuilder(["o-1"])
    history.events[0]["attributes"]["workflow_type"] = "Order"
    history.add(event_type, **attributes)
    history.start_task()
    return history.events


@pytest.mark.parametrize(("event_type", "attributes"), [
    ("NexusOperationScheduled", {"endpoint": "e"}),  # not in the vocabulary
    ("WorkflowExecutionSignaled", {"signal_name": 5, "input": []}),  # mistyped field
    ("ActivityTaskFailed", {"scheduled_event_id": 1, "retry_state": "Bogus",
                            "failure": {"message": "m"}}),  # unknown enum value
])
def test_a_malformed_history_is_refused_where_it_is_read(
        event_type: str, attributes: dict[str, Any]) -> None:
    events = _with_bad_event(event_type, **attributes)
    with pytest.raises(errors.MalformedHistoryError, match=f"event 2 \\('{event_type}'\\)"):
        replay_history({"events": events}, [Order])


def test_a_history_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(errors.MalformedHistoryError, match="must be a list"):
        decode_history({"events": []}, "page")


def _handle(task: dict[str, Any]) -> list[tuple[str, dict[str, object]]]:
    async def main() -> list[tuple[str, dict[str, object]]]:
        exchange = RecordingExchange()
        cache = RunnerCache({"Order": Order}, namespace="default", task_queue="q", size_max=10,
                            fetch_history=no_history)
        runner = WorkflowTaskRunner(
            cast(TaskExchange, exchange), cache, task_queue="q", activity_types=(),
            activity_slots=asyncio.Semaphore(1), start_activity=lambda address, t: None)
        await runner.handle("http://node", task)
        return exchange.posts

    return asyncio.run(main())


def _task(history: list[dict[str, Any]]) -> dict[str, Any]:
    """A workflow task in the shape the gateway renders (`http_answers.WorkflowTask`)."""
    return {"task_token": "token", "namespace": "default", "workflow_id": "wf-1",
            "run_id": "run-1", "workflow_type": "Order", "task_queue": "q", "attempt": 1,
            "scheduled_event_id": len(history) - 1, "started_event_id": len(history),
            "previous_started_event_id": 0, "history": history}


def test_a_workflow_task_with_a_malformed_history_fails_before_any_code_runs() -> None:
    events = _with_bad_event("WorkflowExecutionSignaled", signal_name=5, input=[])
    [(path, body)] = _handle(_task(events))
    assert path == "/api/v1/tasks/workflow/fail"
    failure = cast(dict[str, object], body["failure"])
    # The task is refused where it is decoded, its history with it (`_wire_tasks`).
    assert failure["type"] == "MalformedTaskError"
    assert "event 2 ('WorkflowExecutionSignaled')" in str(failure["message"])


def test_a_well_formed_task_completes_with_its_rendered_commands() -> None:
    history = HistoryBuilder(["o-1"])
    history.start_task()
    [(path, body)] = _handle(_task(history.events))
    assert path == "/api/v1/tasks/workflow/complete"
    [command] = cast(list[dict[str, object]], body["commands"])
    assert command["type"] == "ScheduleActivityTask" and command["input"] == ["o-1"]


def test_a_saved_history_reads_back_typed_and_renders_as_saved() -> None:
    document = json.loads((HISTORIES / "order_retry.json").read_text())
    history = WorkflowHistory.from_json(document)
    assert history.workflow_id == document["workflow_id"]
    assert history.to_json()["events"] == [with_added_fields(e) for e in document["events"]]
    assert replay_history(history, [Order]).closed


def test_the_status_enum_is_the_protocols_and_renders_as_before() -> None:
    assert WorkflowExecutionStatus is results.WorkflowExecutionStatus
    for status in results.WorkflowStatus:  # the gateway rendered `status.value.upper()`
        assert WorkflowExecutionStatus.of(status).value == status.value.upper()
    described = WorkflowExecution.from_description(msgspec.convert(
        {"workflow_id": "w", "run_id": "r", "workflow_type": "W", "task_queue": "q",
         "status": "COMPLETED", "history_length": 3, "start_time": "2026-01-02T03:04:05.678Z",
         "close_time": None, "pending_activity_count": 0, "pending_timer_count": 0,
         "workflow_task_pending": False, "continued_execution_run_id": None},
        WorkflowDescription))
    assert described.status is WorkflowExecutionStatus.COMPLETED


class _CapturingTransport:
    addresses = ("http://node",)

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def call(self, method: str, path: str, *, body: Any = None, **_: Any) -> Answer:
        self.bodies.append(body)
        return Answer(status=200, body={"workflow_id": "w", "run_id": "r"},
                      address="http://node")


def test_start_workflow_takes_the_protocols_id_reuse_policy_or_its_value() -> None:
    transport = _CapturingTransport()
    client = Client(cast(Transport, transport), "default")
    assert isinstance(client.connection, ClusterConnection)

    async def main() -> None:
        await client.start_workflow("W", id="a", task_queue="q",
                                    id_reuse_policy=IdReusePolicy.REJECT_DUPLICATE)
        await client.start_workflow("W", id="b", task_queue="q",
                                    id_reuse_policy="terminate_if_running")
        with pytest.raises(ValueError):
            await client.start_workflow("W", id="c", task_queue="q", id_reuse_policy="never")

    asyncio.run(main())
    assert [b.id_reuse_policy for b in transport.bodies] == [
        IdReusePolicy.REJECT_DUPLICATE, IdReusePolicy.TERMINATE_IF_RUNNING]


def test_a_failure_is_described_once_and_details_json_cannot_carry_are_handled_per_caller() -> None:
    """`errors.failure_parts` is the one description of an exception as a failure; workflow
    code's failure refuses details JSON cannot carry (the task fails, the code is fixed and
    replayed), a worker's activity failure leaves them out and says so (it must still answer)."""
    assert errors.failure_parts(KeyError("k")) == errors.FailureParts("'k'", "KeyError", False,
                                                                      None)
    assert errors.failure_parts(ApplicationError("no", {"c": 1}, type="Card",
                                                 non_retryable=True)) == errors.FailureParts(
        "no", "Card", True, [{"c": 1}])
    odd = ApplicationError("no", {1, 2})
    with pytest.raises(TypeError, match="failure details is not JSON-serializable"):
        commands.fail(odd)
    lenient = errors.failure_of(odd)
    assert lenient.details == b"" and "details left out" in lenient.message
    assert errors.failure_of(ApplicationError("no", {"c": 1})).details == b'[{"c":1}]'
