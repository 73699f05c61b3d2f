"""Reading and checking one run's history, as the engine writes it (Temporal's event model).

Theory of operation. The harness records each history in the HTTP API's JSON shape (docs/api.md,
`raftflow.protocol.history_json.event_json`); the checker decodes it once, at its input, with
`decode_history`, and everything here works on the protocol's typed events (`HistoryEvent`,
one attributes struct per event type). This module holds everything that needs only one
history: `history_problems` says why it is malformed, and the readers (`signal_events`,
`activity_completions`, `continued_as_new_run_id`) pull out what the cross-evidence invariants
in `checker.py` compare with the clients' record. Pure.

Evidence is untrusted, so nothing here raises on a strange event. An event that does not
decode into the vocabulary (an id that is not an int, attributes of the wrong types, an unknown
event type) becomes an `UndecodableEvent` kept at its position: `history_problems` reports it
(a `history_well_formed` violation naming the run and the event), and every reader skips it.
A violation rather than an error, because the checker's answer is the list of every broken
invariant of a run that took minutes: one garbled event must neither lose that answer nor hide
a lost signal or a foreign token elsewhere in the same history.

Facts of the engine the rules rely on (raftflow/shards/core, DESIGN §4 I3):
- event ids are 1..n with no gap (`do_append` is the only place ids are assigned); event 1 is
  WorkflowExecutionStarted;
- a closed run ends with exactly one close event, which matches its status; an open run has
  none;
- retries write no history, and ActivityTaskStarted is written only when the activity closes
  (as in Temporal), carrying the attempt that closed it, immediately before its close event,
  whose `started_event_id` names it (0 when no attempt was running: a schedule-to-start or
  schedule-to-close timeout, or a cancel before start; on_activity.do_close_activity). So a
  scheduled activity has at most one Started event and at most one close event, nothing
  refers to it after its close, and a Started event always has the close event that names it;
- an activity may still be pending when its run closes (cancelled.json keeps one);
- TimerFired and TimerCanceled refer to an earlier TimerStarted, and a timer ends once.
Timestamps are not checked for order: buffered events keep the time they arrived, so a
signal can carry an earlier time than the event before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from raftflow.chaos.observations import JsonValue
from raftflow.protocol.events import (
    CLOSE_EVENT_TYPES,
    ActivityTaskCanceledEventAttributes,
    ActivityTaskCancelRequestedEventAttributes,
    ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes,
    ActivityTaskTimedOutEventAttributes,
    EventType,
    HistoryEvent,
    TimerCanceledEventAttributes,
    TimerFiredEventAttributes,
    TimerStartedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
)
from raftflow.protocol.history_json import event_from_json, payload_json

Pair = tuple[JsonValue, JsonValue]  # (sender, seq) as decoded; not trusted to be (str, int)

CLOSE_EVENT_OF_STATUS: dict[str, EventType] = {
    "COMPLETED": EventType.WORKFLOW_EXECUTION_COMPLETED,
    "FAILED": EventType.WORKFLOW_EXECUTION_FAILED,
    "CANCELED": EventType.WORKFLOW_EXECUTION_CANCELED,
    "TERMINATED": EventType.WORKFLOW_EXECUTION_TERMINATED,
    "TIMED_OUT": EventType.WORKFLOW_EXECUTION_TIMED_OUT,
    "CONTINUED_AS_NEW": EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW}
assert set(CLOSE_EVENT_OF_STATUS.values()) == CLOSE_EVENT_TYPES, "a status per close event"
OPEN_STATUS = "RUNNING"
# Per history: the first few problems say enough, and a report must stay readable when one
# broken history has thousands of events.
PROBLEMS_PER_HISTORY_MAX = 5
# A decoding error or a recorded value quoted in a problem: evidence can make it any length.
RECORDED_CHARS_MAX = 160


@dataclass(frozen=True, slots=True, kw_only=True)
class UndecodableEvent:
    """An event of the evidence that does not decode into the protocol's vocabulary.

    Kept at its position so positions and ids still line up; `event_id` and `event_type` are
    as recorded (anything JSON holds, None when the event is not even an object)."""

    event_id: JsonValue
    event_type: JsonValue
    error: str


EvidenceEvent = HistoryEvent | UndecodableEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalEvent:
    """A WorkflowExecutionSignaled event: `input` is the signal's args (a JSON list)."""

    event_id: int
    request_id: str | None
    input: JsonValue


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityCompletion:
    """An ActivityTaskCompleted event with the `activity_id` of the activity it closes
    (None when it names no ActivityTaskScheduled); `result` is the result's JSON value."""

    event_id: int
    activity_id: str | None
    result: JsonValue


