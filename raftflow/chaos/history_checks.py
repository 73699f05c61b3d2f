"""Reading and checking one run's history, as the engine writes it (Temporal's event model).

Theory of operation. The checker gets each history in the HTTP API's JSON shape (a list of
`{"event_id", "event_type", "timestamp", "attributes"}`, see docs/api.md and
`raftflow.api.render.event_json`). This module holds everything that needs only one history:
`history_problems` says why it is malformed, and the readers (`signal_events`,
`activity_completions`, `close_event`) pull out what the cross-evidence invariants in
`checker.py` compare with the clients' record. Pure; evidence is untrusted, so nothing here
raises on a strange event: it is reported or skipped.

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
from collections.abc import Sequence
from dataclasses import dataclass

from raftflow.chaos.observations import JsonValue

Event = dict[str, JsonValue]
Pair = tuple[JsonValue, JsonValue]  # (sender, seq) as decoded; not trusted to be (str, int)

CLOSE_EVENT_OF_STATUS: dict[str, str] = {
    "COMPLETED": "WorkflowExecutionCompleted", "FAILED": "WorkflowExecutionFailed",
    "CANCELED": "WorkflowExecutionCanceled", "TERMINATED": "WorkflowExecutionTerminated",
    "TIMED_OUT": "WorkflowExecutionTimedOut",
    "CONTINUED_AS_NEW": "WorkflowExecutionContinuedAsNew"}
CLOSE_EVENTS = frozenset(CLOSE_EVENT_OF_STATUS.values())
OPEN_STATUS = "RUNNING"
ACTIVITY_CLOSES = frozenset({"ActivityTaskCompleted", "ActivityTaskFailed",
                             "ActivityTaskTimedOut", "ActivityTaskCanceled"})
ACTIVITY_REFERRERS = ACTIVITY_CLOSES | {"ActivityTaskStarted", "ActivityTaskCancelRequested"}
TIMER_ENDS = frozenset({"TimerFired", "TimerCanceled"})
# Per history: the first few problems say enough, and a report must stay readable when one
# broken history has thousands of events.
PROBLEMS_PER_HISTORY_MAX = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalEvent:
    """A WorkflowExecutionSignaled event: `input` is the signal's args (a JSON list)."""

    event_id: JsonValue
    request_id: str | None
    input: JsonValue


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityCompletion:
    """An ActivityTaskCompleted event with the `activity_id` of the activity it closes
    (None when it names no ActivityTaskScheduled)."""

    event_id: JsonValue
    activity_id: str | None
    result: JsonValue


def event_id_of(value: JsonValue) -> int | None:
    """An event id or a reference to one; None for anything else (evidence is untrusted and
    an id that is a list or a bool must not crash the checker or pass for a number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def attributes_of(event: Event) -> dict[str, JsonValue]:
    attributes = event.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def signal_events(events: Sequence[Event]) -> list[SignalEvent]:
    """The run's signals in history order (the order the workflow code receives them)."""
    found = []
    for event in events:
        if event.get("event_type") == "WorkflowExecutionSignaled":
            attributes = attributes_of(event)
            request_id = attributes.get("request_id")
            found.append(SignalEvent(
                event_id=event.get("event_id"), input=attributes.get("input"),
                request_id=request_id if isinstance(request_id, str) and request_id else None))
    return found


def activity_completions(events: Sequence[Event]) -> list[ActivityCompletion]:
    activity_ids: dict[int | None, str] = {}
    found = []
    for event in events:
        kind, attributes = event.get("event_type"), attributes_of(event)
        if kind == "ActivityTaskScheduled":
            activity_ids[event_id_of(event.get("event_id"))] = str(attributes.get("activity_id"))
        elif kind == "ActivityTaskCompleted":
            found.append(ActivityCompletion(
                event_id=event.get("event_id"), result=attributes.get("result"),
                activity_id=activity_ids.get(event_id_of(attributes.get("scheduled_event_id")))))
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


def close_event(events: Sequence[Event]) -> Event | None:
    """The last event if it closes the run."""
    if events and events[-1].get("event_type") in CLOSE_EVENTS:
        return events[-1]
    return None


def history_problems(events: Sequence[Event], *, status: str) -> list[str]:
    """Why this history is not one the engine can write (empty when it is well formed)."""
    problems = _id_problems(events) + _close_problems(events, status=status)
    problems += _activity_problems(events) + _timer_problems(events)
    return problems[:PROBLEMS_PER_HISTORY_MAX]


