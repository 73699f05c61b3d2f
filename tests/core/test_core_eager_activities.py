"""Goal: a workflow task completion starts, in the same command, the activities it schedules on
the worker's queue (up to the asked maximum, in command order) and drops their dispatch, while
the others go to pollers; an eagerly started activity completes, times out and is retried like
a polled one; a close command, or events that arrived during the task, start nothing eagerly.

Method: table-driven cases over a driver shard (which checks every invariant after each step);
accepted paths are checked event by event, effect by effect and timer by timer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    CancelWorkflowExecution,
    Command,
    CompleteWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RecordActivityTaskStarted,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    RetryPolicy,
    ScheduleActivityTask,
    StartTimer,
    TaskKind,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.effects import DispatchActivityTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    Ack,
    Rejected,
    WorkflowTaskCompletedResult,
)
from raftflow.shards.core import limits, pending_effects
from raftflow.shards.core.state import ActivityPhase, TimerKind
from tests.core.core_driver import NAMESPACE, QUEUE, Shard, activity
from tests.core.eager_worker_steps import (
    HB_MS,
    STC_MS,
    STICKY,
    STS_MS,
    _act,
    _activity_dispatches,
    _complete,
    _poll,
    _types,
    _workflow_dispatches,
)


@dataclass(frozen=True)
class EagerCase:
    name: str
    commands: tuple[ScheduleActivityTask, ...]
    eager_queue: str
    eager_max: int
    eager: tuple[str, ...]  # activity ids started eagerly, in answer order
    dispatched: tuple[str, ...]  # activity ids left to pollers


_THREE = (_act("a1"), _act("a2"), _act("a3"))
_MIXED = (_act("a1"), _act("a2", task_queue="other"), _act("a3"), _act("a4", task_queue="other"))

EAGER_CASES = [
    EagerCase("all_on_queue", _THREE, QUEUE, 16, ("a1", "a2", "a3"), ()),
    EagerCase("explicit_own_queue", (_act("a1", task_queue=QUEUE),), QUEUE, 1, ("a1",), ()),
    EagerCase("wrong_queue_not_eager", _THREE, "other-queue", 16, (), ("a1", "a2", "a3")),
    EagerCase("no_eager_queue", _THREE, "", 16, (), ("a1", "a2", "a3")),
    EagerCase("max_zero", _THREE, QUEUE, 0, (), ("a1", "a2", "a3")),
    EagerCase("max_smaller_than_scheduled", _THREE, QUEUE, 2, ("a1", "a2"), ("a3",)),
    EagerCase("max_one", _THREE, QUEUE, 1, ("a1",), ("a2", "a3")),
    EagerCase("only_matching_queue", _MIXED, QUEUE, 16, ("a1", "a3"), ("a2", "a4")),
    EagerCase("other_queue_matches", _MIXED, "other", 16, ("a2", "a4"), ("a1", "a3")),
    EagerCase("max_counts_matching_only", _MIXED, "other", 1, ("a2",), ("a1", "a3", "a4")),
    EagerCase("at_limit", tuple(_act(f"a{i}") for i in range(limits.EAGER_ACTIVITIES_MAX + 4)),
              QUEUE, limits.EAGER_ACTIVITIES_MAX,
              tuple(f"a{i}" for i in range(limits.EAGER_ACTIVITIES_MAX)),
              tuple(f"a{i}" for i in range(limits.EAGER_ACTIVITIES_MAX,
                                           limits.EAGER_ACTIVITIES_MAX + 4))),
]


@pytest.mark.parametrize("case", EAGER_CASES, ids=[c.name for c in EAGER_CASES])
def test_eager_activities_on_workflow_task_completion(case: EagerCase) -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id)
    shard.now_ms += 7  # the start time must be the completion's, not the poll's
    now = shard.now_ms
    output = _complete(shard, task.token, *case.commands, StartTimer(
        timer_id="t", start_to_fire_timeout_ms=60_000), eager_queue=case.eager_queue,
        eager_max=case.eager_max)
    execution = shard.execution(run_id)
    sid = execution.activity_ids

    # History: an eager start writes nothing (ActivityTaskStarted comes with the close).
    assert _types(output.events) == (["WorkflowTaskCompleted"]
                                     + ["ActivityTaskScheduled"] * len(case.commands)
                                     + ["TimerStarted"])
    # Answer: a plain Ack when nothing started eagerly, else the tasks in command order.
    if not case.eager:
        assert output.result == Ack()
    else:
        assert isinstance(output.result, WorkflowTaskCompletedResult)
        infos = output.result.activity_tasks
        assert [i.activity_id for i in infos] == list(case.eager)
        for info in infos:
            assert info.token == TaskToken(namespace=NAMESPACE, workflow_id="wf", run_id=run_id,
                                           scheduled_event_id=sid[info.activity_id], attempt=1,
                                           kind=TaskKind.ACTIVITY)
            assert info.attempt == 1 and info.started_time_ms == now
            assert info.task_queue == case.eager_queue and info.run_id == run_id
            assert info.start_to_close_timeout_ms == STC_MS
            assert info.heartbeat_timeout_ms == HB_MS
    # Effects: dispatch only for the ones left to pollers, in command order.
    assert _activity_dispatches(output) == [sid[a] for a in case.dispatched]
    rebuilt = [e.scheduled_event_id for e in pending_effects(shard.state)
               if isinstance(e, DispatchActivityTask)]
    assert rebuilt == [sid[a] for a in case.dispatched]
    # State and timers of each activity.
    for activity_id in case.eager:
        state = execution.activities[sid[activity_id]]
        assert state.phase is ActivityPhase.STARTED and state.started_time_ms == now
        assert state.identity == "worker-1"
        timers = {kind: shard.state.timers.get((run_id, kind, sid[activity_id]))
                  for kind in TimerKind}
        assert timers[TimerKind.ACTIVITY_START_TO_CLOSE] == now + STC_MS
        assert timers[TimerKind.ACTIVITY_HEARTBEAT] == now + HB_MS
        assert timers[TimerKind.ACTIVITY_SCHEDULE_TO_START] is None
    for activity_id in case.dispatched:
        state = execution.activities[sid[activity_id]]
        assert state.phase is ActivityPhase.SCHEDULED
        key = (run_id, TimerKind.ACTIVITY_SCHEDULE_TO_START, sid[activity_id])
        assert shard.state.timers[key] == now + STS_MS
        assert (run_id, TimerKind.ACTIVITY_START_TO_CLOSE, sid[activity_id]) not in (
            shard.state.timers)
    assert not _workflow_dispatches(output) and execution.workflow_task is None


def test_eager_activity_completes_like_a_polled_one() -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id)
    output = _complete(shard, task.token, _act("a1"), _act("a2"), eager_queue=QUEUE, eager_max=1)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    (eager,) = output.result.activity_tasks
    # The eager worker's start is already taken: a poller's claim of it is stale.
    claim = shard.run(replace(_poll_activity_command(shard, run_id, "a1"), request_id="p"))
    assert isinstance(claim.result, Rejected) and claim.result.code is ErrorCode.STALE_TASK
    shard.advance(STS_MS)  # the eager one has no schedule-to-start timer; a2 times out
    assert "a1" in shard.execution(run_id).activity_ids
    assert "a2" not in shard.execution(run_id).activity_ids
    done = shard.complete_activity(eager.token)
    assert _types(done.events) == ["ActivityTaskStarted", "ActivityTaskCompleted"]
    started, completed = done.events
    assert started.attributes.identity == "worker-1" and started.attributes.attempt == 1
    assert completed.attributes.started_event_id == started.event_id
    assert not shard.execution(run_id).activities


def _poll_activity_command(shard: Shard, run_id: str, activity_id: str) -> Command:
    sid = shard.execution(run_id).activity_ids[activity_id]
    return RecordActivityTaskStarted(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                     run_id=run_id, scheduled_event_id=sid, attempt=1,
                                     identity="worker-2", request_id="p")


CLOSES: list[tuple[str, WorkflowCommand]] = [
    ("complete", CompleteWorkflowExecution(result=b"1")),
    ("fail", FailWorkflowExecution(failure=Failure(message="no"))),
    ("cancel", CancelWorkflowExecution()),
    ("continue_as_new", ContinueAsNewWorkflowExecution()),
]


@pytest.mark.parametrize(("name", "close"), CLOSES, ids=[c[0] for c in CLOSES])
def test_eager_with_a_close_command_starts_nothing(name: str, close: WorkflowCommand) -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id)
    output = _complete(shard, task.token, _act("a1"), _act("a2"), close, eager_queue=QUEUE,
                       eager_max=16)
    assert output.result == Ack()
    execution = shard.execution(run_id)
    assert not execution.is_open and not execution.activities
    assert not any(key[0] == run_id for key in shard.state.timers)
    if name == "continue_as_new":  # the new run starts clean: no activity carried over
        (new_run,) = (e for e in shard.state.executions.values() if e.run_id != run_id)
        assert new_run.is_open and not new_run.activities and new_run.sticky_queue == ""


def test_eager_refused_as_unhandled_when_events_arrived_during_the_task() -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id)
    shard.wake(run_id)  # buffered
    output = shard.run(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token, commands=(_act("a1"), CompleteWorkflowExecution()),
        eager_task_queue=QUEUE, eager_activities_max=4, sticky_queue=STICKY))
    assert isinstance(output.result, Rejected)
    assert output.result.code is ErrorCode.UNHANDLED_COMMAND
    execution = shard.execution(run_id)
    assert not execution.activities and execution.sticky_queue == ""
    assert _types(output.events) == ["WorkflowTaskFailed", "WorkflowExecutionSignaled",
                                     "WorkflowTaskScheduled"]


def test_eager_with_buffered_events_still_schedules_the_next_task() -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id)
    shard.wake(run_id)  # buffered during the task
    output = _complete(shard, task.token, _act("a1"), eager_queue=QUEUE, eager_max=1)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    assert [i.activity_id for i in output.result.activity_tasks] == ["a1"]
    assert _types(output.events) == ["WorkflowTaskCompleted", "ActivityTaskScheduled",
                                     "WorkflowExecutionSignaled", "WorkflowTaskScheduled"]
    assert _activity_dispatches(output) == []
    assert _workflow_dispatches(output) == [output.events[-1].event_id]


def test_eagerly_started_activity_times_out_and_is_retried() -> None:
    shard = Shard()
    run_id = shard.start()
    task = _poll(shard, run_id)
    output = _complete(shard, task.token, activity(
        "a1", start_to_close_timeout_ms=1_000,
        retry_policy=RetryPolicy(initial_interval_ms=2_000, maximum_attempts=3)),
        eager_queue=QUEUE, eager_max=1)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    (eager,) = output.result.activity_tasks
    sid = eager.token.scheduled_event_id
    assert _activity_dispatches(output) == []
    assert not shard.advance(999).events  # never answered
    timed_out = shard.advance(1)  # start-to-close: retried, no history
    assert timed_out.events == () and _activity_dispatches(timed_out) == []
    state = shard.execution(run_id).activities[sid]
    assert state.phase is ActivityPhase.BACKOFF and state.attempt == 2
    assert state.last_failure is not None and state.last_failure.type == "TimeoutError"
    assert not shard.advance(1_999).effects[:-1]  # back-off not elapsed: only the re-arm
    retried = shard.advance(1)
    assert DispatchActivityTask(namespace=NAMESPACE, task_queue=QUEUE, workflow_id="wf",
                                run_id=run_id, scheduled_event_id=sid, attempt=2) in (
        retried.effects)
    late = RespondActivityTaskCompleted(now_ms=shard.now_ms, token=eager.token)
    assert shard.run_unchanged(late).code is ErrorCode.STALE_TASK
    second = shard.poll_activity(run_id, "a1")
    assert second.attempt == 2 and second.token.attempt == 2
    done = shard.complete_activity(second.token)
    assert done.events[0].attributes.attempt == 2
    assert done.events[0].attributes.last_failure == Failure(
        message="activity StartToClose timeout", type="TimeoutError")
