"""Schedule types of the client, with temporalio's names and argument names, so a program using
`temporalio.client.Schedule*` ports by changing its imports:

    await client.create_schedule("daily-report", Schedule(
        action=ScheduleActionStartWorkflow(Report.run, "eu", id="report", task_queue="reports"),
        spec=ScheduleSpec(cron_expressions=["0 6 * * *"], time_zone_name="Europe/Berlin"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE)))

Plain mutable dataclasses, as temporalio's are: an update callback edits the description it is
given (`input.description.schedule.state.note = "..."`) and returns it in a `ScheduleUpdate`.
Datetimes must carry a time zone; durations are `timedelta`s. The wire forms are
`raftflow.protocol.schedules`; `_schedule_wire.py` converts both ways.

Not (yet) supported from temporalio: memos, headers and typed search attributes
(`search_attributes` takes a plain mapping, as `Client.start_workflow` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from raftflow.sdk._replay.definition import workflow_type_of
from raftflow.sdk.retry import RetryPolicy

__all__ = [
    "Schedule", "ScheduleActionExecutionStartWorkflow", "ScheduleActionResult",
    "ScheduleActionStartWorkflow", "ScheduleBackfill", "ScheduleCalendarSpec",
    "ScheduleDescription", "ScheduleInfo",
    "ScheduleIntervalSpec", "ScheduleListActionStartWorkflow", "ScheduleListDescription",
    "ScheduleListInfo", "ScheduleListSchedule", "ScheduleListState", "ScheduleOverlapPolicy",
    "SchedulePolicy", "ScheduleRange", "ScheduleSpec", "ScheduleState", "ScheduleUpdate",
    "ScheduleUpdateInput",
]


class ScheduleOverlapPolicy(IntEnum):
    """What a due action does while the previous one still runs (temporalio's values)."""

    SKIP = 1
    BUFFER_ONE = 2
    BUFFER_ALL = 3
    CANCEL_OTHER = 4
    TERMINATE_OTHER = 5
    ALLOW_ALL = 6


@dataclass
class ScheduleIntervalSpec:
    """Every `every` since the epoch (UTC), shifted by `offset`: `every=timedelta(hours=1),
    offset=timedelta(minutes=5)` fires at :05 of each hour. Whole seconds."""

    every: timedelta
    offset: timedelta | None = None


@dataclass(frozen=True)
class ScheduleRange:
    """Values `start` to `end` (inclusive; 0 or below start: `start` alone) every `step` (0: 1)."""

    start: int
    end: int = 0
    step: int = 0


@dataclass(frozen=True)
class ScheduleCalendarSpec:
    """Times field by field (temporalio's defaults: second, minute and hour 0, any day, month
    and year). Day of week 0-6 from Sunday; unlike cron, day of month and day of week must both
    match."""

    second: Sequence[ScheduleRange] = (ScheduleRange(0),)
    minute: Sequence[ScheduleRange] = (ScheduleRange(0),)
    hour: Sequence[ScheduleRange] = (ScheduleRange(0),)
    day_of_month: Sequence[ScheduleRange] = (ScheduleRange(1, 31),)
    month: Sequence[ScheduleRange] = (ScheduleRange(1, 12),)
    year: Sequence[ScheduleRange] = ()
    day_of_week: Sequence[ScheduleRange] = (ScheduleRange(0, 6),)
    comment: str | None = None


@dataclass
class ScheduleSpec:
    """When actions are due: the union of `calendars`, `cron_expressions` (5 fields, or 6 with
    seconds first; `@daily` and the like; `CRON_TZ=<zone>` prefix) and `intervals`, between
    `start_at` and `end_at` (inclusive), minus the times a `skip` entry (a calendar spec or,
    beyond temporalio, a cron expression) matches. Calendars and cron expressions are read in
    `time_zone_name` (an IANA name; None is UTC). Each action is delayed by up to `jitter`,
    the same delay for the same schedule and time on every node."""

    calendars: Sequence[ScheduleCalendarSpec] = field(default_factory=list)
    intervals: Sequence[ScheduleIntervalSpec] = field(default_factory=list)
    cron_expressions: Sequence[str] = field(default_factory=list)
    skip: Sequence[ScheduleCalendarSpec | str] = field(default_factory=list)
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None
    time_zone_name: str | None = None


_UNSET: Any = object()


class ScheduleActionStartWorkflow:
    """Start a workflow: `workflow` is its `@workflow.run` method, its class or its type name;
    its arguments are `arg` (one) or `args`. Each action's workflow id is `id` followed by the
    action's nominal time (`report-2026-12-07T06:00:00Z`)."""

    def __init__(self, workflow: Callable[..., Any] | type | str, arg: Any = _UNSET, *,
                 args: Sequence[Any] = (), id: str, task_queue: str,
                 execution_timeout: timedelta | None = None,
                 run_timeout: timedelta | None = None,
                 task_timeout: timedelta | None = None,
                 retry_policy: RetryPolicy | None = None,
                 search_attributes: Mapping[str, object] | None = None) -> None:
        if arg is not _UNSET and args:
            raise ValueError("give either arg or args, not both")
        self.workflow: str = workflow_type_of(workflow)
        self.args: Sequence[Any] = [arg] if arg is not _UNSET else list(args)
        self.id = id
        self.task_queue = task_queue
        self.execution_timeout = execution_timeout
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.retry_policy = retry_policy
        self.search_attributes: Mapping[str, object] | None = search_attributes

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ScheduleActionStartWorkflow)
                and vars(self) == vars(other))

    def __repr__(self) -> str:
        return (f"ScheduleActionStartWorkflow({self.workflow!r}, args={self.args!r}, "
                f"id={self.id!r}, task_queue={self.task_queue!r})")

    __hash__ = None  # type: ignore[assignment]  # mutable, as temporalio's


