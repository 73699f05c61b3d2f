"""Long polls for workflow and activity tasks, across every shard of the cluster.

A worker connected to any one node must receive tasks from every shard (DESIGN §5), but a
task is ready only on its shard's leader. One mechanism spreads a poll over the cluster: the
gateway's. A poll takes a task ready on its own node first (no hop); otherwise it waits on
every node at once, under one poll id: here on this node's matcher, elsewhere through a leg
(`poll_fanout.RemotePolls`, `?local=1`, served by that node's `poll_local`).

Handing a task out is the `Record*TaskStarted` command, committed before the task leaves the
node (so a task is never given twice). A task claimed for a poll reaches that poll's caller or
is given back at once, never parked where no poll looks:
- the first task any leg brings is the answer; the poll id is then ended on every node whose
  leg still waits, and each such leg answers nothing or the task it claimed meanwhile;
- every task beyond the answer (legs finishing together, late answers) goes back into this
  node's matcher as a `StartedTask`, which a poll waiting here gets at once and which every
  poll reaching this node (its own first look, any gateway's leg) takes before ready tasks;
- a claim whose caller left (its handler cancelled) is given back the same way where it ran.
A given-back task nobody takes within `matching.limits.STARTED_TASK_AGE_S` is dropped, and
the server's task timeout retries it. A hand-out whose commit is in doubt (`not_leader` or
`timeout` after it was proposed) is asked again, with its request id, of the shard's leader
wherever it now is (handouts.py), so a committed hand-out still reaches its poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from functools import partial
from ssl import SSLContext
from typing import Protocol

import aiohttp

from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.api.handouts import Handout, HandoutSettler, started_task
from raftflow.api.poll_fanout import LEG_GRACE_S, RemotePolls
from raftflow.api.poll_types import POLL_TIMEOUT_S_MAX, PolledTask, Poller
from raftflow.api.routing import ShardDirectory
from raftflow.api.task_tokens import TaskTokens
from raftflow.matching.items import QueueKey, ReadyTask, StartedTask
from raftflow.matching.matcher import Matcher
from raftflow.protocol.commands import (
    RecordActivityTaskStarted,
    RecordWorkflowTaskStarted,
    TaskKind,
)
from raftflow.protocol.effects import DispatchActivityTask
from raftflow.protocol.errors import RaftflowError

log = logging.getLogger(__name__)

Leg = asyncio.Future[PolledTask | None]


class DispatchCounter(Protocol):
    def record_tasks_dispatched(self, kind: str, count: int = 1) -> None: ...

    def observe_schedule_to_start(self, namespace: str, task_queue: str, kind: str,
                                  waited_s: float) -> None: ...


class TaskPoller:
    def __init__(self, directory: ShardDirectory, matcher: Matcher,
                 session: aiohttp.ClientSession, tokens: TaskTokens,
                 metrics: DispatchCounter | None = None, *,
                 ssl: SSLContext | bool = True) -> None:
        self._metrics = metrics
        self._directory = directory
        self._tokens = tokens
        self._matcher = matcher
        self._remote = RemotePolls(session, directory.node_id, ssl=ssl)
        self._handouts = HandoutSettler(directory, session, tokens)
        self._claims: set[asyncio.Future[PolledTask | None]] = set()
        self._late_legs: set[Leg] = set()  # legs still running after their poll answered

    async def close(self) -> None:
        await self._remote.close()
        running = [*self._claims, *self._late_legs]
        for future in running:
            future.cancel()
        for future in running:
            with contextlib.suppress(asyncio.CancelledError, RaftflowError):
                await future

    async def poll_cluster(self, namespace: str, task_queue: str, kind: TaskKind,
                           worker: Poller, timeout_s: float) -> PolledTask | None:
        """A task from any node, waiting up to `timeout_s`; one ready here goes first."""
        here = await self.poll_local(namespace, task_queue, kind, worker, 0.0)
        if here is not None:
            return here
        timeout_s = min(timeout_s, POLL_TIMEOUT_S_MAX)
        if timeout_s <= 0:
            return None
        others = self._other_nodes()
        if not others:
            return await self.poll_local(namespace, task_queue, kind, worker, timeout_s)
        key = (namespace, task_queue, kind)
        poll_id = uuid.uuid4().hex
        legs: dict[Leg, str | None] = {asyncio.ensure_future(self.poll_local(
            namespace, task_queue, kind, worker, timeout_s, poll_id)): None}
        for address in others:
            legs[asyncio.ensure_future(self._remote.leg(
                address, namespace, task_queue, kind, worker, timeout_s, poll_id))] = address
        winner: Leg | None = None
        try:
            winner = await _first_with_task(legs, timeout_s + LEG_GRACE_S)
            return None if winner is None else winner.result()
        finally:
            # Also when our caller left (cancelled): no leg is cut, each is ended instead.
            self._end_poll(key, poll_id, legs, winner)

    async def poll_local(self, namespace: str, task_queue: str, kind: TaskKind, worker: Poller,
                         timeout_s: float, poll_id: str | None = None) -> PolledTask | None:
        """A task from this node's matcher, waiting up to `timeout_s` (0: only one ready now);
        None on timeout or once the poll `poll_id` is ended here."""
        key = (namespace, task_queue, kind)
        deadline = time.monotonic() + min(timeout_s, POLL_TIMEOUT_S_MAX)
        while True:  # each turn takes one task; a stale one (claim refused) is skipped
            remaining_s = max(0.0, deadline - time.monotonic())
            item = await self._matcher.take(namespace, task_queue, kind, remaining_s, poll_id)
            if item is None:
                return None
            if isinstance(item, StartedTask):
                return PolledTask(payload=item.payload, served_by=item.served_by)
            if not isinstance(item, ReadyTask):
                return PolledTask(payload=item.payload, served_by=self._served_by())  # a query
            task = await self._claim_for_caller(key, item, worker)
            if task is not None:
                return task

    def end_polls(self, poll_ids: Iterable[str]) -> None:
        """End those gateway polls here: their legs answer now (nothing, or a claimed task)."""
        for poll_id in poll_ids:
            self._matcher.end_poll(poll_id)

    async def _claim_for_caller(self, key: QueueKey, ready: ReadyTask,
                                worker: Poller) -> PolledTask | None:
        # The claim runs to completion even if our caller leaves: a cancelled proposal may
        # still commit, so its outcome is awaited and a started task is given back.
        claim = asyncio.ensure_future(self._claim(ready, worker))
        self._claims.add(claim)
        claim.add_done_callback(self._claims.discard)
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            claim.add_done_callback(partial(self._give_back_result, key))
            raise

    async def _claim(self, ready: ReadyTask, worker: Poller) -> PolledTask | None:
        """Commit the hand-out; None when the dispatch went stale or the shard moved."""
        actor = self._directory.actor(ready.shard)
        if actor is None:
            return None
        command = _handout(ready, worker, self._directory.now_ms(), uuid.uuid4().hex)
        try:
            proposed = actor.submit(command)
        except RaftflowError:  # not leader any more, or overloaded: nothing was proposed
            return None
        try:
            task = started_task(await proposed, self._served_by(), self._tokens)
        except (NotLeaderError, ProposalTimeoutError):
            # In doubt: the proposal may still commit and start the task for nobody. The
            # shard's leader, wherever it now is, is asked again with the same request id.
            task = await self._handouts.settle(ready.shard, command)
        except RaftflowError:
            return None
        if task is not None and self._metrics is not None:
            kind = ready.kind.value
            self._metrics.record_tasks_dispatched(kind)
            # Waited in this node's matcher (eager hand-outs never queue and are not seen).
            self._metrics.observe_schedule_to_start(
                ready.dispatch.namespace, ready.dispatch.task_queue, kind,
                time.monotonic() - ready.offered_at)
        return task

    def _end_poll(self, key: QueueKey, poll_id: str, legs: dict[Leg, str | None],
                  winner: Leg | None) -> None:
        """Every leg but the winner's: ended where it still waits, its task given back."""
        self._matcher.end_poll(poll_id)
        for leg, address in legs.items():
            if leg is winner:
                continue
            if not leg.done():
                if address is not None:
                    self._remote.end(address, poll_id)
                self._late_legs.add(leg)
            leg.add_done_callback(partial(self._give_back_result, key))

    def _give_back_result(self, key: QueueKey, future: asyncio.Future[PolledTask | None]) -> None:
        self._late_legs.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("poll of %s ended in an error", key, exc_info=error)
            return
        task = future.result()
        if task is not None:
            namespace, task_queue, kind = key
            self._matcher.offer_started(StartedTask(
                namespace=namespace, task_queue=task_queue, kind=kind, payload=task.payload,
                served_by=task.served_by, offered_at=time.monotonic()))

    def _other_nodes(self) -> list[str]:
        addresses = []
        for node_id in self._directory.node_ids():
            address = self._directory.http_address(node_id)
            if node_id != self._directory.node_id and address is not None:
                addresses.append(address)
        return addresses

    def _served_by(self) -> str:
        return self._directory.public_address(self._directory.node_id) or ""


