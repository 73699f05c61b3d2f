"""The node's task matcher: ready tasks of the shards this node leads, and the polls waiting.

Theory of operation. Shard actors that lead hand their dispatch effects here (EffectSink). A
dispatch is a hint, never the truth: handing a task to a worker is the `Record*TaskStarted`
command, which the core rejects when the dispatch went stale. So the matcher may lose, repeat
or reorder dispatches without harm to correctness; a new leader re-derives them from state.
Queues are per (namespace, task queue, kind) and bounded (`limits`).

Query tasks share the workflow-task queues but are not durable: a `QueryTask` lives only in
this node's memory until a poller takes it or its deadline passes (the caller then gets a
timeout and may retry).

Started tasks are claimed tasks whose poll could not take them (see `StartedTask`). They are
offered like any task, so a poll already waiting here gets one at once, and a poll arriving
later takes them before ready tasks. They are not the shard's: a leader change keeps them.

Poll ids. A gateway poll waits on every node at once under one poll id; once it has its
answer it ends the id on the other nodes (`end_poll`). A wait under an ended id returns None
at once, and an id ended before its wait began (the end overtook the leg) is remembered, so
the leg then takes nothing. A task handed to a waiter before its poll ended stays with it:
the waiter claims it and its gateway gives it back (never lost, never taken twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence

from raftflow.matching import limits
from raftflow.matching.items import (
    Item,
    QueryTask,
    QueueKey,
    QueueSample,
    ReadyTask,
    StartedTask,
    queue_key,
)
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import (
    DispatchActivityTask,
    DispatchWorkflowTask,
    Effect,
    WorkflowClosed,
)


class MatcherStats:
    __slots__ = ("dispatched", "dropped", "started_offered", "started_expired")

    def __init__(self) -> None:
        self.dispatched = 0
        self.dropped = 0
        self.started_offered = 0  # started tasks given back for the next poll
        self.started_expired = 0  # ... that nobody took within STARTED_TASK_AGE_S


class Matcher:
    def __init__(self) -> None:
        self._queues: dict[QueueKey, deque[ReadyTask | QueryTask]] = {}
        self._queued: set[tuple[int, str, int, int]] = set()
        self._started: dict[QueueKey, deque[StartedTask]] = {}
        self._pollers: dict[QueueKey, deque[asyncio.Future[Item | None]]] = {}
        self._waiting_polls: dict[str, asyncio.Future[Item | None]] = {}
        self._ended_polls: OrderedDict[str, None] = OrderedDict()
        self._close_waiters: dict[tuple[str, str], list[asyncio.Future[None]]] = {}
        self.stats = MatcherStats()

    # -- EffectSink ----------------------------------------------------------------------------

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        now = time.monotonic()
        for effect in effects:
            if isinstance(effect, DispatchWorkflowTask | DispatchActivityTask):
                self._offer(ReadyTask(shard, effect, now))
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

    async def take(self, namespace: str, task_queue: str, kind: TaskKind, timeout_s: float,
                   poll_id: str | None = None) -> Item | None:
        """The next task of that queue, waiting up to `timeout_s`; None on timeout or when
        the poll `poll_id` is (or gets) ended."""
        if poll_id is not None and (poll_id in self._ended_polls
                                    or poll_id in self._waiting_polls):
            return None  # ended, or a second leg of one poll here (one wait per poll and node)
        key = (namespace, task_queue, kind)
        ready = self._pop(key)
        if ready is not None:
            return ready
        pollers = self._pollers.setdefault(key, deque())
        if len(pollers) >= limits.POLLERS_PER_QUEUE_MAX or timeout_s <= 0:
            return None
        waiter: asyncio.Future[Item | None] = asyncio.get_running_loop().create_future()
        pollers.append(waiter)
        if poll_id is not None:
            self._waiting_polls[poll_id] = waiter
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
                handed = waiter.result()
                if handed is not None:
                    self._offer(handed)  # our caller left: give the task to someone else
            raise
        finally:
            waiter.cancel()
            if poll_id is not None:
                self._waiting_polls.pop(poll_id, None)
            # A poller that left frees its slot at once (else POLLERS_PER_QUEUE_MAX polls that
            # timed out on an idle queue would refuse every later poller until a task arrives).
            with contextlib.suppress(ValueError):
                pollers.remove(waiter)

    def end_poll(self, poll_id: str) -> None:
        """End the poll `poll_id` here: its wait returns None now, a later one at once."""
        self._ended_polls[poll_id] = None
        while len(self._ended_polls) > limits.ENDED_POLLS_MAX:
            self._ended_polls.popitem(last=False)
        waiter = self._waiting_polls.pop(poll_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # _offer skips a done waiter: no task goes to it now
        assert poll_id not in self._waiting_polls

    def offer_query(self, query: QueryTask) -> None:
        self._offer(query)

    def offer_started(self, task: StartedTask) -> None:
        """Give back a task already recorded started, for the next poll of its queue here."""
        self.stats.started_offered += 1
        self._offer(task)

    @contextlib.contextmanager
    def watch_close(self, namespace: str, workflow_id: str) -> Iterator[asyncio.Future[None]]:
        """A future set when the shard leader on this node reports the workflow closed.

        Register before reading the workflow's status, then wait: a close that happens between
        the read and the wait is not missed. Raises OverflowError beyond CLOSE_WAITERS_MAX.
        """
        key = (namespace, workflow_id)
        waiters = self._close_waiters.setdefault(key, [])
        if len(waiters) >= limits.CLOSE_WAITERS_MAX:
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
        return (sum(len(q) for q in self._queues.values())
                + sum(len(q) for q in self._started.values()))

    def queue_samples(self) -> list[QueueSample]:
        """Every queue with tasks or polls waiting (metrics, read at scrape time)."""
        samples = []
        for key in self._queues.keys() | self._started.keys() | self._pollers.keys():
            backlog = len(self._queues.get(key, ())) + len(self._started.get(key, ()))
            pollers = sum(1 for w in self._pollers.get(key, ()) if not w.done())
            if backlog or pollers:
                namespace, task_queue, kind = key
                samples.append(QueueSample(namespace=namespace, task_queue=task_queue,
                                           kind=kind.value, backlog=backlog, pollers=pollers))
        return samples

    # -- internals -----------------------------------------------------------------------------

    def _pop(self, key: QueueKey) -> Item | None:
        """The next task of a queue: started tasks first (their timeout already runs)."""
        started = self._started.get(key)
        now = time.monotonic()
        while started:
            task = started.popleft()
            if now - task.offered_at < limits.STARTED_TASK_AGE_S:
                return task
            self.stats.started_expired += 1
        queue = self._queues.get(key)
        while queue:
            ready = queue.popleft()
            self._queued.discard(ready.identity)
            if isinstance(ready, QueryTask) and ready.deadline < now:
                continue  # nobody waits for this answer any more
            return ready
        return None

    def _offer(self, task: Item) -> None:
        key = queue_key(task)
        pollers = self._pollers.get(key)
        while pollers:
            waiter = pollers.popleft()
            if not waiter.done():
                waiter.set_result(task)
                self.stats.dispatched += 1
                return
        if isinstance(task, StartedTask):
            started = self._started.setdefault(key, deque())
            if len(started) >= limits.STARTED_TASKS_PER_QUEUE_MAX:
                self.stats.dropped += 1  # its task timeout retries it
                return
            started.append(task)
            return
        if task.identity in self._queued:
            return  # a re-derived duplicate of a dispatch still queued
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= limits.QUEUE_TASKS_MAX:
            self.stats.dropped += 1
            return
        queue.append(task)
        self._queued.add(task.identity)
        self.stats.dispatched += 1
