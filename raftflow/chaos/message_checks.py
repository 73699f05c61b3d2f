"""The chaos invariant `messages_exactly_once`: every outbox message took effect exactly once.

Theory of operation (protocol/messages.py). A workflow that signals another writes
`SignalExternalWorkflowExecutionInitiated` (event e of run r); the message's id is `r/e`; the
target's `WorkflowExecutionSignaled` carries that id as its `request_id`; the source gets one
outcome event naming e. So, over every history the harness collected:
- each message id is applied at most once, and exactly once when its source recorded
  `ExternalWorkflowExecutionSignaled` (nothing lost), never when it recorded a failure other
  than `DeliveryTimedOut` (whose effect is unknown by definition);
- each initiating event has at most one outcome, and a COMPLETED source one for each (the
  workload awaits every signal it sends);
- no target holds a message id whose source run was collected without that initiating event
  (a phantom);
- at quiescence no replica's outbox holds a message (every one was delivered and acknowledged).
Pure, like checker.py; it reads the decoded histories the checker built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from raftflow.chaos.history_checks import EvidenceEvent
from raftflow.chaos.observations import ReplicaDigest, RunRecord, Violation
from raftflow.protocol.events import (
    EventType,
    HistoryEvent,
    WorkflowExecutionSignaledEventAttributes,
)
from raftflow.protocol.events_external import (
    ExternalFailedCause,
    ExternalWorkflowExecutionSignaledEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
)

NAME = "messages_exactly_once"
DESCRIPTION = ("every outbox message (a signal from workflow code) takes effect exactly once "
               "and leaves one outcome in its sender; outboxes drain")

Outcome = (ExternalWorkflowExecutionSignaledEventAttributes
           | SignalExternalWorkflowExecutionFailedEventAttributes)
RunEvents = tuple[RunRecord, Sequence[EvidenceEvent]]


def message_problems(runs: Iterable[RunEvents],
                     digests: Iterable[ReplicaDigest]) -> Iterator[Violation]:
    runs = list(runs)
    applied: Counter[str] = Counter()
    for _, events in runs:
        applied.update(e.attributes.request_id for e in _typed(events)
                       if isinstance(e.attributes, WorkflowExecutionSignaledEventAttributes)
                       and "/" in e.attributes.request_id)
    initiated_ids: set[str] = set()
    collected_runs = {record.run_id for record, _ in runs}
    for record, events in runs:
        yield from _source_problems(record, list(_typed(events)), applied, initiated_ids)
    for message_id, count in sorted(applied.items()):
        source_run = message_id.split("/", 1)[0]
        if source_run in collected_runs and message_id not in initiated_ids:
            yield _violation(source_run, message_id, f"applied {count} time(s) but its source "
                             f"run {source_run} has no such initiating event")
    for digest in digests:
        if digest.outbox_messages:
            yield Violation(invariant=NAME, subject=f"shard {digest.shard}", detail=(
                f"{digest.node}'s replica still holds {digest.outbox_messages} outbox "
                "message(s) at quiescence, expected all delivered and acknowledged"))


def _source_problems(record: RunRecord, events: list[HistoryEvent], applied: Counter[str],
                     initiated_ids: set[str]) -> Iterator[Violation]:
    outcomes: dict[int, list[Outcome]] = {}
    for event in events:
        if isinstance(event.attributes, Outcome):
            outcomes.setdefault(event.attributes.initiated_event_id, []).append(event.attributes)
    subject = f"{record.workflow_id}/{record.run_id}"
    for event in events:
        if event.event_type != EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
            continue
        message_id = f"{record.run_id}/{event.event_id}"
        initiated_ids.add(message_id)
        found = outcomes.get(event.event_id, [])
        count = applied.get(message_id, 0)
        if len(found) > 1:
            yield _violation(subject, message_id, f"{len(found)} outcome events, expected one")
        if not found:
            if record.status == "COMPLETED":
                yield _violation(subject, message_id, "the sender completed without its outcome")
            if count > 1:
                yield _violation(subject, message_id, f"applied {count} times, expected at most once")
            continue
        outcome = found[0]
        if isinstance(outcome, ExternalWorkflowExecutionSignaledEventAttributes):
            if count != 1:
                yield _violation(subject, message_id, f"the sender saw it delivered, the target "
                                 f"applied it {count} times, expected once")
        elif outcome.cause == ExternalFailedCause.DELIVERY_TIMED_OUT:
            if count > 1:
                yield _violation(subject, message_id, f"applied {count} times, expected at most once")
        elif count:
            yield _violation(subject, message_id, f"the sender saw it fail ({outcome.cause}) "
                                         f"but the target applied it {count} time(s)")


def _typed(events: Sequence[EvidenceEvent]) -> Iterator[HistoryEvent]:
    return (e for e in events if isinstance(e, HistoryEvent))


def _violation(subject: str, message_id: str, detail: str) -> Violation:
    return Violation(invariant=NAME, subject=subject, detail=f"message {message_id}: {detail}")
