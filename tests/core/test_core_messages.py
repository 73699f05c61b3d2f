"""Goal: messages between workflows (the outbox) take effect exactly once on the target and
leave exactly one outcome in the source run, whatever is repeated, reordered or late.

Method: two pure shards (source and target) driven by core_driver; the test plays the courier
(DeliverMessages to the target, AckMessages back), repeating and reordering its steps; the
invariants run after every command. Refusals are checked to change nothing (digest).
"""

from __future__ import annotations

import pytest

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    RequestCancelExternalWorkflowExecution,
    ResetType,
    ResetWorkflow,
    RespondWorkflowTaskCompleted,
    SignalExternalWorkflowExecution,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.effects import ArmTimer, MessageQueued
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import EventType
from raftflow.protocol.messages import (
    AckMessages,
    ChildClosedMessage,
    DeliverMessages,
    MessageBody,
    MessageOutcome,
    OutboxEntry,
    SignalMessage,
    StartChildMessage,
    TerminateMessage,
)
from raftflow.protocol.results import Ack, MessagesDelivered, Rejected
from raftflow.shards.core import limits, pending_effects
from raftflow.shards.core.digest import state_digest
from tests.core.core_driver import Shard

SIGNAL = SignalExternalWorkflowExecution(workflow_id="inbox", signal_name="add", input=b'["x"]')


def _signaled(shard: Shard, run_id: str) -> list[str]:
    """Request ids of the run's WorkflowExecutionSignaled events (history and buffer)."""
    execution = shard.execution(run_id)
    attributes = [e.attributes for e in execution.history] + [
        b.attributes for b in execution.buffered]
    return [a.request_id for a in attributes
            if a.event_type == EventType.WORKFLOW_EXECUTION_SIGNALED]


def _deliver(target: Shard, entries: list[OutboxEntry]) -> tuple[MessageOutcome, ...]:
    output = target.run(DeliverMessages(now_ms=target.now_ms, entries=tuple(entries)))
    assert isinstance(output.result, MessagesDelivered), output.result
    return output.result.outcomes


def _ack(source: Shard, outcomes: tuple[MessageOutcome, ...]) -> None:
    output = source.run(AckMessages(now_ms=source.now_ms, outcomes=outcomes))
    assert isinstance(output.result, Ack), output.result


def _pair() -> tuple[Shard, Shard, str, str]:
    """A source run with its first task started and an inbox run on another shard."""
    source, target = Shard(), Shard()
    source_run = source.start("sender")
    inbox_run = target.start("inbox")
    return source, target, source_run, inbox_run


def test_a_signal_is_queued_with_its_initiated_event_and_its_effect() -> None:
    source, _, run_id, _ = _pair()
    output = source.decide(run_id, SIGNAL)
    assert source.event_types(run_id)[-1] == EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    initiated_id = source.execution(run_id).history_length
    message_id = f"{run_id}/{initiated_id}"
    assert list(source.state.outbox) == [message_id]
    assert source.state.outbox_bytes == len(b'["x"]')
    assert source.execution(run_id).pending_messages == 1
    assert MessageQueued(message_id=message_id, namespace="default",
                         workflow_id="inbox") in output.effects
    # The leader must wake up to give the message up at its horizon.
    arm = [e for e in output.effects if isinstance(e, ArmTimer)]
    assert arm and arm[0].fire_at_ms <= source.now_ms + limits.MESSAGE_RETRY_HORIZON_MS
    # A new leader re-derives the order from state.
    assert MessageQueued(message_id=message_id, namespace="default",
                         workflow_id="inbox") in pending_effects(source.state)


def test_delivery_then_ack_gives_one_signal_and_one_outcome_however_often_repeated() -> None:
    source, target, run_id, inbox_run = _pair()
    source.decide(run_id, SIGNAL)
    entry = next(iter(source.state.outbox.values()))
    first = _deliver(target, [entry])
    digest = state_digest(target.state)
    again = _deliver(target, [entry, entry])  # a re-send, and a duplicate in one batch
    assert first == (MessageOutcome(message_id=entry.message_id),)
    assert again == first * 2
    assert _signaled(target, inbox_run) == [entry.message_id]
    target.state.applied_index -= 1  # the digest differs only by the applied index
    assert state_digest(target.state) == digest
    target.state.applied_index += 1
    _ack(source, first)
    _ack(source, first)  # a duplicate ack is a no-op
    assert not source.state.outbox and source.state.outbox_bytes == 0
    types = source.event_types(run_id)
    assert types.count(EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED) == 1
    execution = source.execution(run_id)
    assert execution.pending_messages == 0 and execution.workflow_task is not None
    outcome = execution.history[-2].attributes  # the outcome, then the task it scheduled
    assert outcome.event_type == EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
    assert outcome.initiated_event_id == entry.initiated_event_id


