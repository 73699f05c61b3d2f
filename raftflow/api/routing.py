"""Routing: which node leads a shard, and forwarding a call there in one hop.

A call for shard S is handled locally when this node's replica of S leads it; otherwise it is
forwarded once to the leader this node knows of, marked with `X-Raftflow-Forwarded`. A node
that receives a forwarded call for a shard it does not lead answers 503 not_leader with
Retry-After instead of forwarding again, so a stale view can cost a retry but never a loop.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.shards.actor import ShardActor

# Set on a relayed answer: the HTTP address of the node (the shard's leader) that gave it.
SERVED_BY_HEADER = "X-Raftflow-Served-By"
FORWARDED_HEADER = "X-Raftflow-Forwarded"
# A forwarded call may wait for a commit or a long poll; the caller's own timeout still rules.
FORWARD_TIMEOUT_S = 75.0
_PASSED_HEADERS = ("Content-Type", "Retry-After")


class ShardDirectory(Protocol):
    """What the gateway needs to know about the cluster (implemented by the node runtime)."""

    @property
    def node_id(self) -> str: ...

    @property
    def shard_count(self) -> int: ...

    def actor(self, shard: int) -> ShardActor | None:
        """This node's replica of `shard`, if it holds one."""

    def now_ms(self) -> int:
        """This node's wall clock (the one its actors propose with; a chaos run may skew it)."""

    def leader_of(self, shard: int) -> str | None:
        """The node this node believes leads `shard`."""

    def http_address(self, node_id: str) -> str | None:
        """Where this node reaches `node_id`'s HTTP API (a chaos run may route it via a proxy)."""

    def public_address(self, node_id: str) -> str | None:
        """`node_id`'s own address, as clients reach it (named in `X-Raftflow-Served-By`)."""

    def node_ids(self) -> list[str]: ...


class Gateway:
    def __init__(self, directory: ShardDirectory, session: aiohttp.ClientSession) -> None:
        self.directory = directory
        self.session = session

    def now_ms(self) -> int:
        """This node's clock: the `now_ms` of commands it proposes (DESIGN §2.8)."""
        return self.directory.now_ms()

    def local_leader(self, shard: int) -> ShardActor | None:
        actor = self.directory.actor(shard)
        if actor is not None and actor.is_leader():
            return actor
        return None

    async def forward(self, request: web.Request, shard: int) -> web.StreamResponse:
        """Send the call to the shard's leader and relay its answer (one hop at most)."""
        if request.headers.get(FORWARDED_HEADER):
            raise NotLeaderError(shard, "forwarded call reached a non-leader")
        leader = self.directory.leader_of(shard)
        address = None if leader is None else self.directory.http_address(leader)
        if leader is None or leader == self.directory.node_id or address is None:
            raise NotLeaderError(shard, "no leader known yet")
        return await self.relay(request, address,
                                served_by=self.directory.public_address(leader))

    async def relay(self, request: web.Request, address: str, *,
                    served_by: str | None = None) -> web.StreamResponse:
        body = await request.read()
        headers = {FORWARDED_HEADER: self.directory.node_id}
        if request.content_type:
            headers["Content-Type"] = request.content_type
        try:
            async with self.session.request(
                request.method, address + request.path_qs, data=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
            ) as answer:
                payload = await answer.read()
                passed = {h: answer.headers[h] for h in _PASSED_HEADERS if h in answer.headers}
                # Who really answered: a worker handed a task in this answer (eager start)
                # sends the task's completion there, with no forwarding hop.
                passed[SERVED_BY_HEADER] = served_by or address
                return web.Response(status=answer.status, body=payload, headers=passed)
        except (TimeoutError, aiohttp.ClientError) as error:
            raise NotLeaderError(None, f"node at {address} unreachable ({type(error).__name__})") from error
