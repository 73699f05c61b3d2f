"""Goal: workflow tasks are handed out, completed, failed and timed out exactly as specified;
stale or invalid answers change nothing; signals are buffered while a task runs.

Method: table-driven cases over a driver shard; each refusal is applied with `run_unchanged`,
which compares state digests before and after; accepted paths are checked event by event.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    CancelTimer,
    CompleteWorkflowExecution,
    RecordMarker,
    RecordWorkflowTaskStarted,
    RequestCancelActivityTask,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskFailed,
    SignalWorkflow,
    StartTimer,
    TaskKind,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Rejected, WorkflowTaskStartedResult
from raftflow.shards.core import limits
from tests.core.core_driver import NAMESPACE, Shard, activity


def _signal(shard: Shard, request_id: str = "sig-1", workflow_id: str = "wf") -> SignalWorkflow:
    return SignalWorkflow(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id=workflow_id,
                          signal_name="go", input=b"1", request_id=request_id)


def test_task_carries_full_history_and_previous_started_id() -> None:
    shard = Shard()
    run_id = shard.start()
    first = shard.poll_workflow_task(run_id)
    assert [e.event_type for e in first.history] == [
        "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted"]
    assert first.previous_started_event_id == 0 and first.attempt == 1
    assert first.workflow_type == "Greeter" and first.token.kind is TaskKind.WORKFLOW
    shard.complete_task(first.token, StartTimer(timer_id="t", start_to_fire_timeout_ms=10))
    shard.run(_signal(shard))
    second = shard.poll_workflow_task(run_id)
    assert second.previous_started_event_id == first.started_event_id == 3
    assert [e.event_id for e in second.history] == list(range(1, second.started_event_id + 1))


def test_record_started_is_idempotent_per_request_id() -> None:
    shard = Shard()
    run_id = shard.start()
    task = shard.poll_workflow_task(run_id, request_id="poll-1")
    again = shard.run(RecordWorkflowTaskStarted(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf", run_id=run_id,
        scheduled_event_id=2, identity="w", request_id="poll-1"))
    assert again.result == WorkflowTaskStartedResult(task=task) and not again.events
    other = RecordWorkflowTaskStarted(now_ms=shard.now_ms, namespace=NAMESPACE,
                                      workflow_id="wf", run_id=run_id, scheduled_event_id=2,
                                      identity="w", request_id="poll-2")
    assert shard.run_unchanged(other).code is ErrorCode.STALE_TASK
    assert shard.run_unchanged(replace(other, scheduled_event_id=9)).code is ErrorCode.STALE_TASK
    assert shard.run_unchanged(replace(other, run_id="nope")).code is ErrorCode.NOT_FOUND


def _stale_old_attempt(shard: Shard, token: TaskToken) -> TaskToken:
    shard.run(RespondWorkflowTaskFailed(now_ms=shard.now_ms, token=token))
    shard.poll_workflow_task(token.run_id)
    return token  # attempt 1, while attempt 2 runs


def _stale_completed(shard: Shard, token: TaskToken) -> TaskToken:
    shard.complete_task(token, StartTimer(timer_id="t", start_to_fire_timeout_ms=5))
    return token


def _stale_closed_run(shard: Shard, token: TaskToken) -> TaskToken:
    shard.complete_task(token, CompleteWorkflowExecution())
    return token


def _stale_unknown_scheduled(shard: Shard, token: TaskToken) -> TaskToken:
    return replace(token, scheduled_event_id=99)


def _stale_unknown_run(shard: Shard, token: TaskToken) -> TaskToken:
    return replace(token, run_id="other-run")


def _stale_not_started(shard: Shard, token: TaskToken) -> TaskToken:
    shard.run(RespondWorkflowTaskFailed(now_ms=shard.now_ms, token=token))
    return replace(token, attempt=2, scheduled_event_id=5)  # scheduled, not yet started


STALE_CASES: list[Callable[[Shard, TaskToken], TaskToken]] = [
    _stale_old_attempt, _stale_completed, _stale_closed_run, _stale_unknown_scheduled,
    _stale_unknown_run, _stale_not_started]


@pytest.mark.parametrize("make_stale", STALE_CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("answer", ["completed", "failed"])
def test_stale_answers_are_rejected_and_change_nothing(
        make_stale: Callable[[Shard, TaskToken], TaskToken], answer: str) -> None:
    shard = Shard()
    run_id = shard.start()
    token = make_stale(shard, shard.poll_workflow_task(run_id).token)
    if answer == "completed":
        command: RespondWorkflowTaskCompleted | RespondWorkflowTaskFailed = (
            RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token,
                                         commands=(CompleteWorkflowExecution(),)))
    else:
        command = RespondWorkflowTaskFailed(now_ms=shard.now_ms, token=token)
    assert shard.run_unchanged(command).code is ErrorCode.STALE_TASK


def test_activity_token_on_workflow_answer_is_invalid() -> None:
    shard = Shard()
    token = shard.poll_workflow_task(shard.start()).token
    wrong = replace(token, kind=TaskKind.ACTIVITY)
    rejected = shard.run_unchanged(RespondWorkflowTaskFailed(now_ms=1, token=wrong))
    assert rejected.code is ErrorCode.INVALID_ARGUMENT


def test_failed_task_is_retried_with_next_attempt() -> None:
    shard = Shard()
    run_id = shard.start()
    token = shard.poll_workflow_task(run_id).token
    output = shard.run(RespondWorkflowTaskFailed(now_ms=shard.now_ms, token=token, cause="Bug",
                                                 failure=b'"trace"'))
    assert [e.event_type for e in output.events] == ["WorkflowTaskFailed",
                                                     "WorkflowTaskScheduled"]
    assert output.events[0].attributes.cause == "Bug"
    assert output.events[1].attributes.attempt == 2
    assert shard.poll_workflow_task(run_id).attempt == 2


def test_workflow_task_start_to_close_timeout() -> None:
    shard = Shard()
    run_id = shard.start(task_timeout_ms=3_000)
    token = shard.poll_workflow_task(run_id).token
    assert not shard.advance(2_999).events
    output = shard.advance(1)
    assert [e.event_type for e in output.events] == ["WorkflowTaskTimedOut",
                                                     "WorkflowTaskScheduled"]
    assert output.events[0].attributes.timeout_type == "StartToClose"
    rejected = shard.run_unchanged(RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token))
    assert rejected.code is ErrorCode.STALE_TASK
    assert shard.poll_workflow_task(run_id).attempt == 2


def test_signal_schedules_a_task_when_none_is_pending() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, RecordMarker(marker_name="m"))
    output = shard.run(_signal(shard))
    assert [e.event_type for e in output.events] == ["WorkflowExecutionSignaled",
                                                     "WorkflowTaskScheduled"]
    again = shard.run(_signal(shard, "sig-2"))  # a task is already scheduled: no second one
    assert [e.event_type for e in again.events] == ["WorkflowExecutionSignaled"]


def test_signal_during_started_task_is_buffered_then_delivered() -> None:
    shard = Shard()
    run_id = shard.start()
    task = shard.poll_workflow_task(run_id)
    output = shard.run(_signal(shard))
    assert not output.events and len(shard.execution(run_id).buffered) == 1
    done = shard.complete_task(task.token, RecordMarker(marker_name="m"))
    assert [e.event_type for e in done.events] == [
        "WorkflowTaskCompleted", "MarkerRecorded", "WorkflowExecutionSignaled",
        "WorkflowTaskScheduled"]
    assert not shard.execution(run_id).buffered


def test_signal_retry_is_deduplicated_and_closed_or_unknown_refused() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.run(_signal(shard))
    again = shard.run(_signal(shard))
    assert not again.events and len(shard.execution(run_id).history) == 3
    assert shard.run_unchanged(_signal(shard, "s2", "ghost")).code is ErrorCode.NOT_FOUND
    shard.decide(run_id, CompleteWorkflowExecution())
    assert shard.run_unchanged(_signal(shard, "s3")).code is ErrorCode.WORKFLOW_NOT_RUNNING


def test_close_with_unhandled_signal_fails_task_and_reschedules() -> None:
    shard = Shard()
    run_id = shard.start()
    task = shard.poll_workflow_task(run_id)
    shard.run(_signal(shard))
    output = shard.complete_task(task.token, CompleteWorkflowExecution(result=b"1"))
    assert isinstance(output.result, Rejected)
    assert output.result.code is ErrorCode.UNHANDLED_COMMAND
    assert [e.event_type for e in output.events] == [
        "WorkflowTaskFailed", "WorkflowExecutionSignaled", "WorkflowTaskScheduled"]
    assert output.events[0].attributes.cause == "UnhandledCommand"
    assert shard.execution(run_id).is_open
    shard.decide(run_id, CompleteWorkflowExecution(result=b"2"))
    assert shard.event_types(run_id)[-1] == "WorkflowExecutionCompleted"


BIG = b"x" * (limits.PAYLOAD_BYTES_MAX + 1)
INVALID_COMMANDS: list[tuple[str, tuple[WorkflowCommand, ...], ErrorCode]] = [
    ("close_not_last", (CompleteWorkflowExecution(), RecordMarker(marker_name="m")),
     ErrorCode.INVALID_ARGUMENT),
    ("duplicate_activity", (activity("a"), activity("a")), ErrorCode.INVALID_ARGUMENT),
    ("no_timeouts", (activity("a", start_to_close_timeout_ms=None),), ErrorCode.INVALID_ARGUMENT),
    ("cancel_unknown_activity", (RequestCancelActivityTask(scheduled_event_id=2),),
     ErrorCode.INVALID_ARGUMENT),
    ("cancel_unknown_timer", (CancelTimer(timer_id="t"),), ErrorCode.INVALID_ARGUMENT),
    ("duplicate_timer", (StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
                         StartTimer(timer_id="t", start_to_fire_timeout_ms=5)),
     ErrorCode.INVALID_ARGUMENT),
    ("zero_timer", (StartTimer(timer_id="t", start_to_fire_timeout_ms=0),),
     ErrorCode.INVALID_ARGUMENT),
    ("big_result", (CompleteWorkflowExecution(result=BIG),), ErrorCode.PAYLOAD_TOO_LARGE),
    ("big_input", (activity("a", input=BIG),), ErrorCode.PAYLOAD_TOO_LARGE),
    ("big_marker", (RecordMarker(marker_name="m", details=BIG),), ErrorCode.PAYLOAD_TOO_LARGE),
]


@pytest.mark.parametrize(("name", "commands", "code"), INVALID_COMMANDS,
                         ids=[case[0] for case in INVALID_COMMANDS])
def test_invalid_commands_refuse_the_whole_completion(
        name: str, commands: tuple[WorkflowCommand, ...], code: ErrorCode) -> None:
    shard = Shard()
    token = shard.poll_workflow_task(shard.start()).token
    command = RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token, commands=commands)
    assert shard.run_unchanged(command).code is code


def test_start_and_cancel_timer_in_one_task() -> None:
    shard = Shard()
    run_id = shard.start()
    output = shard.decide(run_id, StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
                          CancelTimer(timer_id="t"))
    assert [e.event_type for e in output.events][1:] == ["TimerStarted", "TimerCanceled"]
    assert not shard.state.timers


def test_pending_activities_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "PENDING_ACTIVITIES_MAX", 2)
    shard = Shard()
    token = shard.poll_workflow_task(shard.start()).token
    command = RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token, commands=(
        activity("a"), activity("b"), activity("c")))
    rejected = shard.run_unchanged(command)
    assert rejected.code is ErrorCode.LIMIT_EXCEEDED
    assert rejected.field == "PENDING_ACTIVITIES_MAX"


def test_history_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "HISTORY_EVENTS_MAX", 8)
    shard = Shard()
    token = shard.poll_workflow_task(shard.start()).token
    markers = tuple(RecordMarker(marker_name=f"m{i}") for i in range(4))
    command = RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token, commands=markers)
    rejected = shard.run_unchanged(command)
    assert rejected.code is ErrorCode.LIMIT_EXCEEDED
    assert rejected.field == "HISTORY_EVENTS_MAX"
    shard.complete_task(token, *markers[:3])  # 3 + completed + 3 markers + room for a task
