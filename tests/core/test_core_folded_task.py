"""Goal: an activity's completion carrying the workflow task it makes, completed in advance
(shards/core/on_folded_task.py), writes in one command exactly the history that the two
commits it replaces write (completion with an eager task, then that task's completion), at the
worker's time; and it is applied alone, as before, whenever the history is not what the worker
replayed. A retry of a folded completion whose answer was lost gets the first answer again.

Method: two driver shards (every invariant checked after each step) driven alike up to an
activity running; one takes the two commits, the other the folded one; histories, pending
activities, timers and answers are compared. Refusals are table-driven.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    CompleteWorkflowUpdate,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    StartTimer,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import Ack, ActivityTaskCompletedResult, Rejected
from raftflow.protocol.updates import RequestWorkflowUpdate, WorkflowUpdateResponse
from raftflow.protocol.workflow_commands import FoldedWorkflowTask
from tests.core.core_driver import NAMESPACE, QUEUE, Shard, activity
from tests.core.eager_worker_steps import LONG_ID, _complete, _with_activity_running

WORKER_TIME_MS = 1_000 + 7  # the worker's clock when it ran the task, before the proposer's


def _completion(shard: Shard, token: TaskToken, run_id: str, *commands: WorkflowCommand,
                eager_max: int = 0, time_ms: int = WORKER_TIME_MS,
                after: int | None = None) -> RespondActivityTaskCompleted:
    return RespondActivityTaskCompleted(
        now_ms=shard.now_ms, token=token, result=b'"ok"', identity="worker-1",
        eager_task_queue=QUEUE, sticky_queue="sticky-1",
        workflow_task_completion=FoldedWorkflowTask(
            after_event_id=shard.execution(run_id).history_length if after is None else after,
            workflow_time_ms=time_ms, commands=commands, eager_activities_max=eager_max))


def _two_commits(shard: Shard, token: TaskToken, *commands: WorkflowCommand,
                 eager_max: int = 0) -> ActivityTaskCompletedResult:
    """What a worker without the fold does: complete the activity at the worker's time with an
    eager task, then complete that task."""
    shard.now_ms = WORKER_TIME_MS
    output = shard.run(RespondActivityTaskCompleted(
        now_ms=shard.now_ms, token=token, result=b'"ok"', identity="worker-1",
        eager_task_queue=QUEUE, sticky_queue="sticky-1"))
    assert isinstance(output.result, ActivityTaskCompletedResult)
    task = output.result.workflow_task
    assert task is not None
    completed = _complete(shard, task.token, *commands, eager_queue=QUEUE, eager_max=eager_max,
                          sticky_queue="sticky-1")
    return ActivityTaskCompletedResult(
        workflow_task_completed=True, activity_tasks=getattr(completed.result, "activity_tasks", ()),
        events=getattr(completed.result, "events", ()))


COMMAND_CASES: list[tuple[str, tuple[WorkflowCommand, ...], int]] = [
    ("next_activity_eager", (activity("b", start_to_close_timeout_ms=5_000),), 1),
    ("next_activity_polled", (activity("b"),), 0),
    ("timer", (StartTimer(timer_id="t", start_to_fire_timeout_ms=2_000),), 0),
    ("close", (CompleteWorkflowExecution(result=b'"done"'),), 0),
]


@pytest.mark.parametrize(("name", "commands", "eager_max"), COMMAND_CASES,
                         ids=[c[0] for c in COMMAND_CASES])
def test_one_commit_writes_what_two_commits_write(name: str, commands: tuple[WorkflowCommand, ...],
                                                  eager_max: int) -> None:
    two, one = Shard(), Shard()
    run_id, tokens = _with_activity_running(two, "a")
    assert _with_activity_running(one, "a") == (run_id, tokens)
    expected = _two_commits(two, tokens["a"], *commands, eager_max=eager_max)

    one.now_ms = WORKER_TIME_MS + 5  # the proposer's clock reads later than the worker's
    output = one.run(_completion(one, tokens["a"], run_id, *commands, eager_max=eager_max))

    assert output.result == expected
    assert len(one.log) == len(two.log) - 1  # one command (one commit) instead of two
    assert one.execution(run_id).history == two.execution(run_id).history
    assert {e.time_ms for e in output.events} == {WORKER_TIME_MS}
    assert one.state.timers == two.state.timers
    assert one.execution(run_id).activities == two.execution(run_id).activities
    assert one.execution(run_id).sticky_queue == "sticky-1"


def _signal_first(shard: Shard, run_id: str) -> None:
    shard.wake(run_id)  # a signal: the worker did not replay it


REFUSALS: list[tuple[str, Callable[[Shard, str], None], dict[str, object]]] = [
    ("history_moved_on", _signal_first, {}),
    ("worker_time_after_proposer", lambda s, r: None, {"time_ms": 1_000 + 50}),
    ("worker_time_before_last_event", lambda s, r: None, {"time_ms": 999}),
    ("after_event_id_wrong", lambda s, r: None, {"after": 3}),
]


@pytest.mark.parametrize(("name", "before", "fields"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_otherwise_the_completion_is_applied_alone(name: str, before: Callable[[Shard, str], None],
                                                  fields: dict[str, object]) -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    shard.now_ms = 1_000 + 20
    after = shard.execution(run_id).history_length
    before(shard, run_id)
    command = _completion(shard, tokens["a"], run_id, CompleteWorkflowExecution(result=b'"x"'),
                          after=fields.get("after", after),  # type: ignore[arg-type]
                          time_ms=fields.get("time_ms", WORKER_TIME_MS))  # type: ignore[arg-type]
    output = shard.run(command)
    execution = shard.execution(run_id)
    assert execution.is_open  # the worker's close was not applied
    assert {e.time_ms for e in output.events} == {shard.now_ms}  # the proposer's time
    task = execution.workflow_task
    assert task is not None
    if name == "history_moved_on":  # a task was pending: it will see the completion
        assert output.result == Ack()
        return
    # The task is started for the worker, which runs it from history.
    assert isinstance(output.result, ActivityTaskCompletedResult)
    assert not output.result.workflow_task_completed
    assert output.result.workflow_task is not None
    assert task.started_event_id == output.result.workflow_task.started_event_id


def test_refused_commands_leave_the_started_task_with_the_worker() -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    shard.now_ms = WORKER_TIME_MS + 5
    # An activity id longer than the bound: the commands are refused.
    output = shard.run(_completion(shard, tokens["a"], run_id, activity(LONG_ID)))
    assert isinstance(output.result, ActivityTaskCompletedResult)
    assert not output.result.workflow_task_completed
    info = output.result.workflow_task
    assert info is not None and shard.execution(run_id).workflow_task is not None
    assert [e.event_type for e in output.events] == [
        "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
        "WorkflowTaskStarted"]


def test_a_retry_after_a_lost_answer_gets_the_first_answer() -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    shard.now_ms = WORKER_TIME_MS + 5
    command = _completion(shard, tokens["a"], run_id, activity("b"), eager_max=1)
    first = shard.run(command).result
    assert isinstance(first, ActivityTaskCompletedResult) and first.workflow_task_completed
    assert len(first.activity_tasks) == 1
    shard.now_ms += 100
    again = shard.run(replace(command, now_ms=shard.now_ms)).result
    # The same answer, without the events written: the worker's next task carries them.
    assert first.events and again == replace(first, events=())
    stranger = shard.run_unchanged(replace(command, now_ms=shard.now_ms, identity="worker-9"))
    assert stranger.code == ErrorCode.STALE_TASK


def test_no_fold_without_the_eager_task() -> None:
    shard = Shard()
    run_id, tokens = _with_activity_running(shard, "a")
    shard.now_ms = WORKER_TIME_MS + 5
    command = replace(_completion(shard, tokens["a"], run_id, activity("b")), eager_task_queue="")
    output = shard.run(command)
    assert not isinstance(output.result, Rejected)
    assert not getattr(output.result, "workflow_task_completed", False)
    assert shard.execution(run_id).workflow_task is not None


def test_an_accepted_update_in_flight_is_completed_by_a_folded_task() -> None:
    """An update the worker accepted earlier, whose handler waits for the activity, ends in
    the folded task; one not yet delivered always has a task pending, so it refuses the fold
    (the history_moved_on case above)."""
    shard = Shard()
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    token = shard.poll_activity(run_id, "a").token
    shard.run(RequestWorkflowUpdate(now_ms=shard.now_ms, namespace=NAMESPACE, workflow_id="wf",
                                    update_id="u1", name="set", input=b'["v"]'))
    task = shard.poll_workflow_task(run_id)
    assert [u.update_id for u in task.updates] == ["u1"]
    shard.run(RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=task.token,
                                           update_responses=(WorkflowUpdateResponse(
                                               update_id="u1"),), identity="worker-1"))
    execution = shard.execution(run_id)
    assert execution.workflow_task is None and execution.updates["u1"].accepted
    shard.now_ms = WORKER_TIME_MS + 5
    output = shard.run(_completion(shard, token, run_id,
                                   CompleteWorkflowUpdate(update_id="u1", result=b'"done"')))
    assert isinstance(output.result, ActivityTaskCompletedResult)
    assert output.result.workflow_task_completed
    assert [e.event_type for e in output.events][-2:] == [
        "WorkflowTaskCompleted", "WorkflowExecutionUpdateCompleted"]
    assert not shard.execution(run_id).updates
