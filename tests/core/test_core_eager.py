"""Goal: eager dispatch and sticky histories behave as specified. A workflow task completion
starts, in the same command, the activities it schedules on the worker's queue (up to the
asked maximum, in command order) and drops their dispatch; an activity completion starts the
workflow task it schedules when the worker runs the run's queue; the worker that completed the
last task (its sticky queue) gets only the events it has not seen; a failed or timed-out task
resets stickiness; refused inputs change nothing.

Method: table-driven cases over a driver shard (which checks every invariant after each step);
refusals go through `run_unchanged` (state digest before and after); accepted paths are
checked event by event, effect by effect and timer by timer.
"""

from __future__ import annotations

from collections.abc import Callable
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
    RecordWorkflowTaskStarted,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskFailed,
    RetryPolicy,
    ScheduleActivityTask,
    StartTimer,
    TaskKind,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.effects import DispatchActivityTask, DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    Rejected,
    WorkflowTaskCompletedResult,
    WorkflowTaskInfo,
    WorkflowTaskStartedResult,
)
from raftflow.shards.core import limits, pending_effects
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from raftflow.shards.core.output import Output
from raftflow.shards.core.snapshot import from_bytes, to_bytes
from raftflow.shards.core.state import ActivityPhase, TimerKind
from tests.core.core_driver import NAMESPACE, QUEUE, Shard, activity

LONG_ID = "x" * (limits.ID_LENGTH_MAX + 1)
STICKY = "sticky-worker-1"
STC_MS, STS_MS, HB_MS = 10_000, 500, 3_000


# --- helpers -------------------------------------------------------------------------------------


def _types(events: tuple[object, ...]) -> list[str]:
    return [e.event_type for e in events]  # type: ignore[attr-defined]


def _poll(shard: Shard, run_id: str, sticky_queue: str = "",
          request_id: str | None = None) -> WorkflowTaskInfo:
    execution = shard.execution(run_id)
    assert execution.workflow_task is not None, "no workflow task scheduled"
    output = shard.run(RecordWorkflowTaskStarted(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id=execution.workflow_id,
        run_id=run_id, scheduled_event_id=execution.workflow_task.scheduled_event_id,
        identity="worker-1", request_id=request_id or shard.request_id(),
        sticky_queue=sticky_queue))
    assert isinstance(output.result, WorkflowTaskStartedResult), output.result
    return output.result.task


def _complete(shard: Shard, token: TaskToken, *commands: WorkflowCommand, eager_queue: str = "",
              eager_max: int = 0, sticky_queue: str = "") -> Output:
    output = shard.run(RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=token, commands=commands, identity="worker-1",
        sticky_queue=sticky_queue, eager_task_queue=eager_queue,
        eager_activities_max=eager_max))
    assert not isinstance(output.result, Rejected), output.result
    return output


def _complete_activity(shard: Shard, token: TaskToken, *, eager_queue: str = "",
                       sticky_queue: str = "") -> Output:
    output = shard.run(RespondActivityTaskCompleted(
        now_ms=shard.now_ms, token=token, result=b'"ok"', identity="worker-1",
        eager_task_queue=eager_queue, sticky_queue=sticky_queue))
    assert not isinstance(output.result, Rejected), output.result
    return output


def _act(activity_id: str, **fields: object) -> ScheduleActivityTask:
    """An activity with every timer kind a start touches: schedule-to-start (shorter than
    start-to-close, so a stray one would fire first), start-to-close and heartbeat."""
    return activity(activity_id, schedule_to_start_timeout_ms=STS_MS,
                    start_to_close_timeout_ms=STC_MS, heartbeat_timeout_ms=HB_MS, **fields)


def _activity_dispatches(output: Output) -> list[int]:
    return [e.scheduled_event_id for e in output.effects if isinstance(e, DispatchActivityTask)]


def _workflow_dispatches(output: Output) -> list[int]:
    return [e.scheduled_event_id for e in output.effects if isinstance(e, DispatchWorkflowTask)]


def _event_ids(task: WorkflowTaskInfo) -> list[int]:
    return [e.event_id for e in task.history]


