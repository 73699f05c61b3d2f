"""Cluster and node endpoints: health, node status, cluster status, metrics, OpenAPI.

Cluster status merges every node's own view of its replicas (`NodeReport`): this node's is
read in-process, the others' are asked over HTTP, each once.
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import msgspec
from aiohttp import web

from raftflow.api.openapi import openapi_document
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.cluster.cluster_map import ClusterMap
from raftflow.protocol import http_answers as wire
from raftflow.raftlog.interface import LogStatus, NodeId, ShardId

STATUS_TIMEOUT_S = 1.0


class NodeView(Protocol):
    """What the admin endpoints read of the node runtime."""

    @property
    def node_id(self) -> str: ...

    @property
    def cluster_map(self) -> ClusterMap: ...

    def local_status(self) -> list[LogStatus]: ...

    def http_address(self, node_id: str) -> str | None: ...

    def public_address(self, node_id: str) -> str | None: ...

    def node_ids(self) -> list[str]: ...

    def replica_digests(self) -> list[tuple[int, int, str, int]]: ...


NODE_KEY: web.AppKey[NodeView] = web.AppKey("node", NodeView)
SECURED_KEY: web.AppKey[bool] = web.AppKey("secured", bool)  # auth on: access.py


def _json(body: msgspec.Struct) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


async def healthz(request: web.Request) -> web.StreamResponse:
    return _json(wire.Health(status="ok", node=request.app[NODE_KEY].node_id))


@functools.cache
def _openapi_json(secured: bool) -> bytes:
    """The document is a function of the code and of whether this node has auth on: built
    once per shape, served as the same bytes."""
    return msgspec.json.encode(openapi_document(secured=secured))


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=_openapi_json(request.app[SECURED_KEY]),
                        content_type="application/json")


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One node's own view of its replicas: the answer of its `GET /api/v1/node/status`."""

    node_id: str
    address: str | None  # its public address
    pid: int
    shards: tuple[LogStatus, ...]  # the meta group's too, as group -1
    map_epoch: int = 0

    def answer(self) -> wire.NodeStatus:
        return wire.NodeStatus(id=self.node_id, address=self.address, pid=self.pid, shards=[
            wire.ReplicaStatus(shard=s.shard, is_leader=s.is_leader, leader=s.leader,
                               term=s.term, commit_index=s.commit_index,
                               applied_index=s.applied_index, last_index=s.last_index,
                               members=list(s.members), learners=list(s.learners),
                               learner_lags=dict(s.learner_lags))
            for s in self.shards], map_epoch=self.map_epoch)

    @staticmethod
    def from_json(node_id: str, payload: bytes) -> NodeReport | None:
        """The report another node sent; None when it is not one (that node counts as down)."""
        try:
            answer = msgspec.json.decode(payload, type=wire.NodeStatus)
        except msgspec.DecodeError:  # ValidationError included
            return None
        return NodeReport(node_id=node_id, address=answer.address, pid=answer.pid, shards=tuple(
            LogStatus(shard=ShardId(s.shard), is_leader=s.is_leader,
                      leader=None if s.leader is None else NodeId(s.leader), term=s.term,
                      commit_index=s.commit_index, applied_index=s.applied_index,
                      last_index=s.last_index, members=tuple(NodeId(m) for m in s.members),
                      learners=tuple(NodeId(m) for m in s.learners),
                      learner_lags=tuple((NodeId(n), lag) for n, lag in s.learner_lags.items()))
            for s in answer.shards), map_epoch=answer.map_epoch)


def _own_report(node: NodeView) -> NodeReport:
    return NodeReport(node_id=node.node_id, address=node.public_address(node.node_id),
                      pid=os.getpid(), shards=tuple(node.local_status()),
                      map_epoch=node.cluster_map.epoch)


async def node_status(request: web.Request) -> web.StreamResponse:
    return _json(_own_report(request.app[NODE_KEY]).answer())


async def node_digests(request: web.Request) -> web.StreamResponse:
    """Each local replica's applied index and state digest (DESIGN §4 I2: replicas that applied
    the same index hold byte-identical state). Costs a full serialisation of every shard, so it
    is for checks at quiescence (the chaos checker), not for monitoring."""
    node = request.app[NODE_KEY]
    return _json(wire.NodeDigests(id=node.node_id, shards=[
        wire.ReplicaDigest(shard=shard, applied_index=index, digest=digest,
                           outbox_messages=outbox)
        for shard, index, digest, outbox in node.replica_digests()]))


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
                return NodeReport.from_json(node_id, await answer.read())
        except (aiohttp.ClientError, TimeoutError):
            return None

    cluster_map = node.cluster_map
    node_ids = [m.id for m in cluster_map.members]
    views = await asyncio.gather(*(ask(n) for n in node_ids))
    reports = [(view.node_id, status) for view in views if view is not None
               for status in view.shards]
    shards = [_merge_shard(s, group.voters, [r for r in reports if r[1].shard == s])
              for s, group in enumerate(cluster_map.shards)]
    leaders: dict[str, int] = {}
    for shard in shards:
        if shard.leader is not None:
            leaders[shard.leader] = leaders.get(shard.leader, 0) + 1
    nodes = [wire.ClusterNode(id=m.id, address=node.public_address(m.id) or m.http_address,
                              pid=None if view is None else view.pid, alive=view is not None,
                              state=m.state.value, leaders=leaders.get(m.id, 0),
                              replicas=sum(1 for g in cluster_map.shards if g.holds(m.id)))
             for m, view in zip(cluster_map.members, views, strict=True)]
    moves = [wire.ClusterMove(shard=g, learner=r.learner, promoted=r.promoted, leaving=r.leaving)
             for g, r in cluster_map.groups().items() if r.moving]
    return _json(wire.ClusterStatus(nodes=nodes, shards=shards, epoch=cluster_map.epoch,
                                    moves=moves))


def _merge_shard(shard: int, replicas: tuple[str, ...],
                 reports: list[tuple[str, LogStatus]]) -> wire.ClusterShard:
    """One shard's line: a leader only if a live replica claims it, the highest term wins;
    each live replica's lag is how far its applied index is behind the highest commit index
    any replica reported."""
    leaders = [r for _, r in reports if r.is_leader]
    leader = max(leaders, key=lambda r: r.term) if leaders else None
    commit_index = max((r.commit_index for _, r in reports), default=0)
    return wire.ClusterShard(shard=shard, leader=None if leader is None else leader.leader,
                             replicas=list(replicas),
                             term=max((r.term for _, r in reports), default=0),
                             commit_index=commit_index,
                             replica_lags={node: max(0, commit_index - r.applied_index)
                                           for node, r in reports})
