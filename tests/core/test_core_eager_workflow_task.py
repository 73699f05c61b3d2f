"""Goal: an activity completion starts the workflow task it schedules when the worker runs the
run's queue, and drops its dispatch; when a workflow task was already pending or running, the
completions are buffered for it instead; an eagerly started workflow task times out like a
polled one.

Method: table-driven cases over a driver shard (which checks every invariant after each step);
accepted paths are checked event by event, effect by effect, timer by timer and token by token.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    RecordWorkflowTaskStarted,
    RespondWorkflowTaskCompleted,
    TaskKind,
    TaskToken,
)
from raftflow.protocol.effects import DispatchWorkflowTask
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    Rejected,
)
from raftflow.shards.core import pending_effects
from raftflow.shards.core.state import TimerKind
from tests.core.core_driver import NAMESPACE, QUEUE, Shard
from tests.core.eager_worker_steps import (
    STICKY,
    _complete,
    _complete_activity,
    _event_ids,
    _poll,
    _types,
    _with_activity_running,
    _workflow_dispatches,
)

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