def test_a_missing_target_fails_the_signal_and_is_not_remembered() -> None:
    source, target, run_id, _ = _pair()
    source.decide(run_id, SignalExternalWorkflowExecution(workflow_id="nobody",
                                                          signal_name="add"))
    entry = next(iter(source.state.outbox.values()))
    outcomes = _deliver(target, [entry])
    assert outcomes[0].error is ErrorCode.NOT_FOUND
    _ack(source, outcomes)
    failed = source.execution(run_id).history[-2].attributes
    assert failed.event_type == EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    assert failed.cause == "ExternalWorkflowExecutionNotFound"
    # Not remembered: the workflow started later, a re-send would take effect (once).
    target.start("nobody")
    assert _deliver(target, [entry])[0].error is None


def test_a_cancel_request_reaches_the_target_once() -> None:
    source, target, run_id, inbox_run = _pair()
    source.decide(run_id, RequestCancelExternalWorkflowExecution(workflow_id="inbox",
                                                                 reason="stop"))
    entry = next(iter(source.state.outbox.values()))
    outcomes = _deliver(target, [entry])
    _deliver(target, [entry])
    assert target.execution(inbox_run).cancel_requested
    assert target.event_types(inbox_run).count(
        EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED) == 1
    _ack(source, outcomes)
    assert EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED in source.event_types(run_id)


def test_a_closed_source_still_delivers_and_its_late_ack_writes_nothing() -> None:
    source, target, run_id, inbox_run = _pair()
    source.decide(run_id, SIGNAL, CompleteWorkflowExecution(result=b"1"))
    assert not source.execution(run_id).is_open and len(source.state.outbox) == 1
    entry = next(iter(source.state.outbox.values()))
    outcomes = _deliver(target, [entry])
    assert _signaled(target, inbox_run) == [entry.message_id]
    history = list(source.execution(run_id).history)
    _ack(source, outcomes)
    assert not source.state.outbox and source.execution(run_id).history == history


def test_a_message_without_answer_is_given_up_at_its_horizon() -> None:
    source, _, run_id, _ = _pair()
    source.decide(run_id, SIGNAL)
    source.advance(limits.MESSAGE_RETRY_HORIZON_MS - 1)
    assert len(source.state.outbox) == 1
    source.advance(1)
    assert not source.state.outbox
    failed = source.execution(run_id).history[-2].attributes
    assert failed.event_type == EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    assert failed.cause == "DeliveryTimedOut"


def test_messages_to_the_same_shard_work_the_same() -> None:
    shard = Shard()
    sender, inbox = shard.start("sender"), shard.start("inbox")
    shard.decide(sender, SIGNAL)
    entry = next(iter(shard.state.outbox.values()))
    outcomes = _deliver(shard, [entry])
    _ack(shard, outcomes)
    assert _signaled(shard, inbox) == [entry.message_id]
    assert EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED in shard.event_types(sender)


@pytest.mark.parametrize(("command", "field"), [
    (SignalExternalWorkflowExecution(namespace="other", workflow_id="x", signal_name="s"),
     "commands[0].namespace"),
    (SignalExternalWorkflowExecution(workflow_id="", signal_name="s"), "commands[0].workflow_id"),
    (SignalExternalWorkflowExecution(workflow_id="x", signal_name=""), "commands[0].signal_name"),
    (SignalExternalWorkflowExecution(workflow_id="x", signal_name="s",
                                     input=b"1" * (limits.PAYLOAD_BYTES_MAX + 1)),
     "commands[0].input"),
])
def test_a_bad_message_command_is_refused_and_changes_nothing(
        command: SignalExternalWorkflowExecution, field: str) -> None:
    shard = Shard()
    run_id = shard.start("sender")
    task = shard.poll_workflow_task(run_id)
    rejected = shard.run_unchanged(_completion(shard, task.token, command))
    assert rejected.field == field


