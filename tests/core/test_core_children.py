"""Goal: child workflows through the outbox: a child starts once however often its start is
delivered, its close reaches the parent once and after its Started event (even when it
overtakes the start's answer), a taken id fails the start, and the parent close policy reaches
open children.

Method: a parent shard and a child shard (core_driver), the test playing the courier; the
invariants run after every command.
"""

from __future__ import annotations

import msgspec
import pytest

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    IdReusePolicy,
    ParentClosePolicy,
    StartChildWorkflowExecution,
)
from raftflow.protocol.events import EventType
from raftflow.protocol.messages import (
    AckMessages,
    CancelMessage,
    ChildClosedMessage,
    DeliverMessages,
    MessageOutcome,
    OutboxEntry,
    StartChildMessage,
    TerminateMessage,
)
from raftflow.protocol.results import MessagesDelivered, WorkflowStatus
from tests.core.core_driver import Shard


def _child(policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
           **fields: object) -> StartChildWorkflowExecution:
    return StartChildWorkflowExecution(workflow_id=str(fields.get("workflow_id", "kid")),
                                       workflow_type="Kid", input=b"[7]",
                                       parent_close_policy=policy,
                                       id_reuse_policy=str(fields.get("id_reuse_policy", "")))


def _only(shard: Shard) -> OutboxEntry:
    (entry,) = shard.state.outbox.values()
    return entry


def _deliver(shard: Shard, *entries: OutboxEntry) -> tuple[MessageOutcome, ...]:
    output = shard.run(DeliverMessages(now_ms=shard.now_ms, entries=entries))
    assert isinstance(output.result, MessagesDelivered), output.result
    return output.result.outcomes


def _ack(shard: Shard, outcomes: tuple[MessageOutcome, ...]) -> None:
    shard.run(AckMessages(now_ms=shard.now_ms, outcomes=outcomes))


def _started_child(policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
                   ) -> tuple[Shard, Shard, str, str]:
    """(parent shard, child shard, parent run, child run), the child started and acked."""
    parents, kids = Shard(), Shard()
    parent = parents.start("parent")
    parents.decide(parent, _child(policy))
    start = _only(parents)
    assert isinstance(start.body, StartChildMessage) and start.body.task_queue == "q"
    outcomes = _deliver(kids, start)
    assert outcomes[0].error is None and outcomes[0].run_id
    _ack(parents, outcomes)
    return parents, kids, parent, outcomes[0].run_id


def test_a_child_starts_once_and_its_result_reaches_the_parent_once() -> None:
    parents, kids, parent, kid = _started_child()
    types = parents.event_types(parent)
    assert types.count(EventType.CHILD_WORKFLOW_EXECUTION_STARTED) == 1
    child_run = kids.execution(kid)
    assert child_run.parent is not None and child_run.parent.run_id == parent
    assert kids.execution(kid).history[0].attributes.input == b"[7]"
    kids.decide(kid, CompleteWorkflowExecution(result=b'"done"'))
    notice = _only(kids)
    assert isinstance(notice.body, ChildClosedMessage) and notice.body.workflow_id == "parent"
    first = _deliver(parents, notice)
    again = _deliver(parents, notice)  # a re-send: no second event
    assert first == again and first[0].error is None
    completed = [e.attributes for e in parents.execution(parent).history
                 if e.event_type == EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED]
    assert len(completed) == 1 and completed[0].result == b'"done"'
    assert completed[0].run_id == kid and not parents.execution(parent).children
    _ack(kids, first)
    assert not kids.state.outbox


def test_a_start_delivered_again_names_the_same_child() -> None:
    parents, kids = Shard(), Shard()
    parent = parents.start("parent")
    parents.decide(parent, _child())
    start = _only(parents)
    first, second = _deliver(kids, start, start)
    assert first == second and len(kids.state.open_runs) == 1


def test_a_close_that_overtakes_the_start_answer_writes_started_first() -> None:
    parents, kids = Shard(), Shard()
    parent = parents.start("parent")
    parents.decide(parent, _child())
    start_outcomes = _deliver(kids, _only(parents))  # its answer is late
    kid = start_outcomes[0].run_id
    kids.decide(kid, FailWorkflowExecution(failure=Failure(message="boom")))
    _deliver(parents, _only(kids))
    _ack(parents, start_outcomes)  # the late answer writes nothing
    types = [t for t in parents.event_types(parent) if t.startswith("Child")]
    assert types == [EventType.CHILD_WORKFLOW_EXECUTION_STARTED,
                     EventType.CHILD_WORKFLOW_EXECUTION_FAILED]