@dataclass
class SchedulePolicy:
    """`catchup_window`: after downtime, actions due at most this long ago are still taken
    (older ones are counted missed); at least 10 s. `pause_on_failure`: a failed or timed-out
    action pauses the schedule."""

    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP
    catchup_window: timedelta = timedelta(days=365)
    pause_on_failure: bool = False


@dataclass
class ScheduleState:
    """`remaining_actions` counts down per scheduled action when `limited_actions` (triggered
    and backfilled actions do not count)."""

    note: str | None = None
    paused: bool = False
    limited_actions: bool = False
    remaining_actions: int = 0


@dataclass
class Schedule:
    action: ScheduleActionStartWorkflow
    spec: ScheduleSpec
    policy: SchedulePolicy = field(default_factory=SchedulePolicy)
    state: ScheduleState = field(default_factory=ScheduleState)


@dataclass
class ScheduleBackfill:
    """Take the actions of [start_at, end_at] now (`overlap`: None is the schedule's)."""

    start_at: datetime
    end_at: datetime
    overlap: ScheduleOverlapPolicy | None = None


@dataclass
class ScheduleActionExecutionStartWorkflow:
    workflow_id: str
    first_execution_run_id: str


@dataclass
class ScheduleActionResult:
    scheduled_at: datetime
    started_at: datetime
    action: ScheduleActionExecutionStartWorkflow


@dataclass
class ScheduleInfo:
    num_actions: int
    num_actions_missed_catchup_window: int
    num_actions_skipped_overlap: int
    running_actions: Sequence[ScheduleActionExecutionStartWorkflow]
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]
    created_at: datetime
    last_updated_at: datetime | None


@dataclass
class ScheduleDescription:
    id: str
    schedule: Schedule
    info: ScheduleInfo


@dataclass
class ScheduleUpdateInput:
    """What an update callback gets: the schedule as it is now."""

    description: ScheduleDescription


@dataclass
class ScheduleUpdate:
    """What an update callback returns: the schedule as it should be."""

    schedule: Schedule


@dataclass
class ScheduleListActionStartWorkflow:
    workflow: str


@dataclass
class ScheduleListState:
    note: str | None
    paused: bool


@dataclass
class ScheduleListSchedule:
    action: ScheduleListActionStartWorkflow
    spec: ScheduleSpec
    state: ScheduleListState


@dataclass
class ScheduleListInfo:
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]


@dataclass
class ScheduleListDescription:
    id: str
    schedule: ScheduleListSchedule | None
    info: ScheduleListInfo | None
