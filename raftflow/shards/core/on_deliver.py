"""The target side of messages from other workflows: `DeliverMessages`.

Theory of operation (protocol/messages.py tells the whole trip). Each entry is decided on its
own, in order, and a refusal of one never holds back the others. A message takes effect like
the client request it stands for (a signal, a cancel request; on_requests.py), with its message
id as the request id, remembered under its own kind (`message`, so that no client request id
can shadow it) for REQUEST_IDS_RETENTION_MS: the same id delivered again, by a retry, a new
source leader, or a duplicate in flight, answers "delivered" and writes nothing (exactly-once
effect). Refusals (no such workflow, not running, history full) are final outcomes and are not
remembered, as for a client's signal: nothing took effect, so a later delivery may.
"""

from __future__ import annotations

import hashlib

from raftflow.protocol.commands import IdReusePolicy, StartWorkflow
from raftflow.protocol.effects import ArmTimer
from raftflow.protocol.events import (
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from raftflow.protocol.messages import (
    CancelMessage,
    ChildClosedMessage,
    DeliverMessages,
    MessageOutcome,
    OutboxEntry,
    ScheduleActionClosedMessage,
    ScheduleStartMessage,
    SignalMessage,
    StartChildMessage,
    TerminateMessage,
)
from raftflow.protocol.results import (
    Ack,
    MessagesDelivered,
    Rejected,
    WorkflowStartedResult,
    WorkflowStatus,
)
from raftflow.shards.core import limits, validate
from raftflow.shards.core.children import do_child_closed
from raftflow.shards.core.on_requests import resolve_run
from raftflow.shards.core.on_start import on_start_workflow
from raftflow.shards.core.output import Output
from raftflow.shards.core.schedule_actions import action_run_id, on_action_closed
from raftflow.shards.core.state import Execution, ParentRef, RequestKey, ShardState
from raftflow.shards.core.writes import Changes, do_close_run, do_deliver, do_remember

MESSAGE_KIND = "message"


def on_deliver_messages(state: ShardState, command: DeliverMessages) -> Output:
    if len(command.entries) > limits.MESSAGES_PER_DELIVERY_MAX:
        return Output(result=validate.limit_exceeded("MESSAGES_PER_DELIVERY_MAX",
                                                     limits.MESSAGES_PER_DELIVERY_MAX))
    changes = Changes()
    outcomes = tuple(_deliver_one(state, changes, command.now_ms, entry)
                     for entry in command.entries)
    assert len(outcomes) == len(command.entries)
    return Output.of(MessagesDelivered(outcomes=outcomes), changes)


def _refused(entry: OutboxEntry, rejected: Rejected) -> MessageOutcome:
    return MessageOutcome(message_id=entry.message_id, error=rejected.code,
                          detail=rejected.message)


def _deliver_one(state: ShardState, changes: Changes, now_ms: int,
                 entry: OutboxEntry) -> MessageOutcome:
    body = entry.body
    key = (MESSAGE_KIND, body.namespace, body.workflow_id, entry.message_id)
    previous = state.archive.recall(key)
    if previous is not None:  # took effect at an earlier delivery
        run_id = previous.run_id if isinstance(previous, WorkflowStartedResult) else ""
        return MessageOutcome(message_id=entry.message_id, run_id=run_id)
    rejected = entry_problem(entry)
    if rejected is not None:  # a message no outbox of this release writes: refused, not applied
        return _refused(entry, rejected)
    if isinstance(body, StartChildMessage):
        return _start_child(state, changes, now_ms, entry, body, key)
    if isinstance(body, ScheduleStartMessage):
        return _start_action(state, changes, now_ms, entry, body, key)
    if isinstance(body, ScheduleActionClosedMessage):
        on_action_closed(state, changes, now_ms, body)
        do_remember(state, key, Ack(), now_ms)
        return MessageOutcome(message_id=entry.message_id)
    target = resolve_run(state, body.namespace, body.workflow_id, body.run_id or None)
    if isinstance(target, Rejected) and body.run_id:
        target = _childs_current_run(state, entry, body.workflow_id, body.run_id) or target
    if isinstance(target, Rejected):
        return _refused(entry, target)
    match body:
        case SignalMessage():
            rejected = validate.history_room(target.history_length, len(target.buffered), 2)
            if rejected is not None:
                return _refused(entry, rejected)
            do_deliver(state, target, changes, now_ms, (WorkflowExecutionSignaledEventAttributes(
                signal_name=body.signal_name, input=body.input, request_id=entry.message_id),))
        case CancelMessage() if not target.cancel_requested:  # else nothing new to tell it
            rejected = validate.history_room(target.history_length, len(target.buffered), 2)
            if rejected is not None:
                return _refused(entry, rejected)
            target.cancel_requested = True
            do_deliver(state, target, changes, now_ms, (
                WorkflowExecutionCancelRequestedEventAttributes(cause=body.reason,
                                                                request_id=entry.message_id),))
        case TerminateMessage():
            do_close_run(state, target, changes, now_ms, (
                WorkflowStatus.TERMINATED, WorkflowExecutionTerminatedEventAttributes(
                    reason=body.reason, request_id=entry.message_id)))
        case ChildClosedMessage():
            do_child_closed(state, target, changes, now_ms, body)
        case _:
            pass
    do_remember(state, key, Ack(), now_ms)
    return MessageOutcome(message_id=entry.message_id)


def _childs_current_run(state: ShardState, entry: OutboxEntry, workflow_id: str,
                        first_run_id: str) -> Execution | None:
    """A parent's message to its child names the child's first run (the one its
    ChildWorkflowExecutionStarted recorded); it reaches the child's current run, after any
    continue-as-new or retry, as in Temporal (a signal through the child handle, the parent
    close policy). Another sender's message keeps to the exact run it names."""
    execution = state.open_execution(entry.body.namespace, workflow_id)
    if execution is None or execution.first_execution_run_id != first_run_id:
        return None
    parent = execution.parent
    if parent is None or parent.schedule_id or (
            parent.namespace, parent.workflow_id, parent.run_id) != (
            entry.source_namespace, entry.source_workflow_id, entry.source_run_id):
        return None
    return execution


def entry_problem(entry: OutboxEntry) -> Rejected | None:
    """A message's fields out of bounds. Outboxes write only valid messages, but a delivery
    also arrives over the internal route, and applying must never fail on what a command
    carries (a replica that raises stops): so every field is checked before use."""
    body = entry.body
    rejected = (validate.check_ids(message_id=entry.message_id, namespace=body.namespace,
                                   workflow_id=body.workflow_id)
                or validate.check_optional_id("run_id", getattr(body, "run_id", "")))
    match body:
        case SignalMessage():
            rejected = (rejected or validate.check_id("signal_name", body.signal_name)
                        or validate.check_payload("input", body.input))
        case CancelMessage() | TerminateMessage():
            rejected = rejected or validate.check_payload("reason", body.reason.encode())
        case StartChildMessage():
            if body.id_reuse_policy not in _REUSE_POLICIES:
                rejected = rejected or validate.invalid("id_reuse_policy", "unknown policy")
        case ChildClosedMessage():
            rejected = rejected or validate.check_ids(
                child_workflow_id=body.child_workflow_id, child_run_id=body.child_run_id)
            if body.status not in _CLOSED_STATUSES or body.initiated_event_id < 1:
                rejected = rejected or validate.invalid("status", "not a closed run's status")
            rejected = rejected or validate.check_payload("result", body.result)
            if body.failure is not None:
                rejected = rejected or validate.check_failure("failure", body.failure)
    return rejected


_REUSE_POLICIES = frozenset(p.value for p in IdReusePolicy)
_CLOSED_STATUSES = frozenset(s.value for s in WorkflowStatus if s not in (
    WorkflowStatus.RUNNING, WorkflowStatus.CONTINUED_AS_NEW))


def child_run_id(message_id: str) -> str:
    """A child's first run id, derived from its start message's id: every replica derives the
    same, and a re-delivered start names the same run."""
    return hashlib.sha256(f"child/{message_id}".encode()).hexdigest()[:32]


def _start_child(state: ShardState, changes: Changes, now_ms: int, entry: OutboxEntry,
                 body: StartChildMessage, key: RequestKey) -> MessageOutcome:
    """Start the child as a client's start would (reuse policy, limits), idempotent by the
    message id (its request id), and link it to its parent."""
    run_id = child_run_id(entry.message_id)
    output = on_start_workflow(state, StartWorkflow(
        now_ms=now_ms, namespace=body.namespace, workflow_id=body.workflow_id,
        workflow_type=body.workflow_type, task_queue=body.task_queue, input=body.input,
        request_id=entry.message_id, run_id=run_id,
        id_reuse_policy=IdReusePolicy(body.id_reuse_policy),
        execution_timeout_ms=body.execution_timeout_ms, run_timeout_ms=body.run_timeout_ms,
        task_timeout_ms=body.task_timeout_ms, retry_policy=body.retry_policy,
        traceparent=body.traceparent))
    result = output.result
    if isinstance(result, Rejected):
        return _refused(entry, result)
    assert isinstance(result, WorkflowStartedResult), result
    if output.events:  # opened now (not an answer remembered from an earlier delivery)
        child = state.executions[result.run_id]
        child.parent = ParentRef(namespace=entry.source_namespace,
                                 workflow_id=entry.source_workflow_id,
                                 run_id=entry.source_run_id,
                                 initiated_event_id=entry.initiated_event_id)
        _merge(changes, output)
    do_remember(state, key, result, now_ms)
    return MessageOutcome(message_id=entry.message_id, run_id=result.run_id)


def _start_action(state: ShardState, changes: Changes, now_ms: int, entry: OutboxEntry,
                  body: ScheduleStartMessage, key: RequestKey) -> MessageOutcome:
    """Start a schedule's action as a client's start would, idempotent by the message id, with
    the run id derived from it, and link the run to its schedule (schedule_actions.py)."""
    output = on_start_workflow(state, StartWorkflow(
        now_ms=now_ms, namespace=body.namespace, workflow_id=body.workflow_id,
        workflow_type=body.workflow_type, task_queue=body.task_queue, input=body.input,
        request_id=entry.message_id, run_id=action_run_id(entry.message_id),
        execution_timeout_ms=body.execution_timeout_ms, run_timeout_ms=body.run_timeout_ms,
        task_timeout_ms=body.task_timeout_ms, search_attributes=dict(body.search_attributes),
        retry_policy=body.retry_policy))
    result = output.result
    if isinstance(result, Rejected):
        return _refused(entry, result)
    assert isinstance(result, WorkflowStartedResult), result
    if output.events:  # opened now (not an answer remembered from an earlier delivery)
        run = state.executions[result.run_id]
        run.parent = ParentRef(namespace=body.namespace, workflow_id=body.schedule_id,
                               run_id=result.run_id, initiated_event_id=0,
                               schedule_id=body.schedule_id)
        _merge(changes, output)
    do_remember(state, key, result, now_ms)
    return MessageOutcome(message_id=entry.message_id, run_id=result.run_id)


def _merge(changes: Changes, output: Output) -> None:
    changes.events.extend(output.events)
    for effect in output.effects:
        if isinstance(effect, ArmTimer):
            if changes.armed_at_ms is None or effect.fire_at_ms < changes.armed_at_ms:
                changes.armed_at_ms = effect.fire_at_ms
        else:
            changes.effects.append(effect)
    changes.grown.extend(output.grown)