def test_a_taken_child_id_fails_the_start() -> None:
    parents, kids = Shard(), Shard()
    kids.start("kid")  # someone else's run holds the id
    parent = parents.start("parent")
    parents.decide(parent, _child(id_reuse_policy=IdReusePolicy.REJECT_DUPLICATE.value))
    outcomes = _deliver(kids, _only(parents))
    _ack(parents, outcomes)
    failed = parents.execution(parent).history[-2].attributes
    assert failed.event_type == EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED
    assert failed.cause == "WorkflowAlreadyStarted" and not parents.execution(parent).children


@pytest.mark.parametrize(("policy", "body", "status"), [
    (ParentClosePolicy.TERMINATE, TerminateMessage, WorkflowStatus.TERMINATED),
    (ParentClosePolicy.REQUEST_CANCEL, CancelMessage, WorkflowStatus.RUNNING),
])
def test_the_parent_close_policy_reaches_an_open_child(
        policy: ParentClosePolicy, body: type, status: WorkflowStatus) -> None:
    parents, kids, parent, kid = _started_child(policy)
    parents.decide(parent, CompleteWorkflowExecution(result=b"1"))
    notice = _only(parents)
    assert isinstance(notice.body, body) and notice.message_id.endswith("/parent-closed")
    assert notice.body.run_id == kid
    _deliver(kids, notice)
    child = kids.execution(kid)
    assert child.status is status
    if policy is ParentClosePolicy.REQUEST_CANCEL:
        assert child.cancel_requested


def test_an_abandoned_child_is_left_alone() -> None:
    parents, _, parent, _ = _started_child(ParentClosePolicy.ABANDON)
    parents.decide(parent, CompleteWorkflowExecution(result=b"1"))
    assert not parents.state.outbox


def test_a_child_that_continues_as_new_tells_the_parent_only_at_its_end() -> None:
    from raftflow.protocol.commands import ContinueAsNewWorkflowExecution
    parents, kids, parent, kid = _started_child()
    kids.decide(kid, ContinueAsNewWorkflowExecution(input=b"[8]"))
    assert not kids.state.outbox
    (next_run,) = kids.state.executions
    assert kids.execution(next_run).parent is not None
    kids.decide(next_run, CompleteWorkflowExecution(result=b"2"))
    notice = _only(kids)
    assert isinstance(notice.body, ChildClosedMessage) and notice.body.child_run_id == next_run
    _deliver(parents, notice)
    assert EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED in parents.event_types(parent)


def test_a_parents_messages_reach_the_childs_current_run_and_no_one_elses_do() -> None:
    """A child retried (or continued as new) runs under a new run id; its parent's messages
    name the first one and reach the current one. A message of another sender naming the
    first run is refused: it keeps to the run it names."""
    from raftflow.protocol.commands import RetryPolicy, SignalExternalWorkflowExecution
    from raftflow.protocol.messages import SignalMessage
    parents, kids = Shard(), Shard()
    parent = parents.start("parent")
    start = msgspec.structs.replace(_child(), retry_policy=RetryPolicy(initial_interval_ms=10))
    parents.decide(parent, start)
    outcomes = _deliver(kids, _only(parents))
    _ack(parents, outcomes)
    first = outcomes[0].run_id
    kids.decide(first, FailWorkflowExecution(failure=Failure(message="once")))
    current = kids.state.open_runs[("default", "kid")]
    assert current != first and kids.execution(current).first_execution_run_id == first
    parents.wake(parent)
    parents.decide(parent, SignalExternalWorkflowExecution(workflow_id="kid", run_id=first,
                                                           signal_name="poke"))
    signal = _only(parents)
    stranger = msgspec.structs.replace(signal, message_id="other/5", source_run_id="other",
                                       source_workflow_id="other")
    assert isinstance(signal.body, SignalMessage)
    (refused,) = _deliver(kids, stranger)
    assert refused.error is not None
    (delivered,) = _deliver(kids, signal)
    assert delivered.error is None
    assert EventType.WORKFLOW_EXECUTION_SIGNALED in kids.event_types(current)
    _ack(parents, (delivered,))
    parents.wake(parent)
    parents.decide(parent, CompleteWorkflowExecution(result=b"1"))
    notice = _only(parents)
    assert isinstance(notice.body, TerminateMessage) and notice.body.run_id == first
    _deliver(kids, notice)
    assert kids.execution(current).status is WorkflowStatus.TERMINATED
