"""Child workflows, the parent's side: starting a child from a workflow task, and the answer
of the child's shard.

Theory of operation (protocol/messages.py tells the trip; events_children.py the events). A
`StartChildWorkflowExecution` command writes `StartChildWorkflowExecutionInitiated`, records the
child in `Execution.children` and queues a `StartChildMessage` in the same commit. The child's
shard starts it idempotently by the message id (on_deliver.py) and answers with its run id, or
refuses (its id is taken under the reuse policy). The first answer writes
`ChildWorkflowExecutionStarted` or `StartChildWorkflowExecutionFailed`. The child's close comes
back as a message of its own (child_links.py, on_deliver.py); if it overtakes the start's
answer, it writes the Started event itself first, so a parent's history always has Started
before the close, and the late answer then writes nothing.
"""

from __future__ import annotations

from typing import Any

from raftflow.protocol.commands import IdReusePolicy, ParentClosePolicy, StartChildWorkflowExecution
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import EventAttributes
from raftflow.protocol.events_children import (
    ChildWorkflowExecutionCanceledEventAttributes,
    ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes,
    ChildWorkflowExecutionTimedOutEventAttributes,
    StartChildWorkflowExecutionFailedEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.messages import (
    ChildClosedMessage,
    MessageOutcome,
    OutboxEntry,
    StartChildMessage,
)
from raftflow.protocol.results import Rejected, WorkflowStatus
from raftflow.shards.core import limits, validate
from raftflow.shards.core.outbox_queue import do_queue
from raftflow.shards.core.state import ChildState, Execution, ShardState
from raftflow.shards.core.writes import Changes, do_append, do_deliver

_POLICIES = frozenset(p.value for p in IdReusePolicy)


def check_child(execution: Execution, where: str, command: StartChildWorkflowExecution,
                children_added: int) -> Rejected | None:
    """Refusals of one child start, given how many the same task started before it."""
    if command.namespace and command.namespace != execution.namespace:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT, field=f"{where}.namespace",
                        message="a child lives in its parent's namespace")
    rejected = validate.check_ids(**{f"{where}.workflow_id": command.workflow_id,
                                     f"{where}.workflow_type": command.workflow_type})
    if rejected is None and command.task_queue:
        rejected = validate.check_id(f"{where}.task_queue", command.task_queue)
    rejected = rejected or validate.check_payload(f"{where}.input", command.input)
    for name in ("execution_timeout_ms", "run_timeout_ms"):
        rejected = rejected or validate.check_duration(f"{where}.{name}", getattr(command, name))
    timeout_ms = command.task_timeout_ms
    if rejected is None and timeout_ms is not None and not (
            1 <= timeout_ms <= limits.WORKFLOW_TASK_TIMEOUT_MS_MAX):
        rejected = Rejected(code=ErrorCode.INVALID_ARGUMENT, field=f"{where}.task_timeout_ms",
                            message="task_timeout_ms must be in [1, WORKFLOW_TASK_TIMEOUT_MS_MAX"
                                    f"={limits.WORKFLOW_TASK_TIMEOUT_MS_MAX}]")
    if rejected is None and command.id_reuse_policy and command.id_reuse_policy not in _POLICIES:
        rejected = Rejected(code=ErrorCode.INVALID_ARGUMENT, field=f"{where}.id_reuse_policy",
                            message=f"id_reuse_policy must be one of {sorted(_POLICIES)}")
    if rejected is None and command.retry_policy is not None:
        rejected = validate.check_retry_policy(f"{where}.retry_policy", command.retry_policy)
    if rejected is None and (command.workflow_id == execution.workflow_id):
        rejected = Rejected(code=ErrorCode.INVALID_ARGUMENT, field=f"{where}.workflow_id",
                            message="a child cannot have its parent's workflow id")
    if rejected is None and (len(execution.children) + children_added
                             > limits.PENDING_CHILDREN_PER_RUN_MAX):
        rejected = validate.limit_exceeded("PENDING_CHILDREN_PER_RUN_MAX",
                                           limits.PENDING_CHILDREN_PER_RUN_MAX)
    return rejected


def start_message(execution: Execution, command: StartChildWorkflowExecution) -> StartChildMessage:
    return StartChildMessage(
        namespace=execution.namespace, workflow_id=command.workflow_id,
        workflow_type=command.workflow_type, task_queue=command.task_queue or execution.task_queue,
        input=bytes(command.input), execution_timeout_ms=command.execution_timeout_ms,
        run_timeout_ms=command.run_timeout_ms,
        task_timeout_ms=command.task_timeout_ms or execution.task_timeout_ms,
        id_reuse_policy=command.id_reuse_policy or IdReusePolicy.ALLOW_DUPLICATE.value,
        parent_close_policy=command.parent_close_policy.value, retry_policy=command.retry_policy,
        traceparent=command.traceparent)