def test_the_per_run_pending_limit_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "PENDING_MESSAGES_PER_RUN_MAX", 2)
    shard = Shard()
    run_id = shard.start("sender")
    task = shard.poll_workflow_task(run_id)
    rejected = shard.run_unchanged(_completion(shard, task.token, SIGNAL, SIGNAL, SIGNAL))
    assert rejected.field == "PENDING_MESSAGES_PER_RUN_MAX"
    output = shard.complete_task(task.token, SIGNAL, SIGNAL)
    assert not isinstance(output.result, Rejected)


def test_the_shard_outbox_bound_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "OUTBOX_MESSAGES_PER_SHARD_MAX", 2)
    shard = Shard()
    first = shard.start("a")
    shard.decide(first, SIGNAL, SIGNAL)
    second = shard.start("b")
    task = shard.poll_workflow_task(second)
    assert shard.run_unchanged(_completion(shard, task.token, SIGNAL)).field == (
        "OUTBOX_MESSAGES_PER_SHARD_MAX")


def test_oversized_batches_are_refused() -> None:
    shard = Shard()
    too_many = tuple(MessageOutcome(message_id=f"r/{i}") for i in range(
        limits.MESSAGES_PER_DELIVERY_MAX + 1))
    assert shard.run_unchanged(AckMessages(now_ms=1, outcomes=too_many)).field == (
        "MESSAGES_PER_DELIVERY_MAX")


def test_pending_effects_list_each_outbox_entry_once_in_queue_order() -> None:
    shard = Shard()
    run_id = shard.start("sender")
    shard.decide(run_id, SIGNAL, SignalExternalWorkflowExecution(workflow_id="other",
                                                                 signal_name="s"))
    queued = [e for e in pending_effects(shard.state) if isinstance(e, MessageQueued)]
    assert [e.message_id for e in queued] == list(shard.state.outbox)
    assert [e.workflow_id for e in queued] == ["inbox", "other"]


def _completion(shard: Shard, token: TaskToken,
                *commands: WorkflowCommand) -> RespondWorkflowTaskCompleted:
    return RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token, commands=commands,
                                        identity="w")


def test_a_reset_sends_the_copied_unanswered_messages_again_from_the_new_run() -> None:
    source, target, run_id, inbox_run = _pair()
    source.decide(run_id, SIGNAL)  # Initiated at event 5, no outcome yet
    source.wake(run_id)
    source.decide(run_id)  # a later completed task, so the reset copies event 5
    reset = ResetWorkflow(now_ms=source.now_ms, namespace="default", workflow_id="sender",
                          new_run_id="run-reset", reset_type=ResetType.LAST_WORKFLOW_TASK,
                          reason="test", request_id="reset-1")
    output = source.run(reset)
    assert not isinstance(output.result, Rejected), output.result
    assert sorted(source.state.outbox) == sorted([f"{run_id}/5", "run-reset/5"])
    assert source.execution("run-reset").pending_messages == 1
    # Both are delivered (the target sees two message ids); the new run gets its outcome.
    for entry in list(source.state.outbox.values()):
        _ack(source, _deliver(target, [entry]))
    assert len(_signaled(target, inbox_run)) == 2
    new_run = source.execution("run-reset")
    assert new_run.pending_messages == 0
    assert EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED in source.event_types("run-reset")


@pytest.mark.parametrize("body", [
    SignalMessage(namespace="default", workflow_id="inbox", signal_name=""),
    StartChildMessage(namespace="default", workflow_id="kid", workflow_type="K", task_queue="q",
                      task_timeout_ms=10, id_reuse_policy="sometimes"),
    StartChildMessage(namespace="default", workflow_id="kid", workflow_type="K", task_queue="q",
                      task_timeout_ms=-1),
    ChildClosedMessage(namespace="default", workflow_id="inbox", run_id="x",
                       initiated_event_id=5, child_workflow_id="k", child_run_id="k",
                       child_workflow_type="K", status="sleeping"),
    TerminateMessage(namespace="default", workflow_id="", reason="r"),
])
def test_a_malformed_delivery_is_refused_not_applied(body: MessageBody) -> None:
    """The internal route takes any body: applying must refuse, never raise (a replica that
    raises on a committed command stops)."""
    shard = Shard()
    shard.start("inbox")
    entry = OutboxEntry(message_id="m/1", created_ms=1, source_namespace="default",
                        source_workflow_id="s", source_run_id="m", initiated_event_id=1,
                        body=body)
    shard.state.applied_index += 1
    before = state_digest(shard.state)
    shard.state.applied_index -= 1
    (outcome,) = _deliver(shard, [entry])
    assert outcome.error is not None
    assert state_digest(shard.state) == before
