"""Cluster and node endpoints: health, node status, cluster status, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import os
from typing import Protocol

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

    def node_ids(self) -> list[str]: ...


NODE_KEY: web.AppKey[NodeView] = web.AppKey("node", NodeView)  # type: ignore[type-abstract]


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
        "id": node.node_id, "address": node.http_address(node.node_id), "pid": os.getpid(),
        "shards": [_status_json(s) for s in node.local_status()],
    })


async def cluster_status(request: web.Request) -> web.StreamResponse:
    """Every node's own view, merged: per shard, the leader claimed in the highest term."""
    node = request.app[NODE_KEY]
    session = request.app[GATEWAY_KEY].session

    async def ask(node_id: str) -> tuple[str, dict[str, object] | None]:
        address = node.http_address(node_id)
        try:
            async with session.get(f"{address}/api/v1/node/status",
                                   timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)) as answer:
                return node_id, await answer.json() if answer.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return node_id, None

    views = dict(await asyncio.gather(*(ask(n) for n in node.node_ids())))
    nodes = [{"id": n, "address": node.http_address(n),
              "pid": None if views[n] is None else views[n]["pid"],  # type: ignore[index]
              "alive": views[n] is not None} for n in node.node_ids()]
    best: dict[int, dict[str, object]] = {}
    for view in views.values():
        for shard in (view or {}).get("shards", []):  # type: ignore[union-attr]
            current = best.setdefault(shard["shard"], {"term": -1, "leader": None, "commit_index": 0})
            if shard["commit_index"] > current["commit_index"]:  # type: ignore[operator]
                current["commit_index"] = shard["commit_index"]
            if shard["is_leader"] and shard["term"] >= current["term"]:  # type: ignore[operator]
                current["leader"], current["term"] = shard["leader"], shard["term"]
            elif shard["term"] > current["term"] and current["leader"] is None:  # type: ignore[operator]
                current["term"] = shard["term"]
    shards = [{"shard": s, "leader": best.get(s, {}).get("leader"),
               "replicas": list(replicas), "term": max(0, int(best.get(s, {}).get("term", 0))),  # type: ignore[call-overload]
               "commit_index": best.get(s, {}).get("commit_index", 0)}
              for s, replicas in sorted(node.placement.items())]
    return web.json_response({"nodes": nodes, "shards": shards})