def decode_history(bodies: Sequence[JsonValue]) -> tuple[EvidenceEvent, ...]:
    """A recorded history (the HTTP JSON of its events) as typed events, one per body, in
    order. Per event rather than `history_from_json`'s all or nothing, so one bad event does
    not hide the rest of the run from the checks."""
    return tuple(_decode_event(body) for body in bodies)


def _decode_event(body: JsonValue) -> EvidenceEvent:
    if not isinstance(body, Mapping):
        return UndecodableEvent(event_id=None, event_type=None,
                                error=f"a JSON {type(body).__name__}, not an object")
    try:
        return event_from_json(body)
    except msgspec.ValidationError as error:  # the evidence's fault, never the checker's
        text = str(error) or type(error).__name__
    return UndecodableEvent(event_id=body.get("event_id"), event_type=body.get("event_type"),
                            error=_cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= RECORDED_CHARS_MAX else text[:RECORDED_CHARS_MAX - 3] + "..."


def _decoded(events: Sequence[EvidenceEvent]) -> Iterator[HistoryEvent]:
    """The events that decoded, in order; `history_problems` reports the others."""
    return (event for event in events if isinstance(event, HistoryEvent))


def signal_events(events: Sequence[EvidenceEvent]) -> list[SignalEvent]:
    """The run's signals in history order (the order the workflow code receives them)."""
    found = []
    for event in _decoded(events):
        match event.attributes:
            case WorkflowExecutionSignaledEventAttributes(input=args, request_id=request_id):
                found.append(SignalEvent(event_id=event.event_id, input=payload_json(args),
                                         request_id=request_id or None))
    return found


def activity_completions(events: Sequence[EvidenceEvent]) -> list[ActivityCompletion]:
    activity_ids: dict[int, str] = {}  # ActivityTaskScheduled event id -> its activity id
    found = []
    for event in _decoded(events):
        match event.attributes:
            case ActivityTaskScheduledEventAttributes(activity_id=activity_id):
                activity_ids[event.event_id] = activity_id
            case ActivityTaskCompletedEventAttributes(scheduled_event_id=ref, result=result):
                found.append(ActivityCompletion(event_id=event.event_id,
                                                activity_id=activity_ids.get(ref),
                                                result=payload_json(result)))
    return found


def signal_pair(value: JsonValue) -> Pair | None:
    """A `[sender, seq]` as a hashable pair (odd parts as their repr), None if no pair."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    return (_scalar(value[0]), _scalar(value[1]))


def _scalar(value: JsonValue) -> JsonValue:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def order_problems(pairs: list[Pair]) -> list[str]:
    """Per sender, each seq at most once and strictly increasing."""
    problems = [f"signal {sender}#{seq} appears {n} times, expected at most once"
                for (sender, seq), n in Counter(pairs).items() if n > 1]
    last: dict[JsonValue, int] = {}
    for sender, seq in pairs:
        previous = last.get(sender)
        if not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(f"signal from {sender!r} has seq {seq!r}, expected an int")
        elif previous is not None and seq < previous:
            problems.append(f"signal {sender}#{seq} comes after {sender}#{previous}, "
                            "expected seqs increasing per sender")
        else:
            last[sender] = seq  # an equal seq is a repeat, reported above
    return problems[:PROBLEMS_PER_HISTORY_MAX]


def continued_as_new_run_id(events: Sequence[EvidenceEvent]) -> str | None:
    """The run this one continued as new into, if its last event says so."""
    if not events or not isinstance(events[-1], HistoryEvent):
        return None
    match events[-1].attributes:
        case WorkflowExecutionContinuedAsNewEventAttributes(new_execution_run_id=run_id):
            return run_id
    return None


def history_problems(events: Sequence[EvidenceEvent], *, status: str) -> list[str]:
    """Why this history is not one the engine can write (empty when it is well formed)."""
    problems = _decode_problems(events) + _id_problems(events)
    problems += _close_problems(events, status=status)
    problems += _activity_problems(events) + _timer_problems(events)
    return problems[:PROBLEMS_PER_HISTORY_MAX]


def _decode_problems(events: Sequence[EvidenceEvent]) -> list[str]:
    return [f"event at position {k} (event id {_cut(repr(e.event_id))}, "
            f"{_cut(repr(e.event_type))}) does not decode: {e.error}; expected an event of "
            "the protocol's vocabulary"
            for k, e in enumerate(events, start=1) if isinstance(e, UndecodableEvent)]


def _id_problems(events: Sequence[EvidenceEvent]) -> list[str]:
    counts = Counter(e.event_id for e in _decoded(events))
    problems = [f"event id {i} appears {n} times, expected once"
                for i, n in counts.items() if n > 1]
    # An undecodable event's id is as recorded: `type(...) is int` so True is not id 1.
    gap = next((k for k, e in enumerate(events, start=1)
                if type(e.event_id) is not int or e.event_id != k), None)
    if gap is not None:
        problems.append(f"event ids are not 1..{len(events)}: position {gap} holds event id "
                        f"{_cut(repr(events[gap - 1].event_id))}, expected {gap}")
    first = events[0].event_type if events else None
    if first != EventType.WORKFLOW_EXECUTION_STARTED:
        problems.append(f"first event is {_cut(str(first))}, expected "
                        f"{EventType.WORKFLOW_EXECUTION_STARTED}")
    return problems


def _close_problems(events: Sequence[EvidenceEvent], *, status: str) -> list[str]:
    closes = [(k, e.event_type) for k, e in enumerate(events, start=1)
              if isinstance(e, HistoryEvent) and e.event_type in CLOSE_EVENT_TYPES]
    if status == OPEN_STATUS:
        return [f"run is {OPEN_STATUS} but event {k} is close event {kind}, expected none"
                for k, kind in closes]
    if len(closes) != 1:
        return [f"run is {status} with {len(closes)} close events "
                f"({', '.join(kind for _, kind in closes[:3])}), expected exactly one"]
    position, kind = closes[0]
    problems = []
    if position != len(events):
        problems.append(f"close event {kind} is event {position} of {len(events)}, "
                        "expected it last")
    expected = CLOSE_EVENT_OF_STATUS.get(status)
    if kind != expected:
        problems.append(f"run is {status} but closed by {kind}, expected {expected}")
    return problems


def _activity_problems(events: Sequence[EvidenceEvent]) -> list[str]:
    problems: list[str] = []
    scheduled: set[int] = set()
    started: dict[int, int] = {}  # scheduled event id -> its Started event id
    closed: dict[int, int] = {}  # scheduled event id -> its close event id
    for event in _decoded(events):
        kind, event_id, attributes = event.event_type, event.event_id, event.attributes
        named: int | None = None  # the started_event_id a close event names
        match attributes:
            case ActivityTaskScheduledEventAttributes():
                scheduled.add(event_id)
                continue
            case ActivityTaskStartedEventAttributes() | ActivityTaskCancelRequestedEventAttributes():
                ref = attributes.scheduled_event_id
            case (ActivityTaskCompletedEventAttributes() | ActivityTaskFailedEventAttributes()
                  | ActivityTaskTimedOutEventAttributes() | ActivityTaskCanceledEventAttributes()):
                ref, named = attributes.scheduled_event_id, attributes.started_event_id
            case _:
                continue
        if ref not in scheduled:
            problems.append(f"{kind} (event {event_id}) refers to scheduled event {ref!r}, "
                            "expected an earlier ActivityTaskScheduled")
        elif ref in closed:
            problems.append(f"{kind} (event {event_id}) for the activity scheduled at event "
                            f"{ref}, which already closed at event {closed[ref]}")
        elif isinstance(attributes, ActivityTaskStartedEventAttributes):
            if ref in started:
                problems.append(f"activity scheduled at event {ref} started at events "
                                f"{started[ref]} and {event_id}, expected at most once")
            started[ref] = event_id
        elif named is not None:
            closed[ref] = event_id
            if named != started.get(ref, 0):
                problems.append(f"{kind} (event {event_id}) has started_event_id {named!r}, "
                                f"expected {started.get(ref, 0)} (its ActivityTaskStarted, "
                                "or 0 when none)")
    problems += [f"ActivityTaskStarted (event {started_id}) for the activity scheduled at "
                 f"event {ref} has no close event, expected one right after it"
                 for ref, started_id in started.items() if ref not in closed]
    return problems


def _timer_problems(events: Sequence[EvidenceEvent]) -> list[str]:
    problems: list[str] = []
    started: set[int] = set()
    ended: dict[int, int] = {}  # TimerStarted event id -> its end event id
    for event in _decoded(events):
        kind, event_id = event.event_type, event.event_id
        match event.attributes:
            case TimerStartedEventAttributes():
                started.add(event_id)
                continue
            case TimerFiredEventAttributes(started_event_id=ref) | TimerCanceledEventAttributes(
                    started_event_id=ref):
                pass
            case _:
                continue
        if ref not in started:
            problems.append(f"{kind} (event {event_id}) refers to started event {ref!r}, "
                            "expected an earlier TimerStarted")
        elif ref in ended:
            problems.append(f"timer started at event {ref} ended at events {ended[ref]} "
                            f"and {event_id} ({kind}), expected once")
        else:
            ended[ref] = event_id
    return problems
