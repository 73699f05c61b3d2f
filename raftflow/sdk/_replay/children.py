"""Child workflow events applied to the run's child operations (runtime.Child).

`ChildWorkflowExecutionStarted` resolves the start (the handle learns its run id);
`StartChildWorkflowExecutionFailed` fails it (`WorkflowAlreadyStartedError`, as temporalio
raises from `start_child_workflow`); a close event resolves the result: the value, or a
`ChildWorkflowError` whose cause says how it ended.
"""

from __future__ import annotations

import asyncio

from raftflow.protocol.events_children import (
    ChildWorkflowExecutionCanceledEventAttributes,
    ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes,
    ChildWorkflowExecutionTimedOutEventAttributes,
    StartChildWorkflowExecutionFailedEventAttributes,
)
from raftflow.protocol.history_json import payload_json
from raftflow.sdk import errors
from raftflow.sdk._replay.runtime import Runtime

ChildEvent = (ChildWorkflowExecutionStartedEventAttributes
              | StartChildWorkflowExecutionFailedEventAttributes
              | ChildWorkflowExecutionCompletedEventAttributes
              | ChildWorkflowExecutionFailedEventAttributes
              | ChildWorkflowExecutionCanceledEventAttributes
              | ChildWorkflowExecutionTimedOutEventAttributes
              | ChildWorkflowExecutionTerminatedEventAttributes)


def apply_child_event(rt: Runtime, event: ChildEvent) -> None:
    op = rt.children.get(event.initiated_event_id)
    assert op is not None, f"{event.event_type} for unknown child {event.initiated_event_id}"
    assert op.started is not None and op.result is not None
    match event:
        case ChildWorkflowExecutionStartedEventAttributes():
            op.run_id = event.run_id
            if not op.started.done():
                op.started.set_result(event.run_id)
            return
        case StartChildWorkflowExecutionFailedEventAttributes():
            del rt.children[event.initiated_event_id]
            error = errors.WorkflowAlreadyStartedError(
                op.workflow_id, f"child workflow {op.workflow_id!r} not started: {event.cause}")
            if not op.started.done():
                op.started.set_exception(error)
            if not op.result.done():
                op.result.set_exception(error)
            return
        case ChildWorkflowExecutionCompletedEventAttributes():
            del rt.children[event.initiated_event_id]
            if not op.result.done():
                op.result.set_result(payload_json(event.result))
            return
        case ChildWorkflowExecutionFailedEventAttributes():
            cause: BaseException = errors.from_failure(event.failure)
        case ChildWorkflowExecutionCanceledEventAttributes():
            cause = asyncio.CancelledError()
        case ChildWorkflowExecutionTimedOutEventAttributes():
            cause = errors.TimeoutError("child workflow timed out", timeout_type="StartToClose")
        case ChildWorkflowExecutionTerminatedEventAttributes():
            cause = errors.TerminatedError("child workflow terminated")
    del rt.children[event.initiated_event_id]
    if not op.result.done():
        op.result.set_exception(errors.ChildWorkflowError(
            f"child workflow {op.workflow_type} ({op.workflow_id}) failed: {cause!r}",
            cause=cause, workflow_id=op.workflow_id, run_id=op.run_id,
            workflow_type=op.workflow_type))
