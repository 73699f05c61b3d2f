"""What a run's close tells the runs it is linked to: its parent (the child closed) and its
children (the parent close policy). Called by `writes.do_close_run`, in the close's commit.

Theory of operation. Both are messages in the shard's outbox (outbox_queue.py), so they are as
durable as the close event and delivered exactly once wherever the other run lives:
- a child whose last run closes (any close but continue-as-new, whose new run inherits the
  parent) queues a `ChildClosedMessage` to its parent run, id `{child run}/{close event}`;
- a parent closing (continue-as-new included, as in Temporal) applies each open child's
  parent close policy: TERMINATE queues a `TerminateMessage`, REQUEST_CANCEL a
  `CancelMessage`, id `{parent run}/{initiated event}/parent-closed`; ABANDON nothing.
These are server-driven (a close cannot be refused), so they are bounded by the runs' own
limits (PENDING_CHILDREN_PER_RUN_MAX), not by the outbox's, which bounds what tasks send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftflow.protocol.commands import ParentClosePolicy
from raftflow.protocol.events import (
    EventAttributes,
    WorkflowExecutionCanceledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
)
from raftflow.protocol.messages import (
    CancelMessage,
    ChildClosedMessage,
    ScheduleActionClosedMessage,
    TerminateMessage,
)
from raftflow.protocol.results import WorkflowStatus
from raftflow.shards.core.outbox_queue import do_queue

if TYPE_CHECKING:
    from raftflow.shards.core.changes import Changes
    from raftflow.shards.core.runs import Execution
    from raftflow.shards.core.state import ShardState

PARENT_CLOSED = "parent-closed"


def _retried(close: EventAttributes) -> bool:
    """The close started the chain's next attempt (workflow_retry.py)."""
    return (isinstance(close, (WorkflowExecutionFailedEventAttributes,
                               WorkflowExecutionTimedOutEventAttributes))
            and bool(close.new_execution_run_id))


def do_tell_links(state: ShardState, execution: Execution, changes: Changes, now_ms: int,
                  status: WorkflowStatus, close: EventAttributes, close_event_id: int) -> None:
    for initiated, child in execution.children.items():
        body: TerminateMessage | CancelMessage
        reason = f"parent {execution.workflow_id} ({execution.run_id}) closed: {status.value}"
        if child.parent_close_policy == ParentClosePolicy.TERMINATE:
            body = TerminateMessage(namespace=execution.namespace, workflow_id=child.workflow_id,
                                    run_id=child.run_id, reason=reason)
        elif child.parent_close_policy == ParentClosePolicy.REQUEST_CANCEL:
            body = CancelMessage(namespace=execution.namespace, workflow_id=child.workflow_id,
                                 run_id=child.run_id, reason=reason)
        else:
            continue
        do_queue(state, execution, changes, now_ms, initiated, body, suffix=PARENT_CLOSED)
    execution.children.clear()
    parent = execution.parent
    if parent is None or status is WorkflowStatus.CONTINUED_AS_NEW or _retried(close):
        return  # the chain's next run inherits the link, and its last run tells
    if parent.schedule_id:
        do_queue(state, execution, changes, now_ms, close_event_id, ScheduleActionClosedMessage(
            namespace=parent.namespace, workflow_id=parent.schedule_id,
            action_workflow_id=execution.workflow_id, action_run_id=parent.run_id,
            status=status.value))
        return
    result, failure = b"", None
    match close:
        case WorkflowExecutionCompletedEventAttributes():
            result = bytes(close.result)
        case WorkflowExecutionFailedEventAttributes():
            failure = close.failure
        case WorkflowExecutionCanceledEventAttributes():
            result = bytes(close.details)
        case _:
            pass
    do_queue(state, execution, changes, now_ms, close_event_id, ChildClosedMessage(
        namespace=parent.namespace, workflow_id=parent.workflow_id, run_id=parent.run_id,
        initiated_event_id=parent.initiated_event_id, child_workflow_id=execution.workflow_id,
        child_run_id=execution.run_id, child_workflow_type=execution.workflow_type,
        status=status.value, result=result, failure=failure))

