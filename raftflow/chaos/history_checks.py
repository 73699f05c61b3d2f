"""Well-formedness of one run's history, as the engine writes it (Temporal's event model).

Facts of the engine these rules rely on (raftflow/shards/core):
- event ids run 1..n with no gap; event 1 is WorkflowExecutionStarted;
- a closed run ends with exactly one close event; an open run has none;
- ActivityTaskStarted is written when the activity closes (as in Temporal), once, carrying the
  attempt that closed it; retried attempts in between leave no events. So every scheduled
  activity has at most one Started and at most one close event, both after its Scheduled;
- TimerFired refers to its TimerStarted and fires it once.
Pure: takes the JSON event list, returns human-readable problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

CLOSE_EVENTS = frozenset({
    "WorkflowExecutionCompleted", "WorkflowExecutionFailed", "WorkflowExecutionCanceled",
    "WorkflowExecutionTerminated", "WorkflowExecutionTimedOut",
    "WorkflowExecutionContinuedAsNew"})
ACTIVITY_CLOSES = frozenset({"ActivityTaskCompleted", "ActivityTaskFailed",
                             "ActivityTaskTimedOut", "ActivityTaskCanceled"})
ACTIVITY_REFERRERS = ACTIVITY_CLOSES | {"ActivityTaskStarted", "ActivityTaskCancelRequested"}
PROBLEMS_MAX = 5  # per history: the first few say enough


def history_problems(events: Sequence[dict[str, Any]], *, open_run: bool) -> list[str]:
    problems = _id_problems(events) + _close_problems(events, open_run=open_run)
    problems += _activity_problems(events) + _timer_problems(events)
    return problems[:PROBLEMS_MAX]


def _id_problems(events: Sequence[dict[str, Any]]) -> list[str]:
    ids = [e.get("event_id") for e in events]
    problems = [f"event id {i} appears {n} times" for i, n in Counter(ids).items() if n > 1]
    if ids != list(range(1, len(ids) + 1)):
        gap = next((k + 1 for k, i in enumerate(ids) if i != k + 1), None)
        problems.append(f"event ids are not 1..{len(ids)}: position {gap} holds "
                        f"{ids[gap - 1] if gap else None}")
    if not events or events[0].get("event_type") != "WorkflowExecutionStarted":
        first = events[0].get("event_type") if events else None
        problems.append(f"first event is {first}, not WorkflowExecutionStarted")
    return problems


def _close_problems(events: Sequence[dict[str, Any]], *, open_run: bool) -> list[str]:
    closes = [(k, e["event_type"]) for k, e in enumerate(events)
              if e.get("event_type") in CLOSE_EVENTS]
    if open_run:
        return [f"open run has close event {t} at event {k + 1}" for k, t in closes]
    if len(closes) != 1:
        return [f"closed run has {len(closes)} close events ({[t for _, t in closes]})"]
    position, kind = closes[0]
    if position != len(events) - 1:
        return [f"close event {kind} is event {position + 1} of {len(events)}, not the last"]
    return []


def _activity_problems(events: Sequence[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    scheduled: set[int] = set()
    started: Counter[int] = Counter()
    closed: Counter[int] = Counter()
    for event in events:
        kind, event_id = event.get("event_type"), event.get("event_id")
        if kind == "ActivityTaskScheduled" and isinstance(event_id, int):
            scheduled.add(event_id)
        elif kind in ACTIVITY_REFERRERS:
            ref = event.get("attributes", {}).get("scheduled_event_id")
            if ref not in scheduled:
                problems.append(f"{kind} (event {event_id}) refers to scheduled event {ref}, "
                                "which is not an earlier ActivityTaskScheduled")
                continue
            if kind == "ActivityTaskStarted":
                started[ref] += 1
            elif kind in ACTIVITY_CLOSES:
                closed[ref] += 1
    problems += [f"activity scheduled at event {ref} started {n} times"
                 for ref, n in started.items() if n > 1]
    problems += [f"activity scheduled at event {ref} closed {n} times"
                 for ref, n in closed.items() if n > 1]
    return problems


def _timer_problems(events: Sequence[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    started: set[int] = set()
    fired: Counter[int] = Counter()
    for event in events:
        kind, event_id = event.get("event_type"), event.get("event_id")
        if kind == "TimerStarted" and isinstance(event_id, int):
            started.add(event_id)
        elif kind == "TimerFired":
            ref = event.get("attributes", {}).get("started_event_id")
            if ref not in started:
                problems.append(f"TimerFired (event {event_id}) refers to {ref}, "
                                "which is not an earlier TimerStarted")
            else:
                fired[ref] += 1
    problems += [f"timer started at event {ref} fired {n} times"
                 for ref, n in fired.items() if n > 1]
    return problems
