"""Cluster and node endpoints: health, node status, cluster status, metrics, OpenAPI.

Cluster status merges every node's own view of its replicas (`NodeReport`): this node's is
read in-process, the others' are asked over HTTP, each once.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web

from raftflow.api.openapi import openapi_document
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol.history_json import JsonValue
from raftflow.raftlog.interface import LogStatus, NodeId, ShardId

STATUS_TIMEOUT_S = 1.0


class NodeView(Protocol):
    """What the admin endpoints read of the node runtime."""

    @property
    def node_id(self) -> str: ...

    placement: dict[int, tuple[str, ...]]

    def local_status(self) -> list[LogStatus]: ...

    def http_address(self, node_id: str) -> str | None: ...

    def public_address(self, node_id: str) -> str | None: ...

    def node_ids(self) -> list[str]: ...

    def replica_digests(self) -> list[tuple[int, int, str]]: ...


NODE_KEY: web.AppKey[NodeView] = web.AppKey("node", NodeView)


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok", "node": request.app[NODE_KEY].node_id})


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One node's own view of its replicas: the answer of its `GET /api/v1/node/status`."""

    node_id: str
    address: str | None  # its public address
    pid: int
    shards: tuple[LogStatus, ...]

    def json(self) -> dict[str, JsonValue]:
        return {"id": self.node_id, "address": self.address, "pid": self.pid,
                "shards": [_status_json(s) for s in self.shards]}

    @staticmethod
    def from_json(node_id: str, payload: object) -> NodeReport | None:
        """The report another node sent; None when it is not one (that node counts as down)."""
        try:
            if not isinstance(payload, dict) or not isinstance(payload["shards"], list):
                raise ValueError("not a node status")
            address = payload.get("address")
            return NodeReport(node_id=node_id, address=None if address is None else str(address),
                              pid=_integer(payload["pid"]),
                              shards=tuple(_status_from_json(s) for s in payload["shards"]))
        except (KeyError, TypeError, ValueError):
            return None


def _status_json(status: LogStatus) -> dict[str, JsonValue]:
    return {"shard": status.shard, "is_leader": status.is_leader, "leader": status.leader,
            "term": status.term, "commit_index": status.commit_index,
            "applied_index": status.applied_index, "last_index": status.last_index,
            "members": list(status.members)}


def _status_from_json(raw: dict[str, object]) -> LogStatus:
    leader = raw["leader"]
    members = raw["members"]
    if not isinstance(members, list):
        raise ValueError("members: not a list")
    return LogStatus(shard=ShardId(_integer(raw["shard"])), is_leader=bool(raw["is_leader"]),
                     leader=None if leader is None else NodeId(str(leader)),
                     term=_integer(raw["term"]), commit_index=_integer(raw["commit_index"]),
                     applied_index=_integer(raw["applied_index"]),
                     last_index=_integer(raw["last_index"]),
                     members=tuple(NodeId(str(m)) for m in members))


def _integer(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return value


def _own_report(node: NodeView) -> NodeReport:
    return NodeReport(node_id=node.node_id, address=node.public_address(node.node_id),
                      pid=os.getpid(), shards=tuple(node.local_status()))


async def node_status(request: web.Request) -> web.StreamResponse:
    return web.json_response(_own_report(request.app[NODE_KEY]).json())


async def node_digests(request: web.Request) -> web.StreamResponse:
    """Each local replica's applied index and state digest (DESIGN §4 I2: replicas that applied
    the same index hold byte-identical state). Costs a full serialisation of every shard, so it
    is for checks at quiescence (the chaos checker), not for monitoring."""
    node = request.app[NODE_KEY]
    return web.json_response({
        "id": node.node_id,
        "shards": [{"shard": shard, "applied_index": index, "digest": digest}
                   for shard, index, digest in node.replica_digests()],
    })


@dataclass(frozen=True, slots=True)
class NodeLine:
    node_id: str
    address: str | None
    pid: int | None  # None when the node did not answer
    alive: bool


@dataclass(frozen=True, slots=True)
class ShardLine:
    shard: int
    leader: str | None
    replicas: tuple[str, ...]
    term: int
    commit_index: int


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    nodes: tuple[NodeLine, ...]
    shards: tuple[ShardLine, ...]

    def json(self) -> dict[str, JsonValue]:
        return {"nodes": [{"id": n.node_id, "address": n.address, "pid": n.pid,
                           "alive": n.alive} for n in self.nodes],
                "shards": [{"shard": s.shard, "leader": s.leader, "replicas": list(s.replicas),
                            "term": s.term, "commit_index": s.commit_index}
                           for s in self.shards]}


async def cluster_status(request: web.Request) -> web.StreamResponse:
    """Every node's own view, merged: per shard, the leader claimed in the highest term."""
    node = request.app[NODE_KEY]
    session = request.app[GATEWAY_KEY].session

    async def ask(node_id: str) -> NodeReport | None:
        if node_id == node.node_id:
            return _own_report(node)  # this node answers itself, in-process
        address = node.http_address(node_id)
        try:
            async with session.get(f"{address}/api/v1/node/status",
                                   timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)) as answer:
                if answer.status != 200:
                    return None
                return NodeReport.from_json(node_id, await answer.json())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    node_ids = node.node_ids()
    views = await asyncio.gather(*(ask(n) for n in node_ids))
    nodes = [NodeLine(node_id=n, address=node.public_address(n),
                      pid=None if view is None else view.pid, alive=view is not None)
             for n, view in zip(node_ids, views, strict=True)]
    reports = [status for view in views if view is not None for status in view.shards]
    shards = [_merge_shard(s, replicas, [r for r in reports if r.shard == s])
              for s, replicas in sorted(node.placement.items())]
    return web.json_response(ClusterStatus(nodes=tuple(nodes), shards=tuple(shards)).json())


def _merge_shard(shard: int, replicas: tuple[str, ...], reports: list[LogStatus]) -> ShardLine:
    """One shard's line: a leader only if a live replica claims it, the highest term wins."""
    leaders = [r for r in reports if r.is_leader]
    leader = max(leaders, key=lambda r: r.term) if leaders else None
    return ShardLine(shard=shard, leader=None if leader is None else leader.leader,
                     replicas=replicas,
                     term=max((r.term for r in reports), default=0),
                     commit_index=max((r.commit_index for r in reports), default=0))
