"""Mutable state of one shard: its open runs, the timer index, and the archive behind them.

Theory of operation. Only `apply` and the `do_*` writes mutate these objects, always after every
refusal has been decided (compute, then commit). Every dict here is insertion-ordered and
insertion order is itself deterministic (it follows the log), so iteration order is identical on
every replica and survives a snapshot round trip (the snapshot keeps order, DESIGN §4 I2).

Open runs are the hot part (`executions`, at most OPEN_RUNS_PER_SHARD_MAX), all in memory in a
pure state; a store-backed replica keeps each as a row, rewritten when touched (`touched_runs`),
and only the recently used ones in memory.
A run that closes moves to the `archive` (archive.py): closed runs, latest run per workflow id
and remembered request ids, each with the instant it expires. The archive is an attribute, not
a field: a pure state has a `MemoryArchive`, a store-backed replica one that keeps rows on disk
(`raftflow.shards.store`), and snapshots and digests read it through the same seam.

The timer index maps a `TimerKey` to its due instant. `timer_heap` is a derived cache with lazy
deletion: an entry is live only if the index still holds the same key at the same instant. It is
an attribute, not a struct field, so it is neither in the snapshot nor compared by `==`; it is
rebuilt whenever a state is built or decoded. Timers fire in (fire_at_ms, key) order, a total
order, so the heap's shape never matters.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, MutableMapping

import msgspec

from raftflow.protocol.messages import OutboxEntry
from raftflow.protocol.search_attributes import AttributeType
from raftflow.shards.core.archive import Archive
from raftflow.shards.core.batch_jobs import BatchJob, BatchKey
from raftflow.shards.core.limits import EXPIRY_BATCHING_MS, MESSAGE_RETRY_HORIZON_MS
from raftflow.shards.core.memory_archive import MemoryArchive

# The run-level types are defined in runs.py; the core's modules import them from here.
from raftflow.shards.core.runs import (
    ACTIVITY_TIMER_KINDS,
    ActivityPhase,
    ActivityState,
    BufferedEvent,
    ChildState,
    Execution,
    ParentRef,
    RequestKey,
    TimerKey,
    TimerKind,
    WorkflowKey,
    WorkflowTaskState,
)
from raftflow.shards.core.schedule_records import ScheduleRecord

__all__ = ["ACTIVITY_TIMER_KINDS", "ActivityPhase", "ActivityState", "BufferedEvent",
           "ChildState", "ParentRef",
           "Execution", "NamespaceConfig", "RequestKey", "ShardState", "TimerKey", "TimerKind", "WorkflowKey",
           "WorkflowTaskState"]


class NamespaceConfig(msgspec.Struct, kw_only=True):
    """A namespace's settings as this shard last received them (`ConfigureNamespace`)."""

    retention_ms: int
    # The namespace's registered search attributes (name -> type); a shard configured before
    # they existed decodes with none.
    search_attributes: dict[str, AttributeType] = msgspec.field(default_factory=dict)


