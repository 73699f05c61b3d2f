"""Goal: the worker that completed the last workflow task (its sticky queue) gets only the
events it has not seen, whether it polls or is handed an eager workflow task; the sticky queue
survives snapshots and is covered by the state digest; a failed or timed-out task resets
stickiness, and the next successful completion restores it.

Method: table-driven cases over a driver shard (which checks every invariant after each step);
each handed-out history is compared with the slice of the execution's history it must be.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    RecordWorkflowTaskStarted,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskFailed,
    StartTimer,
    TaskToken,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    Rejected,
    WorkflowTaskCompletedResult,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from raftflow.shards.core.snapshot import from_bytes, to_bytes
from tests.core.core_driver import NAMESPACE, QUEUE, Shard, activity
from tests.core.eager_worker_steps import (
    STICKY,
    _complete,
    _complete_activity,
    _event_ids,
    _poll,
    _types,
)

STICKY_POLLS: list[tuple[str, str, str, bool]] = [
    # (name, sticky queue of the last completion, sticky queue of the poll, partial history)
    ("same_sticky_queue", STICKY, STICKY, True),
    ("other_sticky_queue", STICKY, "sticky-worker-2", False),
    ("poll_without_sticky", STICKY, "", False),
    ("completion_without_sticky", "", STICKY, False),
    ("neither_sticky", "", "", False),
    ("normal_queue_is_not_sticky", STICKY, QUEUE, False),
]


@pytest.mark.parametrize(("name", "completed_with", "polled_with", "partial"), STICKY_POLLS,
                         ids=[c[0] for c in STICKY_POLLS])
def test_sticky_history_on_poll(name: str, completed_with: str, polled_with: str,
                                partial: bool) -> None:
    shard = Shard()
    run_id = shard.start()
    first = _poll(shard, run_id, polled_with)
    assert _event_ids(first) == [1, 2, 3]  # nothing completed yet: always the whole history
    _complete(shard, first.token, StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
              sticky_queue=completed_with)
    assert shard.execution(run_id).sticky_queue == completed_with
    shard.advance(5)
    shard.wake(run_id)
    task = _poll(shard, run_id, polled_with, request_id="poll-2")
    history = shard.execution(run_id).history
    assert task.previous_started_event_id == first.started_event_id == 3
    assert task.history[-1].event_type == "WorkflowTaskStarted"
    assert task.history[-1].event_id == task.started_event_id == len(history)
    first_id = task.previous_started_event_id + 1 if partial else 1
    assert _event_ids(task) == list(range(first_id, task.started_event_id + 1))
    assert task.history == tuple(history[first_id - 1:])
    # A retried hand-out answers alike for the same poller.
    again = shard.run(RecordWorkflowTaskStarted(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf", run_id=run_id,
        scheduled_event_id=task.scheduled_event_id, request_id="poll-2",
        sticky_queue=polled_with))
    assert again.result == WorkflowTaskStartedResult(task=task) and not again.events


def test_sticky_history_follows_each_completion() -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id, STICKY)
    for round_ in range(3):
        _complete(shard, task.token, StartTimer(timer_id=f"t{round_}",
                                                start_to_fire_timeout_ms=5), sticky_queue=STICKY)
        shard.advance(5)
        previous = task
        task = _poll(shard, run_id, STICKY)
        assert task.previous_started_event_id == previous.started_event_id
        assert _event_ids(task) == list(range(previous.started_event_id + 1,
                                              task.started_event_id + 1))
        assert _types(task.history) == ["WorkflowTaskCompleted", "TimerStarted", "TimerFired",
                                        "WorkflowTaskScheduled", "WorkflowTaskStarted"]


STICKY_EAGER: list[tuple[str, str, str, bool]] = [
    ("same_sticky_queue", STICKY, STICKY, True),
    ("other_sticky_queue", STICKY, "sticky-worker-2", False),
    ("no_sticky_queue", STICKY, "", False),
    ("completion_without_sticky", "", STICKY, False),
]


@pytest.mark.parametrize(("name", "completed_with", "activity_sticky", "partial"), STICKY_EAGER,
                         ids=[c[0] for c in STICKY_EAGER])
def test_sticky_history_on_eager_workflow_task(name: str, completed_with: str,
                                               activity_sticky: str, partial: bool) -> None:
    shard = Shard()
    run_id = shard.start()
    first = _poll(shard, run_id)
    output = _complete(shard, first.token, activity("a"), eager_queue=QUEUE, eager_max=1,
                       sticky_queue=completed_with)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    (eager_activity,) = output.result.activity_tasks
    done = _complete_activity(shard, eager_activity.token, eager_queue=QUEUE,
                              sticky_queue=activity_sticky)
    assert isinstance(done.result, ActivityTaskCompletedResult)
    info = done.result.workflow_task
    assert info is not None and info.previous_started_event_id == 3
    first_id = 4 if partial else 1
    assert _event_ids(info) == list(range(first_id, info.started_event_id + 1))
    assert _types(info.history)[-4:] == ["ActivityTaskStarted", "ActivityTaskCompleted",
                                         "WorkflowTaskScheduled", "WorkflowTaskStarted"]
    if partial:
        assert _types(info.history) == ["WorkflowTaskCompleted", "ActivityTaskScheduled",
                                        "ActivityTaskStarted", "ActivityTaskCompleted",
                                        "WorkflowTaskScheduled", "WorkflowTaskStarted"]


def test_execution_remembers_sticky_queue_through_snapshots() -> None:
    shard = Shard()
    run_id = shard.start()
    assert shard.execution(run_id).sticky_queue == ""
    _complete(shard, _poll(shard, run_id).token, StartTimer(timer_id="t",
                                                            start_to_fire_timeout_ms=5),
              sticky_queue=STICKY)
    assert shard.execution(run_id).sticky_queue == STICKY
    restored = from_bytes(to_bytes(shard.state))
    check_invariants(restored)
    assert restored.executions[run_id].sticky_queue == STICKY
    assert state_digest(restored) == state_digest(shard.state)
    other = from_bytes(to_bytes(shard.state))
    other.executions[run_id].sticky_queue = "another"
    assert state_digest(other) != state_digest(shard.state), "the digest covers sticky_queue"
    shard.advance(5)
    # The restored replica answers the sticky poll like the original.
    poll = RecordWorkflowTaskStarted(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                     run_id=run_id, scheduled_event_id=7, request_id="p",
                                     sticky_queue=STICKY)
    replica = Shard()
    replica.state = from_bytes(to_bytes(shard.state))
    assert replica.run(poll).result == shard.run(poll).result
    # A completion without a sticky queue forgets it.
    task = _poll(shard, run_id, STICKY, request_id="p")
    _complete(shard, task.token, StartTimer(timer_id="t2", start_to_fire_timeout_ms=5))
    assert shard.execution(run_id).sticky_queue == ""


def _reset_by_failure(shard: Shard, run_id: str, token: TaskToken) -> None:
    output = shard.run(RespondWorkflowTaskFailed(now_ms=shard.now_ms, token=token, cause="Bug"))
    assert output.result == Ack()


def _reset_by_timeout(shard: Shard, run_id: str, token: TaskToken) -> None:
    output = shard.advance(shard.execution(run_id).task_timeout_ms)
    assert _types(output.events)[0] == "WorkflowTaskTimedOut"


def _reset_by_unhandled_command(shard: Shard, run_id: str, token: TaskToken) -> None:
    shard.wake(run_id)
    output = shard.run(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=token, commands=(CompleteWorkflowExecution(),),
        sticky_queue=STICKY))
    assert isinstance(output.result, Rejected)
    assert output.result.code is ErrorCode.UNHANDLED_COMMAND


RESETS: list[Callable[[Shard, str, TaskToken], None]] = [
    _reset_by_failure, _reset_by_timeout, _reset_by_unhandled_command]


@pytest.mark.parametrize("reset", RESETS, ids=lambda f: f.__name__)
def test_failed_or_timed_out_task_clears_stickiness(
        reset: Callable[[Shard, str, TaskToken], None]) -> None:
    shard = Shard()
    run_id = shard.start()
    first = _poll(shard, run_id, STICKY)
    _complete(shard, first.token, StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
              sticky_queue=STICKY)
    shard.advance(5)
    second = _poll(shard, run_id, STICKY)
    assert _event_ids(second)[0] == first.started_event_id + 1  # sticky while it holds
    reset(shard, run_id, second.token)
    assert shard.execution(run_id).sticky_queue == ""
    third = _poll(shard, run_id, STICKY)  # the same worker polls again: it gets everything
    assert _event_ids(third) == list(range(1, third.started_event_id + 1))
    assert third.previous_started_event_id == first.started_event_id
    _complete(shard, third.token, StartTimer(timer_id="t2", start_to_fire_timeout_ms=5),
              sticky_queue=STICKY)
    shard.advance(5)
    fourth = _poll(shard, run_id, STICKY)  # sticky again after a successful completion
    assert fourth.previous_started_event_id == third.started_event_id
    assert _event_ids(fourth)[0] == third.started_event_id + 1


def test_timed_out_eager_task_clears_stickiness_for_the_next_eager_task() -> None:
    shard = Shard()
    run_id = shard.start()
    output = _complete(shard, _poll(shard, run_id).token, activity("a1"), activity("a2"),
                       eager_queue=QUEUE, eager_max=2, sticky_queue=STICKY)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    a1, a2 = output.result.activity_tasks
    done = _complete_activity(shard, a1.token, eager_queue=QUEUE, sticky_queue=STICKY)
    assert isinstance(done.result, ActivityTaskCompletedResult)
    assert done.result.workflow_task is not None
    assert _event_ids(done.result.workflow_task)[0] == 4
    shard.advance(shard.execution(run_id).task_timeout_ms)  # the eager task is never answered
    assert shard.execution(run_id).sticky_queue == ""
    task = _poll(shard, run_id, STICKY)
    assert _event_ids(task)[0] == 1
