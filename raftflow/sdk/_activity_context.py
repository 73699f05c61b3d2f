"""The context of the running activity attempt, set by the worker, read by `activity.*`.

The worker builds one `ActivityContext` per attempt and runs the activity inside
`bind(context)` (a context variable, so it follows asyncio tasks and is copied into the thread
of a sync activity with `contextvars.copy_context().run`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityInfo:
    """What an activity attempt knows about itself (from the activity task)."""

    activity_id: str
    activity_type: str
    attempt: int
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    task_token: str
    # Details of the last heartbeat of a previous attempt (a JSON list), for resuming work.
    heartbeat_details: list[object] = field(default_factory=list)
    scheduled_time: datetime | None = None
    started_time: datetime | None = None
    start_to_close_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None


@dataclass(slots=True)
class ActivityContext:
    """One attempt's context. `heartbeat` is the worker's sender (it must not block: it
    records the details and lets a background loop send them); `cancel_requested` is set by
    the worker when a heartbeat answer says the workflow asked to cancel."""

    info: ActivityInfo
    heartbeat: Callable[[list[object]], None]
    cancel_requested: bool = False


_CURRENT: contextvars.ContextVar[ActivityContext] = contextvars.ContextVar(
    "raftflow_activity_context")


@contextmanager
def bind(context: ActivityContext) -> Iterator[ActivityContext]:
    """Make `context` the current activity context for the duration of the block."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def current() -> ActivityContext:
    """The running attempt's context; RuntimeError outside an activity."""
    context = _CURRENT.get(None)
    if context is None:
        raise RuntimeError("not in an activity: activity.info()/heartbeat() work only inside "
                           "an activity run by a raftflow Worker")
    return context
