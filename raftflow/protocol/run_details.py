"""What a run waits on, as describe shows it: pending activities, user timers and children,
and the run's parent (`raftflow.shards.core.queries.run_details`).

Read-side values only: built from a shard's state on a read, never logged or snapshotted.
Payloads stay the engine's bytes here; the gateway renders them as JSON values.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from raftflow.protocol.commands import Failure


class PendingActivityState(StrEnum):
    """Temporal's pending activity states (its `PENDING_ACTIVITY_STATE_*`), plus the
    back-off between two attempts, which Temporal reports as SCHEDULED."""

    SCHEDULED = "SCHEDULED"  # waiting for a worker to take the current attempt
    STARTED = "STARTED"  # a worker runs the current attempt
    BACKOFF = "BACKOFF"  # the last attempt failed; the next waits for its retry time


class PendingActivityInfo(msgspec.Struct, frozen=True, kw_only=True):
    activity_id: str
    activity_type: str
    task_queue: str
    scheduled_event_id: int
    state: PendingActivityState
    cancel_requested: bool
    attempt: int
    maximum_attempts: int  # 0: unlimited
    scheduled_time_ms: int  # of the activity (its first attempt)
    attempt_scheduled_time_ms: int  # of the current attempt
    started_time_ms: int | None  # of the current attempt, while a worker runs it
    next_attempt_time_ms: int | None  # in back-off: when the next attempt is scheduled
    identity: str  # the worker running the current attempt ("" if none)
    heartbeat_details: bytes  # the last heartbeat's details (b"": none)
    last_failure: Failure | None  # of the previous attempt


class PendingTimerInfo(msgspec.Struct, frozen=True, kw_only=True):
    timer_id: str
    started_event_id: int
    fire_time_ms: int


class PendingChildInfo(msgspec.Struct, frozen=True, kw_only=True):
    workflow_id: str
    run_id: str | None  # None until ChildWorkflowExecutionStarted
    workflow_type: str
    initiated_event_id: int
    parent_close_policy: str


class ParentInfo(msgspec.Struct, frozen=True, kw_only=True):
    namespace: str
    workflow_id: str
    run_id: str


class RunDetails(msgspec.Struct, frozen=True, kw_only=True):
    pending_activities: tuple[PendingActivityInfo, ...]
    pending_timers: tuple[PendingTimerInfo, ...]
    pending_children: tuple[PendingChildInfo, ...]
    parent: ParentInfo | None  # None: not a child (a schedule's action has no parent run)