def _handout(ready: ReadyTask, worker: Poller, now_ms: int, request_id: str) -> Handout:
    """The command handing `ready` to `worker` under `request_id`."""
    d = ready.dispatch
    if isinstance(d, DispatchActivityTask):
        return RecordActivityTaskStarted(
            now_ms=now_ms, namespace=d.namespace, workflow_id=d.workflow_id, run_id=d.run_id,
            scheduled_event_id=d.scheduled_event_id, attempt=d.attempt,
            identity=worker.identity, request_id=request_id)
    return RecordWorkflowTaskStarted(
        now_ms=now_ms, namespace=d.namespace, workflow_id=d.workflow_id, run_id=d.run_id,
        scheduled_event_id=d.scheduled_event_id, identity=worker.identity,
        request_id=request_id, sticky_queue=worker.sticky_queue)


async def _first_with_task(legs: Iterable[Leg], timeout_s: float) -> Leg | None:
    """The first leg to finish with a task; None once all finished empty, or at `timeout_s`
    (a leg hung past its own deadline). Legs that finish together: one wins, the caller
    gives back the others."""
    pending = set(legs)
    deadline = time.monotonic() + timeout_s
    while pending:
        done, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()),
                                           return_when=asyncio.FIRST_COMPLETED)
        if not done:
            return None
        for leg in done:
            if not leg.cancelled() and leg.exception() is None and leg.result() is not None:
                return leg
    return None
