"""Routing: which node leads a shard, and forwarding a call there in one hop.

A call for shard S is handled locally when this node's replica of S leads it; otherwise it is
forwarded to the leader this node knows of, marked with `X-Raftflow-Forwarded` (the hops so
far). Leadership moves (hand-offs, replica moves, a draining node), so the node a call was
forwarded to may have just lost the shard: it forwards once more to the leader it knows (the
node the call came from included: a hand-off often goes just there), and never beyond
`FORWARD_HOPS_MAX` hops; otherwise it answers 503 not_leader with Retry-After. A stale view can
so cost a hop or a retry, never a loop. While a shard elects a leader (no leader known), a call waits up to
`LEADER_WAIT_S` for one rather than failing at once.
A leader that cannot be reached, or stops answering while a forwarded call waits (a dead
node, a blackholed link: peer_liveness.py), costs the call a few seconds and the same 503, so
the client retries on another node instead of waiting out its timeout.

`Gateway.on_leader` is the one place that decision is made: every handler of a call addressed
to a shard (by namespace and workflow id, a task token's included) hands it the work to run on
the leader's actor and gets back the work's typed answer or the leader's relayed one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from ssl import SSLContext
from typing import Protocol, TypeVar

import aiohttp
from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.api.access import caller_headers
from raftflow.api.peer_liveness import PeerLiveness, PeerSilentError
from raftflow.api.request_traces import TRACEPARENT_HEADER, request_traceparent
from raftflow.api.task_tokens import TaskTokens
from raftflow.cluster.ring import shard_for
from raftflow.shards.actor import ShardActor

T = TypeVar("T")

# Set on a relayed answer: the HTTP address of the node (the shard's leader) that gave it.
SERVED_BY_HEADER = "X-Raftflow-Served-By"
FORWARDED_HEADER = "X-Raftflow-Forwarded"  # the hops the call has made so far
FORWARDED_FROM_HEADER = "X-Raftflow-Forwarded-By"  # the node that forwarded it last
# A call is forwarded at most this often: once by the node it reached, once more by a leader
# that lost the shard meanwhile (its view is the freshest: it just took part in the change).
FORWARD_HOPS_MAX = 2
# An election takes ~1 s (raftlog/limits.py): a call for a shard without a known leader waits
# this long for one, looking every LEADER_POLL_S.
LEADER_WAIT_S = 2.0
LEADER_POLL_S = 0.05
# A forwarded call may wait for a commit or a long poll; the caller's own timeout still rules.
# A dead or blackholed peer does not cost this: the call fails over once the peer stops
# answering probes (peer_liveness.py), within a few seconds.
FORWARD_TIMEOUT_S = 75.0
# A peer whose port does not even complete a connection in this long is down (on loopback or
# a LAN a handshake takes well under a millisecond; a dropped SYN is retried after 1 s).
FORWARD_CONNECT_TIMEOUT_S = 2.0
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


@dataclass(frozen=True, slots=True)
class OutgoingCall:
    """A call that did not come as an HTTP request of its own (one of a task stream's calls,
    task_stream_handler.py), as `relay` sends it on: what a request would have carried."""

    method: str
    path_qs: str
    body: bytes
    hops: int  # forwards so far (0: straight from a worker)
    headers: Mapping[str, str]  # the caller's principal (access.caller_headers), trace context
    content_type: str = "application/json"


# What a call to route came as: an HTTP request, or a call read from a task stream.
CallSource = web.Request | OutgoingCall


class Gateway:
    """Where a call runs: the one routing decision of the HTTP shell (`on_leader`), the node's
    clock for the `now_ms` of the commands it proposes, and the one-hop forward."""

    def __init__(self, directory: ShardDirectory, session: aiohttp.ClientSession,
                 tokens: TaskTokens, *, ssl: SSLContext | bool = True,
                 on_forward: Callable[[], None] = lambda: None) -> None:
        self.directory = directory
        self._on_forward = on_forward  # counts forwarded calls (raftflow_forwarded_calls)
        self.session = session
        self.tokens = tokens  # signs the task tokens this node hands out, checks returned ones
        self._liveness = PeerLiveness(ssl)

    async def close(self) -> None:
        """Stop probing peers (the node's session is the node's to close)."""
        await self._liveness.close()

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

    async def on_leader(self, request: CallSource, shard: int, work: Work[T], *,
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

    async def _forward(self, request: CallSource, shard: int, *,
                       path_qs: str | None = None) -> Relayed:
        """Send the call to the shard's leader and relay its answer (FORWARD_HOPS_MAX hops)."""
        hops = _hops(request)
        if hops >= FORWARD_HOPS_MAX:
            raise NotLeaderError(shard, "forwarded call reached a non-leader")
        leader = await self._known_leader(shard)
        address = None if leader is None else self.directory.http_address(leader)
        if leader is None or leader == self.directory.node_id or address is None:
            raise NotLeaderError(shard, "no leader known yet")
        self._on_forward()
        return await self.relay(request, address, path_qs=path_qs,
                                served_by=self.directory.public_address(leader))

    async def _known_leader(self, shard: int) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEADER_WAIT_S
        while True:
            leader = self.directory.leader_of(shard)
            if leader is not None and leader != self.directory.node_id:
                return leader
            if self._local_leader(shard) is not None or loop.time() >= deadline:
                return leader
            await asyncio.sleep(LEADER_POLL_S)

    async def relay(self, request: CallSource, address: str, *, path_qs: str | None = None,
                    served_by: str | None = None) -> Relayed:
        """Send `request` to the node at `address` and give back its answer.

        Raises NotLeaderError (503 + Retry-After: the caller retries, on another node if it
        knows one) when the node cannot be reached or stops answering while the call waits;
        the call may then still have been applied there, as after any timeout, and a retry
        with the same request id gets the first answer (I5)."""
        call = request if isinstance(request, OutgoingCall) else await outgoing(request)
        # The node credential travels in the session's own headers; the caller's principal
        # goes with it, so the node that runs the call authorizes it as this one did.
        headers = {FORWARDED_HEADER: str(call.hops + 1),
                   FORWARDED_FROM_HEADER: self.directory.node_id, **call.headers}
        if call.content_type:
            headers["Content-Type"] = call.content_type
        exchange = asyncio.ensure_future(self._exchange(
            call.method, address + (path_qs or call.path_qs), call.body, headers,
            served_by or address))
        try:
            relayed = await self._liveness.await_answer(address, exchange)
        except (TimeoutError, aiohttp.ClientError) as error:
            raise NotLeaderError(None, f"node at {address} unreachable ({type(error).__name__})") from error
        except PeerSilentError as error:
            raise NotLeaderError(None, str(error)) from error
        finally:
            # Also when our caller left: the forward goes with it (the peer's handler is
            # cancelled as for any client that hangs up).
            if not exchange.done():
                exchange.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError, aiohttp.ClientError):
                    await exchange
        self._liveness.heard_from(address)
        return relayed

    async def _exchange(self, method: str, url: str, body: bytes, headers: Mapping[str, str],
                        served_by: str) -> Relayed:
        timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S,
                                        sock_connect=FORWARD_CONNECT_TIMEOUT_S)
        async with self.session.request(method, url, data=body, headers=headers,
                                        timeout=timeout) as answer:
            payload = await answer.read()
            passed = {h: answer.headers[h] for h in _PASSED_HEADERS if h in answer.headers}
            # Who really answered: a worker handed a task in this answer (eager start)
            # sends the task's completion there, with no forwarding hop.
            passed[SERVED_BY_HEADER] = served_by
            return Relayed(status=answer.status, body=payload, headers=passed)


async def outgoing(request: web.Request) -> OutgoingCall:
    """`request` as `relay` sends it on: its caller's principal, and its trace context (W3C
    Trace Context; with tracing on here, the context of this node's span: request_traces.py)."""
    headers = caller_headers(request)
    traceparent = request_traceparent(request)
    if traceparent:
        headers[TRACEPARENT_HEADER] = traceparent
    return OutgoingCall(method=request.method, path_qs=request.path_qs,
                        body=await request.read(), hops=_hops(request), headers=headers,
                        content_type=request.content_type)


def _hops(request: CallSource) -> int:
    """How often the call was forwarded before it reached this node (0: from a client).

    Nodes of the previous release send their node id in the header: one hop."""
    if isinstance(request, OutgoingCall):
        return request.hops
    raw = request.headers.get(FORWARDED_HEADER)
    if not raw:
        return 0
    return int(raw) if raw.isdigit() and len(raw) <= 2 else 1
