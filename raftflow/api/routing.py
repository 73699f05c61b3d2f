"""Routing: which node leads a shard, and forwarding a call there in one hop.

A call for shard S is handled locally when this node's replica of S leads it; otherwise it is
forwarded once to the leader this node knows of, marked with `X-Raftflow-Forwarded`. A node
that receives a forwarded call for a shard it does not lead answers 503 not_leader with
Retry-After instead of forwarding again, so a stale view can cost a retry but never a loop.

`Gateway.on_leader` is the one place that decision is made: every handler of a call addressed
to a shard (by namespace and workflow id, a task token's included) hands it the work to run on
the leader's actor and gets back the work's typed answer or the leader's relayed one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import aiohttp
from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.cluster.ring import shard_for
from raftflow.shards.actor import ShardActor

T = TypeVar("T")

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


@dataclass(frozen=True, slots=True)
class Relayed:
    """The answer of the shard's leader to a forwarded call, passed on as it came."""

    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RouteAgain:
    """What a piece of work returns after a wait (for a workflow's result): this node may have
    lost the shard meanwhile, so the call is routed again, here or to the new leader."""


Work = Callable[[ShardActor], Awaitable[T | RouteAgain]]


class Gateway:
    """Where a call runs: the one routing decision of the HTTP shell (`on_leader`), the node's
    clock for the `now_ms` of the commands it proposes, and the one-hop forward."""

    def __init__(self, directory: ShardDirectory, session: aiohttp.ClientSession) -> None:
        self.directory = directory
        self.session = session

    def now_ms(self) -> int:
        """This node's clock: the `now_ms` of commands it proposes (DESIGN §2.8). The node
        injects it; its shard actors propose with the same clock."""
        return self.directory.now_ms()

    def shard_of(self, namespace: str, workflow_id: str) -> int:
        return shard_for(namespace, workflow_id, self.directory.shard_count)

    def _local_leader(self, shard: int) -> ShardActor | None:
        actor = self.directory.actor(shard)
        if actor is not None and actor.is_leader():
            return actor
        return None

    async def on_leader(self, request: web.Request, shard: int, work: Work[T], *,
                        path_qs: str | None = None) -> T | Relayed:
        """Run `work` on this node's replica of `shard` if it leads the shard, else forward
        the call to the leader (one hop) and give back its answer.

        This is the only place a shard-addressed call is routed. `path_qs` names the call to
        forward when it is not `request`'s own (one shard's part of a list); it goes with
        `request`'s method and body. Raises NotLeaderError when no leader can be reached.
        """
        while True:  # turns again only after a RouteAgain; `work` bounds its waits
            actor = self._local_leader(shard)
            if actor is None:
                return await self._forward(request, shard, path_qs=path_qs)
            outcome = await work(actor)
            if not isinstance(outcome, RouteAgain):
                return outcome

    async def _forward(self, request: web.Request, shard: int, *,
                       path_qs: str | None = None) -> Relayed:
        """Send the call to the shard's leader and relay its answer (one hop at most)."""
        if request.headers.get(FORWARDED_HEADER):
            raise NotLeaderError(shard, "forwarded call reached a non-leader")
        leader = self.directory.leader_of(shard)
        address = None if leader is None else self.directory.http_address(leader)
        if leader is None or leader == self.directory.node_id or address is None:
            raise NotLeaderError(shard, "no leader known yet")
        return await self.relay(request, address, path_qs=path_qs,
                                served_by=self.directory.public_address(leader))

    async def relay(self, request: web.Request, address: str, *, path_qs: str | None = None,
                    served_by: str | None = None) -> Relayed:
        body = await request.read()
        headers = {FORWARDED_HEADER: self.directory.node_id}
        if request.content_type:
            headers["Content-Type"] = request.content_type
        try:
            async with self.session.request(
                request.method, address + (path_qs or request.path_qs), data=body,
                headers=headers, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
            ) as answer:
                payload = await answer.read()
                passed = {h: answer.headers[h] for h in _PASSED_HEADERS if h in answer.headers}
                # Who really answered: a worker handed a task in this answer (eager start)
                # sends the task's completion there, with no forwarding hop.
                passed[SERVED_BY_HEADER] = served_by or address
                return Relayed(status=answer.status, body=payload, headers=passed)
        except (TimeoutError, aiohttp.ClientError) as error:
            raise NotLeaderError(None, f"node at {address} unreachable ({type(error).__name__})") from error
