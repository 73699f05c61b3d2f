"""A schedule as one shard holds it (`ShardState.schedules`), and the conversions between it
and the pure overlap engine's `ActionsState` (schedule_overlap.py).

Theory of operation (docs/internals/schedules.md). A record keeps the user's `Schedule` as
given (its `state` holds paused, note and the action budget), the catch-up cursor
`processed_through_ms` and the next instant a step is due (`next_wake_ms`, computed by the
leader's shell: time zones are never read on apply), the actions running (workflow id -> the
first run id, derived from the start message's id) and buffered, the backfills waiting, and the
counters describe shows. `revision` grows with every update: a tick names the revision and the
cursor it was computed from, so a stale one changes nothing. `incarnation` is the shard's
applied index at creation: it names the schedule's messages (`source_run_id`), so a schedule
deleted and created again never reuses a message id the targets remember.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.schedules import (
    SCHEDULE_RECENT_ACTIONS_MAX,
    OverlapPolicy,
    Schedule,
    ScheduleActionResult,
)
from raftflow.shards.core.schedule_overlap import ActionOrigin, ActionsState, PendingAction

ScheduleKey = tuple[str, str]  # (namespace, schedule_id)

# Outbox entries of a schedule name this as their source run: never a run id (run ids are hex).
SCHEDULE_SOURCE_PREFIX = "schedule:"


class BufferedAction(msgspec.Struct, frozen=True, kw_only=True):
    nominal_ms: int
    actual_ms: int
    workflow_id: str
    overlap: OverlapPolicy
    origin: ActionOrigin = ActionOrigin.SCHEDULED


class PendingBackfill(msgspec.Struct, kw_only=True):
    """A backfill not walked to its end; `processed_through_ms` None: not started."""

    backfill_id: int
    start_at_ms: int
    end_at_ms: int
    overlap: OverlapPolicy | None = None
    processed_through_ms: int | None = None


class ScheduleRecord(msgspec.Struct, kw_only=True):
    namespace: str
    schedule_id: str
    schedule: Schedule
    incarnation: int
    created_at_ms: int
    revision: int = 1
    last_updated_at_ms: int | None = None
    processed_through_ms: int = 0
    next_wake_ms: int | None = None
    running: dict[str, str] = msgspec.field(default_factory=dict)  # workflow id -> run id
    buffered: list[BufferedAction] = msgspec.field(default_factory=list)
    backfills: list[PendingBackfill] = msgspec.field(default_factory=list)
    next_backfill_id: int = 1
    next_message_seq: int = 1
    num_actions: int = 0
    num_missed: int = 0
    num_skipped: int = 0
    recent_actions: list[ScheduleActionResult] = msgspec.field(default_factory=list)

    @property
    def source_run_id(self) -> str:
        """What the schedule's outbox entries name as their source run."""
        return f"{SCHEDULE_SOURCE_PREFIX}{self.incarnation}:{self.namespace}:{self.schedule_id}"

    def needs_step(self, now_ms: int) -> bool:
        """Whether the leader's shell should propose a tick now."""
        return bool(self.backfills) or (self.next_wake_ms is not None
                                        and self.next_wake_ms <= now_ms)

    def note_action(self, result: ScheduleActionResult) -> None:
        self.recent_actions.append(result)
        del self.recent_actions[:-SCHEDULE_RECENT_ACTIONS_MAX]


def is_schedule_source(source_run_id: str) -> bool:
    return source_run_id.startswith(SCHEDULE_SOURCE_PREFIX)


def actions_state(record: ScheduleRecord) -> ActionsState:
    state = record.schedule.state
    return ActionsState(
        running=tuple(record.running),
        buffered=tuple(PendingAction(nominal_ms=b.nominal_ms, actual_ms=b.actual_ms,
                                     workflow_id=b.workflow_id, overlap=b.overlap,
                                     origin=b.origin) for b in record.buffered),
        paused=state.paused, limited_actions=state.limited_actions,
        remaining_actions=state.remaining_actions)


def buffered_of(actions: ActionsState) -> list[BufferedAction]:
    return [BufferedAction(nominal_ms=a.nominal_ms, actual_ms=a.actual_ms,
                           workflow_id=a.workflow_id, overlap=a.overlap, origin=a.origin)
            for a in actions.buffered]
