"""Workflow retries (Temporal's workflow retry policy): a run that fails, or reaches its run
timeout, starts the chain's next attempt after a back-off.

Theory of operation. A start (client, child or schedule action) may carry a `RetryPolicy`; the
run keeps it (`Execution.retry_policy`), with its `attempt` (1 for a start). When such a run
fails (FailWorkflowExecution) or its run timeout fires, `do_fail_run` decides, with the same
rules as activity retries (retry.py): no further attempt when the failure is non-retryable
(its flag, or its type listed in the policy), the attempts are used up, or the back-off would
end at or past the chain's execution timeout (which bounds every attempt, as in Temporal).
Otherwise, in the same commit:
- the run closes as it would (WorkflowExecutionFailed / TimedOut, children told per their
  parent close policy) but names `new_execution_run_id`, and its parent or schedule is not
  told: like continue-as-new, the next attempt inherits that link and the chain's last run
  tells it;
- the next attempt opens at once under the same workflow id (so no other start can take the
  id meanwhile), attempt + 1, the failed run's input, type, queue, timeouts, search attributes
  and policy, `continued_execution_run_id` the failed run; its first workflow task waits for a
  `WORKFLOW_BACKOFF` timer (`awaiting_backoff`: signals, cancel requests and updates that arrive
  meanwhile are recorded, and the task that delivers them comes when the timer fires).
Cancel, terminate and the execution timeout never retry. Continue-as-new keeps the policy and
starts again at attempt 1. The next run id derives from the failed run id and the attempt, so
every replica picks the same (I2).
"""

from __future__ import annotations

import hashlib
import uuid

import msgspec

from raftflow.protocol.events import (
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
    WorkflowTimeoutType,
)
from raftflow.protocol.results import WorkflowStatus
from raftflow.shards.core import retry, run_history
from raftflow.shards.core.changes import Changes
from raftflow.shards.core.on_start import RunSpec, do_start_run
from raftflow.shards.core.state import Execution, ShardState, TimerKind
from raftflow.shards.core.writes import do_close_run, do_schedule_workflow_task

RunFailedAttributes = WorkflowExecutionFailedEventAttributes | WorkflowExecutionTimedOutEventAttributes


def retry_run_id(run_id: str, next_attempt: int) -> str:
    """The run id of the attempt after `run_id`: derived, so every replica picks the same."""
    digest = hashlib.sha256(f"{run_id}/retry/{next_attempt}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def next_attempt_backoff_ms(execution: Execution, close: RunFailedAttributes,
                            now_ms: int) -> int | None:
    """How long the next attempt's first task waits, or None when this close is final."""
    policy = execution.retry_policy
    if policy is None:
        return None
    if isinstance(close, WorkflowExecutionTimedOutEventAttributes):
        if close.timeout_type is not WorkflowTimeoutType.RUN:
            return None  # the execution timeout bounds the whole chain
    elif close.failure.non_retryable or close.failure.type in policy.non_retryable_error_types:
        return None
    if policy.maximum_attempts > 0 and execution.attempt >= policy.maximum_attempts:
        return None
    backoff_ms = retry.backoff_ms(policy, execution.attempt)
    expire_ms = execution.execution_expire_ms
    if expire_ms is not None and now_ms + backoff_ms >= expire_ms:
        return None
    assert backoff_ms >= 1
    return backoff_ms


def do_fail_run(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                close: RunFailedAttributes) -> None:
    """Close a run as failed or timed out, and start the chain's next attempt when its retry
    policy says so (the module docstring)."""
    assert execution.is_open and not close.new_execution_run_id
    status = (WorkflowStatus.FAILED if isinstance(close, WorkflowExecutionFailedEventAttributes)
              else WorkflowStatus.TIMED_OUT)
    backoff_ms = next_attempt_backoff_ms(execution, close, now_ms)
    new_run_id = "" if backoff_ms is None else retry_run_id(execution.run_id,
                                                            execution.attempt + 1)
    if backoff_ms is None or state.run_id_used(new_run_id):  # a collision: no retry, not a crash
        do_close_run(state, execution, changes, now_ms, (status, close))
        return
    started = run_history.event(state.archive, execution, 1).attributes
    assert isinstance(started, WorkflowExecutionStartedEventAttributes), started
    spec = RunSpec(
        namespace=execution.namespace, workflow_id=execution.workflow_id, run_id=new_run_id,
        workflow_type=execution.workflow_type, task_queue=execution.task_queue,
        input=bytes(started.input), request_id="", task_timeout_ms=execution.task_timeout_ms,
        run_timeout_ms=execution.run_timeout_ms,
        execution_timeout_ms=execution.execution_timeout_ms,
        execution_expire_ms=execution.execution_expire_ms,
        first_execution_run_id=execution.first_execution_run_id,
        continued_execution_run_id=execution.run_id,
        search_attributes=execution.search_attributes, retry_policy=execution.retry_policy,
        attempt=execution.attempt + 1, first_task_backoff_ms=backoff_ms,
        traceparent=started.traceparent)  # the next attempt stays in the starter's trace
    do_close_run(state, execution, changes, now_ms, (
        status, msgspec.structs.replace(close, new_execution_run_id=new_run_id)))
    new_run = do_start_run(state, changes, spec, now_ms)
    new_run.parent = execution.parent  # the chain's last attempt tells the parent or schedule
    assert new_run.awaiting_backoff and not execution.is_open


def do_end_backoff(state: ShardState, execution: Execution, changes: Changes,
                   now_ms: int) -> None:
    """The back-off timer fired: schedule the attempt's first workflow task, which delivers
    whatever arrived meanwhile."""
    assert execution.awaiting_backoff and execution.workflow_task is None, execution.run_id
    execution.awaiting_backoff = False
    do_schedule_workflow_task(state, execution, changes, now_ms, attempt=1)
    assert (execution.run_id, TimerKind.WORKFLOW_BACKOFF, 0) not in state.timers  # fired once