# `dict=True` gives each state an instance `__dict__` for the attributes that are not fields:
# `timer_heap`, the derived cache, `archive`, and the store's hooks (`touched_runs`,
# `dispatch_candidates`), which must stay out of `==` and the struct's own encoding (a
# snapshot writes the archive's rows itself).
class ShardState(msgspec.Struct, kw_only=True, dict=True):
    shard_id: int
    applied_index: int = 0
    # Open runs by id: a dict in a pure state; a store-backed replica puts a bounded cache over
    # their rows here (shards/store/open_run_cache.py), which a snapshot never encodes.
    executions: MutableMapping[str, Execution] = msgspec.field(default_factory=dict)
    open_runs: dict[WorkflowKey, str] = msgspec.field(default_factory=dict)
    timers: dict[TimerKey, int] = msgspec.field(default_factory=dict)  # key -> fire_at_ms
    # Namespaces the cluster map gave this shard (a namespace absent here keeps the defaults).
    namespaces: dict[str, NamespaceConfig] = msgspec.field(default_factory=dict)
    # Messages to other workflows waiting for their target's acknowledgement, by message id,
    # in the order they were queued (outbox.py); and their payload bytes (the byte bound).
    outbox: dict[str, OutboxEntry] = msgspec.field(default_factory=dict)
    outbox_bytes: int = 0
    # Batch jobs held by this shard, running and finished, by (namespace, job id) (on_batch.py).
    batches: dict[BatchKey, BatchJob] = msgspec.field(default_factory=dict)
    # Schedules whose home is this shard (shard_for(namespace, schedule_id)), by (namespace,
    # schedule id), in creation order (schedule_records.py).
    schedules: dict[tuple[str, str], ScheduleRecord] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        # Runs after construction and after every snapshot decode: the heap is derived, never
        # stored, so a restored replica rebuilds it here from the timer index. The archive
        # starts empty; a restore or a store-backed replica replaces it.
        self.timer_heap: list[tuple[int, str, str, int]] = _heap_of(self.timers)
        self.archive: Archive = MemoryArchive()
        # Open runs that may have changed (or closed) since the shard store last wrote them,
        # in the order they were first taken: a store-backed replica sets it to {} and
        # rewrites exactly these rows at its commit (shards/store). A pure state keeps None:
        # nothing reads it, so nothing should grow.
        self.touched_runs: dict[str, None] | None = None
        # Set by a store-backed replica whose runs are mostly rows: a walk of the open runs in
        # opening order that skips rows known to have no task to dispatch (`runs_to_dispatch`).
        self.dispatch_candidates: Callable[[], Iterable[Execution]] | None = None

    @staticmethod
    def empty(shard_id: int) -> ShardState:
        assert shard_id >= 0, shard_id
        return ShardState(shard_id=shard_id)

    # Every open run a command may change is taken through `touch`, `open_execution`,
    # `find_run` or `take_open_run`, which mark it touched (a read marks it too: the store then
    # rewrites an unchanged row, which costs a write and changes nothing). `do_start_run` and
    # `do_close_run` mark the runs they add and remove. The store-backed property walks check
    # after every commit that the rows equal the runs in memory, so a change that skips these
    # shows up there.

    def touch(self, run_id: str) -> None:
        if self.touched_runs is not None:
            self.touched_runs[run_id] = None

    def open_execution(self, namespace: str, workflow_id: str) -> Execution | None:
        run_id = self.open_runs.get((namespace, workflow_id))
        if run_id is None:
            return None
        self.touch(run_id)
        return self.executions[run_id]

    def take_open_run(self, run_id: str) -> Execution:
        """An open run the caller knows is open (a timer's, an index's)."""
        self.touch(run_id)
        return self.executions[run_id]

    def find_run(self, run_id: str) -> Execution | None:
        """An open run, else a retained closed one (read from the archive), else None."""
        if run_id not in self.executions:
            return self.archive.closed_run(run_id)
        self.touch(run_id)  # before the read: a cache keeps a touched run until it is written
        return self.executions[run_id]

    def run_id_used(self, run_id: str) -> bool:
        return run_id in self.executions or self.archive.has_run(run_id)

    def latest_run_id(self, key: WorkflowKey) -> str | None:
        """The open run of a workflow id, else its latest retained closed run."""
        return self.open_runs.get(key) or self.archive.latest_closed(key)

    def runs_to_dispatch(self) -> Iterable[Execution]:
        """Open runs in opening order, including at least every run with a task to dispatch."""
        candidates = self.dispatch_candidates
        return self.executions.values() if candidates is None else candidates()

    def rebuild_timer_heap(self) -> None:
        """Recompute the derived heap from the timer index (after a snapshot restore)."""
        self.timer_heap = _heap_of(self.timers)

    def earliest_timer(self) -> tuple[int, TimerKey] | None:
        """The next timer due, dropping stale heap entries on the way (cache upkeep only)."""
        heap = self.timer_heap
        while heap:
            at, run_id, kind, ref = heap[0]
            key = (run_id, kind, ref)
            if self.timers.get(key) == at:
                return at, key
            heapq.heappop(heap)
        assert not self.timers, "timer index and heap disagree"
        return None


    def next_wakeup_ms(self) -> int | None:
        """When the leader should next propose `FireTimers`: the earliest durable timer,
        EXPIRY_BATCHING_MS after the earliest archive row falls due, or the retry horizon of
        the oldest outbox message, whichever is first."""
        earliest = self.earliest_timer()
        expiry = self.archive.next_expiry_ms()
        candidates = [] if earliest is None else [earliest[0]]
        if expiry is not None:
            candidates.append(expiry + EXPIRY_BATCHING_MS)
        oldest = next(iter(self.outbox.values()), None)
        if oldest is not None:
            candidates.append(oldest.created_ms + MESSAGE_RETRY_HORIZON_MS)
        return min(candidates) if candidates else None


def _heap_of(timers: dict[TimerKey, int]) -> list[tuple[int, str, str, int]]:
    heap = [(at, key[0], key[1], key[2]) for key, at in timers.items()]
    heapq.heapify(heap)
    assert len(heap) == len(timers)
    return heap
