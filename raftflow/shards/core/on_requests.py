"""Client requests on an existing workflow: signal, request cancel, terminate.

Theory of operation. Each carries a request id; a retry with the same id gets the first answer
(DESIGN §4 I5) from the shard's bounded request table. A signal or cancel request is delivered
like Temporal does: written to history (or buffered while a workflow task is started) and, if no
workflow task is pending, a new one is scheduled so the workflow sees it. Terminate closes the
run at once; a worker still holding a task for it will find its completion stale.
"""

from __future__ import annotations

from raftflow.protocol.commands import RequestCancelWorkflow, SignalWorkflow, TerminateWorkflow
from raftflow.protocol.events import (
    CLOSE_EVENT_TYPES,
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from raftflow.protocol.results import Ack, Rejected, WorkflowStatus
from raftflow.shards.core import validate
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import Execution, RequestKey, ShardState
from raftflow.shards.core.writes import Changes, do_close_run, do_deliver, do_remember


def resolve_run(state: ShardState, namespace: str, workflow_id: str,
                run_id: str | None) -> Execution | Rejected:
    """The run a request targets: the given run id, else the open run of the workflow id."""
    if run_id is not None:
        execution = state.find_run(run_id)
        if execution is None or execution.key != (namespace, workflow_id):
            return validate.not_found(f"run {run_id} of workflow {workflow_id} not found")
    else:
        execution = state.open_execution(namespace, workflow_id)
        if execution is None:
            if state.archive.latest_closed((namespace, workflow_id)) is not None:
                return validate.not_running(f"workflow {workflow_id} is closed")
            return validate.not_found(f"workflow {workflow_id} not found")
    if not execution.is_open:
        return validate.not_running(f"run {execution.run_id} is {execution.status.value}")
    assert state.open_runs[execution.key] == execution.run_id
    assert execution.history[-1].event_type not in CLOSE_EVENT_TYPES
    return execution


def _prelude(state: ShardState, key: RequestKey, run_id: str | None,
             extra: Rejected | None) -> Output | Execution:
    """Shared refusals: a remembered answer, bad arguments, no open target run."""
    previous = state.archive.recall(key)
    if previous is not None:
        return Output(result=previous)
    rejected = extra or validate.check_ids(workflow_id=key[2], request_id=key[3])
    if rejected is not None:
        return Output(result=rejected)
    target = resolve_run(state, key[1], key[2], run_id)
    if isinstance(target, Rejected):
        return Output(result=target)
    return target


def on_signal_workflow(state: ShardState, command: SignalWorkflow) -> Output:
    key = ("signal", command.namespace, command.workflow_id, command.request_id)
    extra = (validate.check_id("signal_name", command.signal_name)
             or validate.check_payload("input", command.input))
    target = _prelude(state, key, command.run_id, extra)
    if isinstance(target, Output):
        return target
    rejected = validate.history_room(target.history_length, len(target.buffered), 2)
    if rejected is not None:
        return Output(result=rejected)
    assert target.is_open
    changes = Changes()
    do_deliver(state, target, changes, command.now_ms, (WorkflowExecutionSignaledEventAttributes(
        signal_name=command.signal_name, input=command.input, request_id=command.request_id),))
    result = Ack()
    do_remember(state, key, result, command.now_ms)
    assert target.workflow_task is not None or target.awaiting_backoff
    return Output.of(result, changes)


def on_request_cancel_workflow(state: ShardState, command: RequestCancelWorkflow) -> Output:
    key = ("cancel", command.namespace, command.workflow_id, command.request_id)
    target = _prelude(state, key, command.run_id, None)
    if isinstance(target, Output):
        return target
    if target.cancel_requested:  # already requested: nothing new to tell the workflow
        do_remember(state, key, Ack(), command.now_ms)  # but a retry of this request must still get Ack (I5)
        return Output(result=Ack())
    rejected = validate.history_room(target.history_length, len(target.buffered), 2)
    if rejected is not None:
        return Output(result=rejected)
    assert target.is_open and not target.cancel_requested
    changes = Changes()
    target.cancel_requested = True
    do_deliver(state, target, changes, command.now_ms, (
        WorkflowExecutionCancelRequestedEventAttributes(cause=command.reason,
                                                        request_id=command.request_id),))
    result = Ack()
    do_remember(state, key, result, command.now_ms)
    assert (target.workflow_task is not None or target.awaiting_backoff) and target.cancel_requested
    return Output.of(result, changes)


def on_terminate_workflow(state: ShardState, command: TerminateWorkflow) -> Output:
    key = ("terminate", command.namespace, command.workflow_id, command.request_id)
    target = _prelude(state, key, command.run_id, None)
    if isinstance(target, Output):
        return target
    changes = Changes()
    do_close_run(state, target, changes, command.now_ms, (
        WorkflowStatus.TERMINATED, WorkflowExecutionTerminatedEventAttributes(
            reason=command.reason, request_id=command.request_id)))
    result = Ack()
    do_remember(state, key, result, command.now_ms)
    assert not target.is_open
    return Output.of(result, changes)
