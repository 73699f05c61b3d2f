"""Goal: a completion retried after its first attempt committed gets the eager task that first
attempt started, unchanged, instead of a bare stale_task that leaves the task started for
nobody until its timeout (found by the chaos harness: 10 s stalls after `loss` faults). Any
retry that is not exactly that stays refused. Neither answer changes state.

Method: the core driver shard; the same command object is applied twice (what an HTTP retry
with the same body does), and the state digest is compared before and after the retry.
"""

from __future__ import annotations

from msgspec.structs import replace

from raftflow.protocol.commands import (
    Command,
    CompleteWorkflowExecution,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.results import (
    ActivityTaskCompletedResult,
    Rejected,
    Result,
    WorkflowStartedResult,
    WorkflowTaskCompletedResult,
)
from raftflow.shards.core.digest import state_digest
from tests.core.core_driver import QUEUE, Shard, activity, start_command


def _read_only(shard: Shard, command: Command) -> Result:
    """Apply `command` and check it wrote nothing (only the applied index moves)."""
    shard.state.applied_index += 1
    before = state_digest(shard.state)
    shard.state.applied_index -= 1
    output = shard.run(command)
    assert not output.events and not output.effects, output
    assert state_digest(shard.state) == before
    return output.result


def _activity_completion(shard: Shard, **fields: object) -> tuple[str, Command, Result]:
    """A run with one started activity, completed with an eager workflow task request."""
    run_id = shard.start()
    shard.decide(run_id, activity("a"))
    token = shard.poll_activity(run_id, "a").token
    command = RespondActivityTaskCompleted(
        now_ms=shard.now_ms, token=token, result=b'"ok"', identity="worker-1",
        eager_task_queue=QUEUE, **fields)  # type: ignore[arg-type]
    return run_id, command, shard.run(command).result


def test_a_retried_activity_completion_gets_its_eager_workflow_task_again() -> None:
    shard = Shard()
    run_id, command, first = _activity_completion(shard)
    assert isinstance(first, ActivityTaskCompletedResult) and first.workflow_task is not None
    again = _read_only(shard, command)
    assert again == first
    assert shard.event_types(run_id).count("ActivityTaskCompleted") == 1


def test_a_retried_activity_completion_of_another_worker_queue_or_without_eager_is_stale(
) -> None:
    shard = Shard()
    _, command, first = _activity_completion(shard)
    assert isinstance(first, ActivityTaskCompletedResult)
    assert isinstance(command, RespondActivityTaskCompleted)
    # Another queue: the first attempt would not have started the task for it (found by the
    # hypothesis machine).
    for retry in (replace(command, identity="worker-9"), replace(command, eager_task_queue=""),
                  replace(command, eager_task_queue="other")):
        refused = _read_only(shard, retry)
        assert isinstance(refused, Rejected) and refused.code is ErrorCode.STALE_TASK


def test_once_the_eager_task_was_answered_a_retry_is_stale() -> None:
    shard = Shard()
    _, command, first = _activity_completion(shard)
    assert isinstance(first, ActivityTaskCompletedResult) and first.workflow_task is not None
    done = shard.complete_task(first.workflow_task.token, CompleteWorkflowExecution())
    assert not isinstance(done.result, Rejected)
    refused = _read_only(shard, command)
    assert isinstance(refused, Rejected) and refused.code is ErrorCode.STALE_TASK


def _workflow_task_completion(shard: Shard) -> tuple[str, Command, Result]:
    run_id = shard.start()
    task = shard.poll_workflow_task(run_id)
    command = RespondWorkflowTaskCompleted(
        now_ms=shard.now_ms, token=task.token, identity="worker-1",
        commands=(activity("a1"), activity("a2"), activity("a3", task_queue="elsewhere")),
        eager_task_queue=QUEUE, eager_activities_max=16)
    return run_id, command, shard.run(command).result


def test_a_retried_workflow_task_completion_gets_its_eager_activities_again() -> None:
    shard = Shard()
    run_id, command, first = _workflow_task_completion(shard)
    assert isinstance(first, WorkflowTaskCompletedResult) and len(first.activity_tasks) == 2
    again = _read_only(shard, command)
    assert again == first
    assert shard.event_types(run_id).count("WorkflowTaskCompleted") == 1


def test_a_retry_gets_only_the_eager_activities_still_running_their_first_attempt() -> None:
    shard = Shard()
    _, command, first = _workflow_task_completion(shard)
    assert isinstance(first, WorkflowTaskCompletedResult)
    a1, a2 = first.activity_tasks
    assert not isinstance(shard.complete_activity(a1.token).result, Rejected)
    again = _read_only(shard, command)
    assert isinstance(again, WorkflowTaskCompletedResult) and again.activity_tasks == (a2,)
    assert not isinstance(shard.fail_activity(a2.token).result, Rejected)  # retried: attempt 2
    refused = _read_only(shard, command)
    assert isinstance(refused, Rejected) and refused.code is ErrorCode.STALE_TASK


def test_a_retried_workflow_task_completion_of_another_worker_attempt_or_queue_is_stale(
) -> None:
    shard = Shard()
    _, command, first = _workflow_task_completion(shard)
    assert isinstance(first, WorkflowTaskCompletedResult)
    assert isinstance(command, RespondWorkflowTaskCompleted)
    other_attempt = replace(command, token=replace(command.token, attempt=2))
    for retry in (replace(command, identity="worker-9"), replace(command, eager_task_queue=""),
                  other_attempt, replace(command, eager_task_queue="elsewhere")):
        refused = _read_only(shard, retry)
        assert isinstance(refused, Rejected) and refused.code is ErrorCode.STALE_TASK


def test_a_retried_eager_start_gets_its_started_task_again_until_it_completes() -> None:
    """The same stall for eager starts (found by the drain benchmark): a start whose answer
    was lost to a leadership hand-off is retried; the retry got the remembered answer, which
    held no task, and the first workflow task waited 10 s for its timeout."""
    shard = Shard()
    command = start_command("eager-wf", now_ms=shard.now_ms, eager_task_queue=QUEUE,
                            eager_identity="worker-1")
    first = shard.run(command).result
    assert isinstance(first, WorkflowStartedResult) and first.workflow_task is not None
    again = _read_only(shard, command)
    assert again == first
    # Another caller's retry (other identity, other queue) is not the first attempt's.
    for other in (replace(command, eager_identity="worker-2"),
                  replace(command, eager_task_queue="other-q")):
        answer = _read_only(shard, other)
        assert isinstance(answer, WorkflowStartedResult) and answer.workflow_task is None
    shard.complete_task(first.workflow_task.token, CompleteWorkflowExecution(result=b"1"))
    done = _read_only(shard, command)
    assert isinstance(done, WorkflowStartedResult) and done.workflow_task is None
    assert done.run_id == first.run_id