def _with_activity_running(shard: Shard, *activity_ids: str) -> tuple[str, dict[str, TaskToken]]:
    """A run whose first task scheduled `activity_ids` (default queue), each polled and started;
    no workflow task is pending."""
    run_id = shard.start()
    shard.decide(run_id, *(activity(a) for a in activity_ids))
    return run_id, {a: shard.poll_activity(run_id, a).token for a in activity_ids}


# --- 1. eager activities on workflow task completion ----------------------------------------------


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


# --- refusals change nothing ---------------------------------------------------------------------


COMPLETION_REFUSALS: list[tuple[str, dict[str, object], str]] = [
    ("max_negative", {"eager_activities_max": -1}, "eager_activities_max"),
    ("max_above_limit", {"eager_activities_max": limits.EAGER_ACTIVITIES_MAX + 1},
     "eager_activities_max"),
    ("max_huge", {"eager_activities_max": 2**40}, "eager_activities_max"),
    ("max_above_limit_without_queue", {"eager_task_queue": "",
                                       "eager_activities_max": limits.EAGER_ACTIVITIES_MAX + 1},
     "eager_activities_max"),
    ("long_sticky_queue", {"sticky_queue": LONG_ID}, "sticky_queue"),
    ("long_eager_task_queue", {"eager_task_queue": LONG_ID}, "eager_task_queue"),
]


@pytest.mark.parametrize(("name", "fields", "field"), COMPLETION_REFUSALS,
                         ids=[c[0] for c in COMPLETION_REFUSALS])
def test_invalid_eager_completion_is_refused_and_changes_nothing(
        name: str, fields: dict[str, object], field: str) -> None:
    shard = Shard()
    run_id = shard.start()
    first = _poll(shard, run_id)
    _complete(shard, first.token, StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
              sticky_queue=STICKY)
    shard.advance(5)
    task = _poll(shard, run_id, STICKY)
    command = RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token, commands=(_act("a1"), _act("a2")),
        identity="worker-1", sticky_queue="new-sticky", eager_task_queue=QUEUE,
        eager_activities_max=2)
    rejected = shard.run_unchanged(replace(command, **fields))  # type: ignore[arg-type]
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == field
    assert shard.execution(run_id).sticky_queue == STICKY
    # The task is still the running one: a valid answer is accepted afterwards.
    output = shard.run(command)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    assert len(output.result.activity_tasks) == 2
    assert shard.execution(run_id).sticky_queue == "new-sticky"


def test_longest_ids_are_accepted() -> None:
    shard = Shard()
    run_id = shard.start()
    longest = "q" * limits.ID_LENGTH_MAX
    task = _poll(shard, run_id)
    output = _complete(shard, task.token, _act("a1", task_queue=longest), eager_queue=longest,
                       eager_max=limits.EAGER_ACTIVITIES_MAX, sticky_queue=longest)
    assert isinstance(output.result, WorkflowTaskCompletedResult)
    assert shard.execution(run_id).sticky_queue == longest


ACTIVITY_REFUSALS: list[tuple[str, dict[str, object], str]] = [
    ("long_eager_task_queue", {"eager_task_queue": LONG_ID}, "eager_task_queue"),
    ("long_sticky_queue", {"sticky_queue": LONG_ID}, "sticky_queue"),
]


@pytest.mark.parametrize(("name", "fields", "field"), ACTIVITY_REFUSALS,
                         ids=[c[0] for c in ACTIVITY_REFUSALS])
def test_invalid_eager_activity_completion_is_refused_and_changes_nothing(
        name: str, fields: dict[str, object], field: str) -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    command = RespondActivityTaskCompleted(now_ms=shard.now_ms, token=tokens["a"],
                                           eager_task_queue=QUEUE, sticky_queue="s")
    rejected = shard.run_unchanged(replace(command, **fields))  # type: ignore[arg-type]
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == field
    assert isinstance(shard.run(command).result, ActivityTaskCompletedResult)