def _id_problems(events: Sequence[Event]) -> list[str]:
    ids = [event_id_of(e.get("event_id")) for e in events]
    problems = [f"event id {i} appears {n} times, expected once"
                for i, n in Counter(ids).items() if n > 1 and i is not None]
    gap = next((k for k, i in enumerate(ids, start=1) if i != k), None)
    if gap is not None:
        problems.append(f"event ids are not 1..{len(ids)}: position {gap} holds event id "
                        f"{events[gap - 1].get('event_id')!r}, expected {gap}")
    first = events[0].get("event_type") if events else None
    if first != "WorkflowExecutionStarted":
        problems.append(f"first event is {first}, expected WorkflowExecutionStarted")
    return problems


def _close_problems(events: Sequence[Event], *, status: str) -> list[str]:
    closes = [(k, e.get("event_type")) for k, e in enumerate(events, start=1)
              if e.get("event_type") in CLOSE_EVENTS]
    if status == OPEN_STATUS:
        return [f"run is {OPEN_STATUS} but event {k} is close event {kind}, expected none"
                for k, kind in closes]
    if len(closes) != 1:
        return [f"run is {status} with {len(closes)} close events "
                f"({', '.join(str(kind) for _, kind in closes[:3])}), expected exactly one"]
    position, kind = closes[0]
    problems = []
    if position != len(events):
        problems.append(f"close event {kind} is event {position} of {len(events)}, "
                        "expected it last")
    expected = CLOSE_EVENT_OF_STATUS.get(status)
    if kind != expected:
        problems.append(f"run is {status} but closed by {kind}, expected {expected}")
    return problems


def _activity_problems(events: Sequence[Event]) -> list[str]:
    problems: list[str] = []
    scheduled: set[int | None] = set()
    started: dict[int | None, int | None] = {}  # scheduled event id -> its Started event id
    closed: dict[int | None, int | None] = {}  # scheduled event id -> its close event id
    for event in events:
        kind, event_id = event.get("event_type"), event_id_of(event.get("event_id"))
        attributes = attributes_of(event)
        ref = event_id_of(attributes.get("scheduled_event_id"))
        if kind == "ActivityTaskScheduled":
            scheduled.add(event_id)  # None too: the id check reports it, refs cannot match
        elif kind not in ACTIVITY_REFERRERS:
            continue
        elif ref is None or ref not in scheduled:
            problems.append(f"{kind} (event {event_id}) refers to scheduled event {ref!r}, "
                            "expected an earlier ActivityTaskScheduled")
        elif ref in closed:
            problems.append(f"{kind} (event {event_id}) for the activity scheduled at event "
                            f"{ref}, which already closed at event {closed[ref]}")
        elif kind == "ActivityTaskStarted":
            if ref in started:
                problems.append(f"activity scheduled at event {ref} started at events "
                                f"{started[ref]} and {event_id}, expected at most once")
            started[ref] = event_id
        elif kind in ACTIVITY_CLOSES:
            closed[ref] = event_id
            named = attributes.get("started_event_id")
            if named != started.get(ref, 0):
                problems.append(f"{kind} (event {event_id}) has started_event_id {named!r}, "
                                f"expected {started.get(ref, 0)} (its ActivityTaskStarted, "
                                "or 0 when none)")
    problems += [f"ActivityTaskStarted (event {started_id}) for the activity scheduled at "
                 f"event {ref} has no close event, expected one right after it"
                 for ref, started_id in started.items() if ref not in closed]
    return problems


def _timer_problems(events: Sequence[Event]) -> list[str]:
    problems: list[str] = []
    started: set[int | None] = set()
    ended: dict[int | None, int | None] = {}  # TimerStarted event id -> its end event id
    for event in events:
        kind, event_id = event.get("event_type"), event_id_of(event.get("event_id"))
        ref = event_id_of(attributes_of(event).get("started_event_id"))
        if kind == "TimerStarted":
            started.add(event_id)
        elif kind not in TIMER_ENDS:
            continue
        elif ref is None or ref not in started:
            problems.append(f"{kind} (event {event_id}) refers to started event {ref!r}, "
                            "expected an earlier TimerStarted")
        elif ref in ended:
            problems.append(f"timer started at event {ref} ended at events {ended[ref]} "
                            f"and {event_id} ({kind}), expected once")
        else:
            ended[ref] = event_id
    return problems
