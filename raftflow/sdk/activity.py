"""Activity authoring: `@activity.defn`, and inside an activity `info()` and `heartbeat()`.

Activities are plain functions, `async def` (run on the worker's event loop) or `def` (run in
the worker's thread pool). They run at least once: make them idempotent. Input is the JSON list
of positional arguments given to `workflow.execute_activity`; the return value must be JSON.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from raftflow.sdk._activity_context import ActivityInfo, current

__all__ = ["ActivityDefinition", "ActivityInfo", "defn", "definition_of", "heartbeat", "info",
           "is_cancelled"]

CallableT = TypeVar("CallableT", bound=Callable[..., Any])

_ATTRIBUTE = "__raftflow_activity__"


@dataclass(frozen=True, slots=True)
class ActivityDefinition:
    """What the worker needs to run an activity: its type name, the function, sync or async."""

    name: str
    fn: Callable[..., Any]
    is_async: bool


@overload
def defn(fn: CallableT, /) -> CallableT: ...
@overload
def defn(*, name: str | None = None) -> Callable[[CallableT], CallableT]: ...
def defn(fn: CallableT | None = None, /, *,
         name: str | None = None) -> CallableT | Callable[[CallableT], CallableT]:
    """Mark a function as an activity; its type name is `name` or the function's name."""

    def mark(target: CallableT) -> CallableT:
        if not callable(target):
            raise TypeError(f"@activity.defn needs a function, got {target!r}")
        definition = ActivityDefinition(name=name or target.__name__, fn=target,
                                        is_async=inspect.iscoroutinefunction(target))
        setattr(target, _ATTRIBUTE, definition)
        return target

    return mark if fn is None else mark(fn)


def definition_of(fn: Callable[..., Any]) -> ActivityDefinition:
    """The definition `@activity.defn` attached; TypeError for an undecorated function."""
    definition = getattr(fn, _ATTRIBUTE, None)
    if not isinstance(definition, ActivityDefinition):
        raise TypeError(f"{fn!r} is not an activity: decorate it with @activity.defn")
    return definition


def info() -> ActivityInfo:
    """The running attempt's info (attempt number, ids, previous heartbeat details)."""
    return current().info


def heartbeat(*details: object) -> None:
    """Report progress; `details` (JSON values) reach the next attempt as
    `info().heartbeat_details` if this one fails. Never blocks."""
    current().heartbeat(list(details))


def is_cancelled() -> bool:
    """True once the workflow asked to cancel this activity (learned through heartbeats)."""
    return current().cancel_requested
