"""Effects: orders from the core to the leader's shell, produced by `apply`.

Effects are hints, state is truth: followers drop them, and a new leader rebuilds the same
orders from state with `raftflow.shards.core.pending_effects(state)`. A dispatch may therefore
be repeated; the matcher's `RecordTaskStarted` command is what makes a hand-out count, and a
stale one is rejected by the core.
"""

from __future__ import annotations

import msgspec


class DispatchWorkflowTask(msgspec.Struct, frozen=True, kw_only=True, tag="DispatchWorkflowTask",
                           tag_field="effect"):
    """A workflow task was scheduled and waits for a worker polling `task_queue`."""

    namespace: str
    task_queue: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int


class DispatchActivityTask(msgspec.Struct, frozen=True, kw_only=True, tag="DispatchActivityTask",
                           tag_field="effect"):
    """An activity attempt was scheduled and waits for a worker polling `task_queue`."""

    namespace: str
    task_queue: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    attempt: int


class ArmTimer(msgspec.Struct, frozen=True, kw_only=True, tag="ArmTimer", tag_field="effect"):
    """Propose `FireTimers(now_ms >= fire_at_ms)` once the leader's clock reaches `fire_at_ms`.
    Keeping only the earliest pending wake-up is enough: each FireTimers answer re-arms the next."""

    fire_at_ms: int


class WorkflowClosed(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowClosed",
                     tag_field="effect"):
    """A run closed; wake whoever waits for its result."""

    namespace: str
    workflow_id: str
    run_id: str


class MessageQueued(msgspec.Struct, frozen=True, kw_only=True, tag="MessageQueued",
                    tag_field="effect"):
    """A message waits in the outbox for delivery to the shard of (`namespace`, `workflow_id`).
    The courier reads the message itself from state when it sends, so no payload rides here."""

    message_id: str
    namespace: str
    workflow_id: str


class BatchActive(msgspec.Struct, frozen=True, kw_only=True, tag="BatchActive",
                  tag_field="effect"):
    """A batch job runs on this shard: its leader's batch runner works through it."""

    namespace: str
    job_id: str


Effect = (DispatchWorkflowTask | DispatchActivityTask | ArmTimer | WorkflowClosed
          | MessageQueued | BatchActive)
