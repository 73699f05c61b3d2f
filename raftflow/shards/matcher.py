"""The node's task matcher: ready tasks of the shards this node leads, and the pollers waiting.

Theory of operation. Shard actors that lead hand their dispatch effects here (EffectSink). A
dispatch is a hint, never the truth: handing a task to a worker is the `Record*TaskStarted`
command, which the core rejects when the dispatch went stale. So the matcher may lose, repeat
or reorder dispatches without harm to correctness; a new leader re-derives them from state.
Queues are per (namespace, task queue, kind) and bounded; a dispatch beyond the bound is
dropped and counted (the task stays scheduled in state and is re-derived on the next leader
change; its schedule-to-start timeout, if set, still fires).

Query tasks share the workflow-task queues but are not durable: a `QueryTask` lives only in
this node's memory until a poller takes it or its deadline passes (the caller then gets a
timeout and may retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import (
    DispatchActivityTask,
    DispatchWorkflowTask,
    Effect,
    WorkflowClosed,
)

# Ready tasks held per (namespace, task queue, kind). Beyond it dispatches are dropped (see above).
QUEUE_TASKS_MAX = 100_000
# Pollers parked per (namespace, task queue, kind); more get an immediate empty answer.
POLLERS_PER_QUEUE_MAX = 1_000
# Callers waiting for one workflow's close, and workflows waited on per node.
CLOSE_WAITERS_MAX = 10_000

QueueKey = tuple[str, str, TaskKind]
Dispatch = DispatchWorkflowTask | DispatchActivityTask


@dataclass(frozen=True, slots=True)
class ReadyTask:
    shard: int
    dispatch: Dispatch

    @property
    def kind(self) -> TaskKind:
        return TaskKind.WORKFLOW if isinstance(self.dispatch, DispatchWorkflowTask) else TaskKind.ACTIVITY

    @property
    def identity(self) -> tuple[int, str, int, int]:
        d = self.dispatch
        attempt = d.attempt if isinstance(d, DispatchActivityTask) else 0
        return (self.shard, d.run_id, d.scheduled_event_id, attempt)


@dataclass(frozen=True, slots=True)
class QueryTask:
    """A query for a worker of the workflow's task queue (handed out on workflow-task polls)."""

    shard: int
    namespace: str
    task_queue: str
    query_id: str
    payload: dict[str, object] = field(hash=False, compare=False)
    deadline: float  # time.monotonic() after which nobody waits for the answer

    @property
    def kind(self) -> TaskKind:
        return TaskKind.WORKFLOW

    @property
    def identity(self) -> tuple[int, str, int, int]:
        return (self.shard, self.query_id, -1, -1)


Item = ReadyTask | QueryTask


def _key(item: Item) -> QueueKey:
    if isinstance(item, QueryTask):
        return (item.namespace, item.task_queue, TaskKind.WORKFLOW)
    return (item.dispatch.namespace, item.dispatch.task_queue, item.kind)


class MatcherStats:
    __slots__ = ("dispatched", "dropped")

    def __init__(self) -> None:
        self.dispatched = 0
        self.dropped = 0


class Matcher:
    def __init__(self) -> None:
        self._queues: dict[QueueKey, deque[Item]] = {}
        self._queued: set[tuple[int, str, int, int]] = set()
        self._pollers: dict[QueueKey, deque[asyncio.Future[Item]]] = {}
        self._close_waiters: dict[tuple[str, str], list[asyncio.Future[None]]] = {}
        self.stats = MatcherStats()

    # -- EffectSink ----------------------------------------------------------------------------

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, DispatchWorkflowTask | DispatchActivityTask):
                self._offer(ReadyTask(shard, effect))
            elif isinstance(effect, WorkflowClosed):
                for waiter in self._close_waiters.pop((effect.namespace, effect.workflow_id), []):
                    if not waiter.done():
                        waiter.set_result(None)

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        if is_leader:
            return
        # Callers waiting for a close on this node would never be woken once another node
        # leads: wake them all (closes are not keyed by shard), they re-read and get routed.
        for waiters in self._close_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        for key, queue in self._queues.items():
            kept = deque(t for t in queue if t.shard != shard)
            for task in queue:
                if task.shard == shard:
                    self._queued.discard(task.identity)
            self._queues[key] = kept

    # -- pollers -------------------------------------------------------------------------------

    async def take(self, namespace: str, task_queue: str, kind: TaskKind,
                   timeout_s: float) -> Item | None:
        """The next ready task of that queue, waiting up to `timeout_s`; None on timeout."""
        key = (namespace, task_queue, kind)
        queue = self._queues.get(key)
        while queue:
            task = queue.popleft()
            self._queued.discard(task.identity)
            if isinstance(task, QueryTask) and task.deadline < time.monotonic():
                continue  # nobody waits for this answer any more
            return task
        pollers = self._pollers.setdefault(key, deque())
        if len(pollers) >= POLLERS_PER_QUEUE_MAX or timeout_s <= 0:
            return None
        waiter: asyncio.Future[Item] = asyncio.get_running_loop().create_future()
        pollers.append(waiter)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows the caller's
        # cancellation when the waiter was handed a task in the same instant, so the task
        # would be started for a caller that is gone instead of being offered again.
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(waiter)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()  # handed over in the same instant: do not lose it
            return None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._offer(waiter.result())  # our caller left: give the task to someone else
            raise
        finally:
            waiter.cancel()
            # A poller that left frees its slot at once (else POLLERS_PER_QUEUE_MAX polls that
            # timed out on an idle queue would refuse every later poller until a task arrives).
            with contextlib.suppress(ValueError):
                pollers.remove(waiter)

    def offer_query(self, query: QueryTask) -> None:
        self._offer(query)

    @contextlib.contextmanager
    def watch_close(self, namespace: str, workflow_id: str) -> Iterator[asyncio.Future[None]]:
        """A future set when the shard leader on this node reports the workflow closed.

        Register before reading the workflow's status, then wait: a close that happens between
        the read and the wait is not missed. Raises OverflowError beyond CLOSE_WAITERS_MAX.
        """
        key = (namespace, workflow_id)
        waiters = self._close_waiters.setdefault(key, [])
        if len(waiters) >= CLOSE_WAITERS_MAX:
            raise OverflowError("too many callers wait for this workflow")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            yield waiter
        finally:
            waiter.cancel()
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._close_waiters.get(key) is waiters:
                del self._close_waiters[key]

    async def wait_closed(self, namespace: str, workflow_id: str, timeout_s: float) -> bool:
        """Wait until the shard leader on this node reports the workflow closed."""
        try:
            with self.watch_close(namespace, workflow_id) as closed:
                async with asyncio.timeout(timeout_s):
                    await closed
                return True
        except (TimeoutError, OverflowError):
            return False

    def depth(self) -> int:
        return sum(len(q) for q in self._queues.values())

    # -- internals -----------------------------------------------------------------------------

    def _offer(self, task: Item) -> None:
        key = _key(task)
        pollers = self._pollers.get(key)
        while pollers:
            waiter = pollers.popleft()
            if not waiter.done():
                waiter.set_result(task)
                self.stats.dispatched += 1
                return
        if task.identity in self._queued:
            return  # a re-derived duplicate of a dispatch still queued
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= QUEUE_TASKS_MAX:
            self.stats.dropped += 1
            return
        queue.append(task)
        self._queued.add(task.identity)
        self.stats.dispatched += 1