def test_invalid_sticky_queue_on_poll_is_refused_and_changes_nothing() -> None:
    shard = Shard()
    run_id = shard.start()
    command = RecordWorkflowTaskStarted(now_ms=shard.now_ms, namespace=NAMESPACE,
                                        workflow_id="wf", run_id=run_id, scheduled_event_id=2,
                                        request_id="p1", sticky_queue=LONG_ID)
    rejected = shard.run_unchanged(command)
    assert rejected.code is ErrorCode.INVALID_ARGUMENT and rejected.field == "sticky_queue"
    assert isinstance(shard.run(replace(command, sticky_queue="s")).result,
                      WorkflowTaskStartedResult)


def test_non_eager_activity_completion_fits_exactly_at_the_history_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an eager request the completion writes 3 events (ActivityTaskStarted,
    ActivityTaskCompleted, WorkflowTaskScheduled): it must be accepted when exactly 3 fit,
    as before eager dispatch existed; the extra WorkflowTaskStarted is only for eager."""
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    assert len(shard.execution(run_id).history) == 5
    monkeypatch.setattr(limits, "HISTORY_EVENTS_MAX", 8)
    output = shard.run(RespondActivityTaskCompleted(now_ms=shard.now_ms, token=tokens["a"]))
    assert output.result == Ack(), output.result
    assert len(shard.execution(run_id).history) == 8


# --- 2. eager workflow task on activity completion ------------------------------------------------


WT_CASES: list[tuple[str, str, bool]] = [
    ("own_queue", QUEUE, True),
    ("wrong_queue", "other-queue", False),
    ("no_queue", "", False),
]


@pytest.mark.parametrize(("name", "eager_queue", "eager"), WT_CASES,
                         ids=[c[0] for c in WT_CASES])
def test_eager_workflow_task_on_activity_completion(name: str, eager_queue: str,
                                                    eager: bool) -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    shard.now_ms += 11
    output = _complete_activity(shard, tokens["a"], eager_queue=eager_queue)
    execution = shard.execution(run_id)
    task = execution.workflow_task
    assert task is not None
    scheduled_id = 8
    assert task.scheduled_event_id == scheduled_id
    if not eager:
        assert output.result == Ack()
        assert _types(output.events) == ["ActivityTaskStarted", "ActivityTaskCompleted",
                                         "WorkflowTaskScheduled"]
        assert _workflow_dispatches(output) == [scheduled_id] and task.started_event_id == 0
        assert (run_id, TimerKind.WORKFLOW_TASK_START_TO_CLOSE, scheduled_id) not in (
            shard.state.timers)
        _poll(shard, run_id)  # the pollers get it
        return
    assert isinstance(output.result, ActivityTaskCompletedResult)
    info = output.result.workflow_task
    assert info is not None
    assert _types(output.events) == ["ActivityTaskStarted", "ActivityTaskCompleted",
                                     "WorkflowTaskScheduled", "WorkflowTaskStarted"]
    assert _workflow_dispatches(output) == []
    assert [e for e in pending_effects(shard.state) if isinstance(e, DispatchWorkflowTask)] == []
    started = output.events[-1]
    assert started.attributes.scheduled_event_id == scheduled_id
    assert started.attributes.identity == "worker-1"
    assert task.started_event_id == started.event_id == info.started_event_id == 9
    assert info.token == TaskToken(namespace=NAMESPACE, workflow_id="wf", run_id=run_id,
                                   scheduled_event_id=scheduled_id, attempt=1,
                                   kind=TaskKind.WORKFLOW)
    assert info.scheduled_event_id == scheduled_id and info.task_queue == QUEUE
    assert info.previous_started_event_id == 3
    assert _event_ids(info) == list(range(1, 10))  # no sticky queue: the whole history
    assert tuple(execution.history) == info.history
    timer = (run_id, TimerKind.WORKFLOW_TASK_START_TO_CLOSE, scheduled_id)
    assert shard.state.timers[timer] == shard.now_ms + execution.task_timeout_ms
    # A poller's claim is stale; the eager worker's completion is accepted.
    claim = shard.run(RecordWorkflowTaskStarted(
        now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf", run_id=run_id,
        scheduled_event_id=scheduled_id, request_id="poller"))
    assert isinstance(claim.result, Rejected) and claim.result.code is ErrorCode.STALE_TASK
    done = _complete(shard, info.token, CompleteWorkflowExecution())
    assert _types(done.events) == ["WorkflowTaskCompleted", "WorkflowExecutionCompleted"]


def test_eagerly_started_workflow_task_times_out_like_a_polled_one() -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    output = _complete_activity(shard, tokens["a"], eager_queue=QUEUE)
    assert isinstance(output.result, ActivityTaskCompletedResult)
    info = output.result.workflow_task
    assert info is not None
    timed_out = shard.advance(shard.execution(run_id).task_timeout_ms)
    assert _types(timed_out.events) == ["WorkflowTaskTimedOut", "WorkflowTaskScheduled"]
    assert _workflow_dispatches(timed_out) == [timed_out.events[-1].event_id]
    stale = RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=info.token)
    assert shard.run_unchanged(stale).code is ErrorCode.STALE_TASK
    assert _poll(shard, run_id).attempt == 2


def _earlier_task_started(shard: Shard, run_id: str, tokens: dict[str, TaskToken]) -> None:
    shard.wake(run_id)
    _poll(shard, run_id)


def _earlier_task_scheduled(shard: Shard, run_id: str, tokens: dict[str, TaskToken]) -> None:
    shard.wake(run_id)


def _earlier_activity_completed(shard: Shard, run_id: str,
                                tokens: dict[str, TaskToken]) -> None:
    assert _complete_activity(shard, tokens["a0"]).result == Ack()  # not eager: dispatched


def _earlier_eager_task(shard: Shard, run_id: str, tokens: dict[str, TaskToken]) -> None:
    output = _complete_activity(shard, tokens["a0"], eager_queue=QUEUE)
    assert isinstance(output.result, ActivityTaskCompletedResult)


EARLIER: list[Callable[[Shard, str, dict[str, TaskToken]], None]] = [
    _earlier_task_started, _earlier_task_scheduled, _earlier_activity_completed,
    _earlier_eager_task]


@pytest.mark.parametrize("earlier", EARLIER, ids=lambda f: f.__name__)
def test_no_eager_workflow_task_when_one_was_already_pending(
        earlier: Callable[[Shard, str, dict[str, TaskToken]], None]) -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a0", "a1", "a2")
    earlier(shard, run_id, tokens)
    before = shard.execution(run_id).workflow_task
    assert before is not None
    before_ids = (before.scheduled_event_id, before.started_event_id)
    for activity_id in ("a1", "a2"):  # both complete while that task is pending or running
        output = _complete_activity(shard, tokens[activity_id], eager_queue=QUEUE)
        assert output.result == Ack()
        assert not _workflow_dispatches(output)
        assert "WorkflowTaskStarted" not in _types(output.events)
        assert "WorkflowTaskScheduled" not in _types(output.events)
    task = shard.execution(run_id).workflow_task
    assert task is not None and (task.scheduled_event_id, task.started_event_id) == before_ids
    if task.started_event_id:
        assert len(shard.execution(run_id).buffered) == 4  # Started+Completed per activity


def test_two_completions_buffered_then_delivered_by_the_next_task() -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a1", "a2")
    shard.wake(run_id)
    running = _poll(shard, run_id)
    for activity_id in ("a1", "a2"):
        output = _complete_activity(shard, tokens[activity_id], eager_queue=QUEUE,
                                    sticky_queue=STICKY)
        assert output.result == Ack() and output.events == ()
    done = _complete(shard, running.token, sticky_queue=STICKY)
    assert _types(done.events) == [
        "WorkflowTaskCompleted", "ActivityTaskStarted", "ActivityTaskCompleted",
        "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled"]
    assert _workflow_dispatches(done) == [done.events[-1].event_id]
    following = _poll(shard, run_id, STICKY)
    assert _event_ids(following)[0] == running.started_event_id + 1


# --- 3. sticky histories -------------------------------------------------------------------------


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
