"""Cluster and node endpoints: health, node status, cluster status, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from raftflow.api.openapi import openapi_document
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.raftlog.interface import LogStatus

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


def _status_json(status: LogStatus) -> dict[str, object]:
    return {"shard": status.shard, "is_leader": status.is_leader, "leader": status.leader,
            "term": status.term, "commit_index": status.commit_index,
            "applied_index": status.applied_index, "last_index": status.last_index,
            "members": list(status.members)}


async def node_status(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    return web.json_response({
        "id": node.node_id, "address": node.public_address(node.node_id), "pid": os.getpid(),
        "shards": [_status_json(s) for s in node.local_status()],
    })


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


async def cluster_status(request: web.Request) -> web.StreamResponse:
    """Every node's own view, merged: per shard, the leader claimed in the highest term."""
    node = request.app[NODE_KEY]
    session = request.app[GATEWAY_KEY].session

    async def ask(node_id: str) -> tuple[str, dict[str, Any] | None]:
        address = node.http_address(node_id)
        try:
            async with session.get(f"{address}/api/v1/node/status",
                                   timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)) as answer:
                return node_id, await answer.json() if answer.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return node_id, None

    views = dict(await asyncio.gather(*(ask(n) for n in node.node_ids())))
    nodes = [{"id": n, "address": node.public_address(n),
              "pid": None if views[n] is None else views[n]["pid"],  # type: ignore[index]
              "alive": views[n] is not None} for n in node.node_ids()]
    reports = [shard for view in views.values() if view for shard in view["shards"]]
    shards = [_merge_shard(s, replicas, [r for r in reports if r["shard"] == s])
              for s, replicas in sorted(node.placement.items())]
    return web.json_response({"nodes": nodes, "shards": shards})


def _merge_shard(shard: int, replicas: tuple[str, ...], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One shard's line: a leader only if a live replica claims it, the highest term wins."""
    leaders = [r for r in reports if r["is_leader"]]
    leader = max(leaders, key=lambda r: r["term"]) if leaders else None
    return {"shard": shard, "leader": None if leader is None else leader["leader"],
            "replicas": list(replicas),
            "term": max((r["term"] for r in reports), default=0),
            "commit_index": max((r["commit_index"] for r in reports), default=0)}
