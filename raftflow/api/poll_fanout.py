"""The legs of a gateway poll on the other nodes, and the ends of those polls.

A gateway poll waits on every node at once under one poll id (polling.py). Each other node
gets a leg, `POST .../{kind}-tasks/poll?local=1&poll_id=...`, which that node serves from its
own matcher, claiming the task there. A leg is never cut short: the other node may already
have claimed a task and written its answer, and a cut would leave that task started for
nobody. Instead, once the poll has its task, the gateway ends the poll id on the nodes whose
legs still wait (`POST /api/v1/tasks/poll/end`); such a leg then answers 204, or the task it
claimed meanwhile, which the gateway gives back (polling.py).

Ends bound for one node travel together: the ids ended while a call to that node is on its
way go in the next call (group commit's trick), so ends cost far less than one call each.

Legs have their own connection pool. A leg holds its connection for its whole wait, and idle
workers' polls wait long: in the node's shared pool (aiohttp's default, 100 connections),
fifty idle polls on a node of three took every connection, and every call the node forwarded
to a shard's leader waited behind them, for up to a poll's whole wait (measured: 14 s with
120 polls of 10 s; 30 s and more with the SDK's polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from ssl import SSLContext

import aiohttp

from raftflow.api.poll_types import PolledTask, Poller
from raftflow.api.routing import FORWARDED_HEADER, SERVED_BY_HEADER
from raftflow.protocol import http_bodies
from raftflow.protocol.commands import TaskKind

log = logging.getLogger(__name__)

POLL_END_PATH = "/api/v1/tasks/poll/end"
# Ids per end call: the receiving node decodes the body with the same bound.
POLL_ENDS_PER_CALL_MAX = http_bodies.POLL_ENDS_PER_CALL_MAX
# Ids waiting to be sent to one node. Beyond it an end is dropped: that leg then waits until
# its own deadline, and a task it claims is given back all the same (only later).
POLL_ENDS_PENDING_MAX = 10_000
# A leg's HTTP call may outlast its wait by this much (a slow answer or a claim's commit).
LEG_GRACE_S = 5.0
POLL_END_TIMEOUT_S = 5.0
# Legs open at once from this node (one per gateway poll and other node). Beyond it a leg waits
# for a connection within its own deadline; forwarded calls never do (they use another pool).
# Kept well below the usual 1024 file descriptors per process.
LEG_CONNECTIONS_MAX = 512


class RemotePolls:
    """Legs of gateway polls on other nodes, and the batched ends of those polls."""

    def __init__(self, session: aiohttp.ClientSession, node_id: str, *,
                 ssl: SSLContext | bool = True) -> None:
        self._ssl = ssl  # the node's client context when nodes serve HTTPS
        self._session = session  # the node's: ends (short calls) go with forwarded calls
        self._legs: aiohttp.ClientSession | None = None
        self._node_id = node_id
        self._ends: dict[str, list[str]] = {}  # address -> poll ids to end there
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def close(self) -> None:
        senders = list(self._senders.values())
        for sender in senders:
            sender.cancel()
        for sender in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if self._legs is not None:
            await self._legs.close()

    async def leg(self, address: str, namespace: str, task_queue: str, kind: TaskKind,
                  worker: Poller, timeout_s: float, poll_id: str) -> PolledTask | None:
        """Wait on `address`'s matcher for a task; None when it had none (or is down)."""
        url = (f"{address}/api/v1/namespaces/{namespace}/task-queues/{task_queue}/"
               f"{kind.value}-tasks/poll")
        body = {"identity": worker.identity, "sticky_queue": worker.sticky_queue,
                "wait_ms": int(timeout_s * 1000)}
        if self._legs is None:
            # The node session's headers: its credential (a leg is the node's own call).
            self._legs = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=LEG_CONNECTIONS_MAX, ssl=self._ssl),
                headers=self._session.headers)
        try:
            async with self._legs.post(
                url, params={"local": "1", "poll_id": poll_id}, json=body,
                headers={FORWARDED_HEADER: self._node_id},
                timeout=aiohttp.ClientTimeout(total=timeout_s + LEG_GRACE_S),
            ) as answer:
                if answer.status != 200:
                    return None  # 204: nothing there; other: that node is down or busy
                payload = await answer.json()
                served_by = answer.headers.get(SERVED_BY_HEADER, "")
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            # A node that is down costs this poll nothing: the other legs still wait.
            log.debug("poll leg to %s failed: %r", address, error)
            return None
        return PolledTask(payload=payload, served_by=served_by) if isinstance(
            payload, dict) else None

    def end(self, address: str, poll_id: str) -> None:
        """End `poll_id` on `address` soon (sent with the other ids bound there)."""
        ids = self._ends.setdefault(address, [])
        if len(ids) >= POLL_ENDS_PENDING_MAX:
            return
        ids.append(poll_id)
        if address not in self._senders:
            self._senders[address] = asyncio.get_running_loop().create_task(
                self._send_ends(address))

    async def _send_ends(self, address: str) -> None:
        try:
            while ids := self._ends.get(address):
                batch = ids[:POLL_ENDS_PER_CALL_MAX]
                del ids[:POLL_ENDS_PER_CALL_MAX]
                try:
                    async with self._session.post(
                        address + POLL_END_PATH, json={"poll_ids": batch},
                        headers={FORWARDED_HEADER: self._node_id},
                        timeout=aiohttp.ClientTimeout(total=POLL_END_TIMEOUT_S),
                    ) as answer:
                        await answer.read()
                except (TimeoutError, aiohttp.ClientError) as error:
                    # That node is down or slow: its legs end at their own deadline.
                    log.debug("ending %d polls on %s failed: %r", len(batch), address, error)
        finally:
            self._senders.pop(address, None)
