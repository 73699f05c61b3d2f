"""Long polls for workflow and activity tasks, across every shard of the cluster.

A worker connected to any one node must receive tasks from every shard (DESIGN §5), but a
task is ready only on its shard's leader. So a poll waits on this node's matcher and, at the
same time, asks every other node for a task of that queue (`?local=1`: theirs only). The first
task wins; the other attempts are cancelled.

Handing a task out is the `Record*TaskStarted` command, committed before the task leaves the
node (so a task is never given twice). Once that command is proposed it runs to completion even
if the caller leaves; a task started for a caller that is gone is kept in a small per-queue
buffer and given to the next poll here (the same worker polls again at once). A buffered task
nobody takes is dropped after `BUFFERED_TASK_AGE_S`: the server's task timeout retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import aiohttp

from raftflow.api.render import JsonValue, activity_task_json, workflow_task_json
from raftflow.api.routing import FORWARDED_HEADER, ShardDirectory
from raftflow.protocol.commands import (
    RecordActivityTaskStarted,
    RecordWorkflowTaskStarted,
    TaskKind,
)
from raftflow.protocol.effects import DispatchActivityTask
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.results import ActivityTaskStartedResult, WorkflowTaskStartedResult
from raftflow.shards.matcher import Matcher, QueryTask, ReadyTask

BUFFERED_TASK_AGE_S = 5.0
BUFFERED_TASKS_PER_QUEUE_MAX = 256
POLL_TIMEOUT_S_MAX = 60.0

Task = dict[str, JsonValue]


class DispatchCounter(Protocol):
    def record_tasks_dispatched(self, kind: str, count: int = 1) -> None: ...


QueueKey = tuple[str, str, TaskKind]


@dataclass(frozen=True, slots=True)
class Poller:
    """Who polls: the worker's identity and its sticky queue (which decides whether a workflow
    task carries the whole history or only the events that worker has not seen)."""

    identity: str
    sticky_queue: str = ""


class TaskPoller:
    def __init__(self, directory: ShardDirectory, matcher: Matcher,
                 session: aiohttp.ClientSession, metrics: DispatchCounter | None = None) -> None:
        self._metrics = metrics
        self._directory = directory
        self._matcher = matcher
        self._session = session
        self._buffer: dict[QueueKey, deque[tuple[float, Task]]] = {}
        self._claims: set[asyncio.Task[Task | None]] = set()

    async def close(self) -> None:
        for claim in list(self._claims):
            claim.cancel()
        for claim in list(self._claims):
            with contextlib.suppress(asyncio.CancelledError, RaftflowError):
                await claim

    async def poll_cluster(self, namespace: str, task_queue: str, kind: TaskKind,
                           worker: Poller, timeout_s: float) -> Task | None:
        buffered = self._take_buffered((namespace, task_queue, kind))
        if buffered is not None:
            return buffered
        attempts = [asyncio.ensure_future(
            self.poll_local(namespace, task_queue, kind, worker, timeout_s))]
        for node_id in self._directory.node_ids():
            address = self._directory.http_address(node_id)
            if node_id != self._directory.node_id and address is not None:
                attempts.append(asyncio.ensure_future(self._poll_remote(
                    address, namespace, task_queue, kind, worker, timeout_s)))
        try:
            pending = set(attempts)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for attempt in done:
                    if not attempt.cancelled() and attempt.exception() is None:
                        task = attempt.result()
                        if task is not None:
                            return task
            return None
        finally:
            for attempt in attempts:
                attempt.cancel()  # a task claimed meanwhile lands in the buffer (poll_local)

    async def poll_local(self, namespace: str, task_queue: str, kind: TaskKind, worker: Poller,
                         timeout_s: float) -> Task | None:
        """A task from the shards this node leads, waiting up to `timeout_s`."""
        key = (namespace, task_queue, kind)
        buffered = self._take_buffered(key)
        if buffered is not None:
            return buffered
        deadline = time.monotonic() + min(timeout_s, POLL_TIMEOUT_S_MAX)
        while (remaining := deadline - time.monotonic()) > 0:
            ready = await self._matcher.take(namespace, task_queue, kind, remaining)
            if ready is None:
                return None
            if isinstance(ready, QueryTask):
                return ready.payload  # not durable, nothing to commit
            claim = asyncio.ensure_future(self._claim(ready, worker))
            self._claims.add(claim)
            claim.add_done_callback(self._claims.discard)
            try:
                task = await asyncio.shield(claim)
            except asyncio.CancelledError:
                claim.add_done_callback(partial(self._buffer_claim, key))
                raise
            if task is not None:
                return task
        return None

    async def _claim(self, ready: ReadyTask, worker: Poller) -> Task | None:
        """Commit the hand-out; None when the dispatch went stale or the shard moved."""
        actor = self._directory.actor(ready.shard)
        if actor is None:
            return None
        d = ready.dispatch
        common = dict(now_ms=actor.now_ms(), namespace=d.namespace, workflow_id=d.workflow_id,
                      run_id=d.run_id, scheduled_event_id=d.scheduled_event_id,
                      identity=worker.identity, request_id=uuid.uuid4().hex)
        try:
            if isinstance(d, DispatchActivityTask):
                result = await actor.execute(RecordActivityTaskStarted(attempt=d.attempt, **common))  # type: ignore[arg-type]
            else:
                result = await actor.execute(RecordWorkflowTaskStarted(
                    sticky_queue=worker.sticky_queue, **common))  # type: ignore[arg-type]
        except RaftflowError:  # not leader any more, overloaded, timed out
            return None
        if isinstance(result, WorkflowTaskStartedResult | ActivityTaskStartedResult):
            if self._metrics is not None:
                self._metrics.record_tasks_dispatched(ready.kind.value)
            if isinstance(result, WorkflowTaskStartedResult):
                return workflow_task_json(result.task)
            return activity_task_json(result.task)
        return None  # Rejected: stale dispatch (already started, closed, superseded)

    async def _poll_remote(self, address: str, namespace: str, task_queue: str, kind: TaskKind,
                           worker: Poller, timeout_s: float) -> Task | None:
        url = (f"{address}/api/v1/namespaces/{namespace}/task-queues/{task_queue}/"
               f"{kind.value}-tasks/poll?local=1")
        body = {"identity": worker.identity, "sticky_queue": worker.sticky_queue,
                "wait_ms": int(timeout_s * 1000)}
        try:
            async with self._session.post(
                url, json=body, headers={FORWARDED_HEADER: self._directory.node_id},
                timeout=aiohttp.ClientTimeout(total=timeout_s + 5),
            ) as answer:
                if answer.status == 204:
                    return None
                if answer.status != 200:
                    await asyncio.sleep(min(1.0, timeout_s))  # that node is down or busy
                    return None
                payload = await answer.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            await asyncio.sleep(min(1.0, timeout_s))
            return None
        return payload if isinstance(payload, dict) else None

    def _buffer_claim(self, key: QueueKey, claim: asyncio.Future[Task | None]) -> None:
        if claim.cancelled() or claim.exception() is not None:
            return
        task = claim.result()
        if task is None:
            return
        buffer = self._buffer.setdefault(key, deque())
        if len(buffer) < BUFFERED_TASKS_PER_QUEUE_MAX:
            buffer.append((time.monotonic(), task))

    def _take_buffered(self, key: QueueKey) -> Task | None:
        buffer = self._buffer.get(key)
        now = time.monotonic()
        while buffer:
            received, task = buffer.popleft()
            if now - received < BUFFERED_TASK_AGE_S:
                return task
        return None
