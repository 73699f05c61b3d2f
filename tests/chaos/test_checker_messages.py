"""Goal: the chaos invariant `messages_exactly_once` names every way an outbox message can go
wrong (lost, applied twice, applied after a failure, two outcomes, no outcome in a completed
sender, a phantom, an undrained outbox) and nothing in clean evidence.

Method: a sender run and an inbox run built from typed events, doctored one way per test, fed
to `message_checks.message_problems`; plus one pass through `checker.check` on the clean world
of checker_evidence, to show the invariant is registered and quiet there.
"""

from __future__ import annotations

import pytest

from raftflow.chaos import checker, message_checks
from raftflow.chaos.history_checks import EvidenceEvent
from raftflow.chaos.observations import ReplicaDigest, RunRecord
from raftflow.protocol.events import (
    EventAttributes,
    HistoryEvent,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from raftflow.protocol.events_external import (
    ExternalWorkflowExecutionSignaledEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
)
from tests.chaos.checker_evidence import _world

SENDER_RUN = "run-s"
INITIATED = 2  # the sender's initiating event id in these histories
MESSAGE = f"{SENDER_RUN}/{INITIATED}"


def _events(*attributes: EventAttributes) -> list[EvidenceEvent]:
    return [HistoryEvent(event_id=i, time_ms=i, attributes=a)
            for i, a in enumerate(attributes, start=1)]


def _record(workflow_id: str, run_id: str, status: str) -> RunRecord:
    return RunRecord(workflow_id=workflow_id, run_id=run_id, status=status, result=None,
                     pending_activity_count=0, pending_timer_count=0,
                     pending_workflow_task=False, history=())


STARTED = WorkflowExecutionStartedEventAttributes(workflow_type="W")
INITIATE = SignalExternalWorkflowExecutionInitiatedEventAttributes(workflow_id="inbox",
                                                                   signal_name="deliver")
DELIVERED = ExternalWorkflowExecutionSignaledEventAttributes(initiated_event_id=INITIATED,
                                                             workflow_id="inbox")
NOT_FOUND = SignalExternalWorkflowExecutionFailedEventAttributes(
    initiated_event_id=INITIATED, cause="ExternalWorkflowExecutionNotFound")
TIMED_OUT = SignalExternalWorkflowExecutionFailedEventAttributes(
    initiated_event_id=INITIATED, cause="DeliveryTimedOut")
APPLIED = WorkflowExecutionSignaledEventAttributes(signal_name="deliver", request_id=MESSAGE)


def _problems(sender: list[EventAttributes], inbox: list[EventAttributes], *,
              status: str = "COMPLETED", outbox: int = 0) -> list[str]:
    runs = [(_record("sender", SENDER_RUN, status), _events(STARTED, *sender)),
            (_record("inbox", "run-i", "COMPLETED"), _events(STARTED, *inbox))]
    digests = [ReplicaDigest(shard=1, node="node-1", applied_index=9, digest="d",
                             outbox_messages=outbox)]
    return [v.detail for v in message_checks.message_problems(runs, digests)]


def test_a_message_delivered_once_with_its_outcome_is_clean() -> None:
    assert _problems([INITIATE, DELIVERED], [APPLIED]) == []


def test_a_failed_message_applied_nowhere_is_clean_and_a_timed_out_one_may_be_either() -> None:
    assert _problems([INITIATE, NOT_FOUND], []) == []
    assert _problems([INITIATE, TIMED_OUT], []) == []
    assert _problems([INITIATE, TIMED_OUT], [APPLIED]) == []


@pytest.mark.parametrize(("sender", "inbox", "status", "expected"), [
    ([INITIATE, DELIVERED], [], "COMPLETED", "applied it 0 times"),
    ([INITIATE, DELIVERED], [APPLIED, APPLIED], "COMPLETED", "applied it 2 times"),
    ([INITIATE, NOT_FOUND], [APPLIED], "COMPLETED", "saw it fail"),
    ([INITIATE, DELIVERED, DELIVERED], [APPLIED], "COMPLETED", "2 outcome events"),
    ([INITIATE], [APPLIED], "COMPLETED", "completed without its outcome"),
    ([INITIATE], [APPLIED, APPLIED], "RUNNING", "applied 2 times"),
    ([], [APPLIED], "COMPLETED", "no such initiating event"),
])
def test_each_broken_message_is_named(sender: list[EventAttributes],
                                      inbox: list[EventAttributes], status: str,
                                      expected: str) -> None:
    problems = _problems(sender, inbox, status=status)
    assert problems and all(MESSAGE in p for p in problems), problems
    assert any(expected in p for p in problems), problems


def test_an_open_sender_without_outcome_yet_is_clean() -> None:
    assert _problems([INITIATE], [APPLIED], status="RUNNING") == []
    assert _problems([INITIATE], [], status="RUNNING") == []


def test_an_outbox_not_drained_at_quiescence_is_named() -> None:
    problems = _problems([INITIATE, DELIVERED], [APPLIED], outbox=3)
    assert problems == ["node-1's replica still holds 3 outbox message(s) at quiescence, "
                        "expected all delivered and acknowledged"]


def test_the_invariant_is_registered_and_quiet_on_clean_evidence() -> None:
    assert message_checks.NAME in dict(checker.INVARIANTS)
    violations = checker.check(_world())
    assert not [v for v in violations if v.invariant == message_checks.NAME]
    assert checker.invariant_counts(violations)[message_checks.NAME] == 0