def do_start_child(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                   completed_id: int, command: StartChildWorkflowExecution) -> None:
    body = start_message(execution, command)
    event = do_append(execution, changes, now_ms, StartChildWorkflowExecutionInitiatedEventAttributes(
        namespace=body.namespace, workflow_id=body.workflow_id, workflow_type=body.workflow_type,
        task_queue=body.task_queue, input=body.input,
        execution_timeout_ms=body.execution_timeout_ms, run_timeout_ms=body.run_timeout_ms,
        task_timeout_ms=body.task_timeout_ms, id_reuse_policy=body.id_reuse_policy,
        parent_close_policy=body.parent_close_policy,
        workflow_task_completed_event_id=completed_id, retry_policy=body.retry_policy))
    execution.children[event.event_id] = ChildState(
        workflow_id=body.workflow_id, workflow_type=body.workflow_type,
        parent_close_policy=command.parent_close_policy.value)
    do_queue(state, execution, changes, now_ms, event.event_id, body)


def do_child_start_outcome(state: ShardState, parent: Execution, changes: Changes, now_ms: int,
                           entry: OutboxEntry, outcome: MessageOutcome) -> None:
    """The child's shard answered the start (the parent is open)."""
    initiated = entry.initiated_event_id
    child = parent.children.get(initiated)
    if child is None or child.run_id:
        return  # its close overtook this answer and wrote Started already (or it is gone)
    body = entry.body
    assert isinstance(body, StartChildMessage), body
    if outcome.error is None:
        do_child_started(state, parent, changes, now_ms, initiated, outcome.run_id)
        return
    del parent.children[initiated]
    cause = ("WorkflowAlreadyStarted" if outcome.error is ErrorCode.WORKFLOW_ALREADY_STARTED
             else outcome.error.value)
    do_deliver(state, parent, changes, now_ms, (StartChildWorkflowExecutionFailedEventAttributes(
        namespace=body.namespace, workflow_id=body.workflow_id, workflow_type=body.workflow_type,
        cause=cause, detail=outcome.detail, initiated_event_id=initiated),))


def do_child_started(state: ShardState, parent: Execution, changes: Changes, now_ms: int,
                     initiated: int, run_id: str) -> None:
    """Write ChildWorkflowExecutionStarted (the child is known, not started yet)."""
    child = parent.children[initiated]
    assert not child.run_id and run_id, (parent.run_id, initiated)
    child.run_id = run_id
    do_deliver(state, parent, changes, now_ms, (ChildWorkflowExecutionStartedEventAttributes(
        namespace=parent.namespace, workflow_id=child.workflow_id, run_id=run_id,
        workflow_type=child.workflow_type, initiated_event_id=initiated),))
    # Its id, for the close event to name: known now unless the event waits in the buffer.
    last = parent.history[-1] if parent.history else None
    child.started_event_id = (last.event_id if last is not None and isinstance(
        last.attributes, ChildWorkflowExecutionStartedEventAttributes)
        and last.attributes.initiated_event_id == initiated else 0)


def do_child_closed(state: ShardState, parent: Execution, changes: Changes, now_ms: int,
                    body: ChildClosedMessage) -> None:
    """A child's last run closed: write its close event (after its Started event, written here
    if the start's answer has not come back yet), and forget the child."""
    initiated = body.initiated_event_id
    if initiated not in parent.children:
        return  # the start failed, or the parent was reset: nobody waits for this child
    if not parent.children[initiated].run_id:
        do_child_started(state, parent, changes, now_ms, initiated, body.child_run_id)
    child = parent.children.pop(initiated)
    names = {"namespace": body.namespace, "workflow_id": body.child_workflow_id,
             "run_id": body.child_run_id, "workflow_type": body.child_workflow_type,
             "initiated_event_id": initiated, "started_event_id": child.started_event_id}
    do_deliver(state, parent, changes, now_ms, (_close_event(body, names),))


def _close_event(body: ChildClosedMessage, names: dict[str, Any]) -> EventAttributes:
    match WorkflowStatus(body.status):
        case WorkflowStatus.COMPLETED:
            return ChildWorkflowExecutionCompletedEventAttributes(result=body.result, **names)
        case WorkflowStatus.FAILED:
            return ChildWorkflowExecutionFailedEventAttributes(failure=body.failure, **names)
        case WorkflowStatus.CANCELED:
            return ChildWorkflowExecutionCanceledEventAttributes(details=body.result, **names)
        case WorkflowStatus.TIMED_OUT:
            return ChildWorkflowExecutionTimedOutEventAttributes(**names)
        case _:
            return ChildWorkflowExecutionTerminatedEventAttributes(**names)


assert {p.value for p in ParentClosePolicy} == {"terminate", "request_cancel", "abandon"}
