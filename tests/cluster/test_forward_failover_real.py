"""Goal: with real node processes behind the chaos harness's link proxies, a call forwarded
over a blackholed link, or to a paused (SIGSTOP) leader, fails over within a few seconds
(issue 12, item 6; it used to cost the SDK's 30 s call timeout, or the gateway's 75 s).

Method: `ChaosCluster` (3 nodes, 4 shards, every directed link through the proxy). For a
workflow id on a shard that node S does not lead in its own view (`/api/v1/node/status`):
1. blackhole only the HTTP link S->leader (Raft stays healthy, so S keeps naming that leader):
   a start sent to S answers 503 `not_leader` within FAILOVER_S_MAX, and the SDK transport
   given S and the third node starts the workflow within the same bound (one run);
2. heal, then pause the leader itself: the SDK transport given S and the third node starts
   another workflow on that shard within FAILOVER_S_MAX plus an election.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from raftflow.chaos.cluster import ChaosCluster, http_link
from raftflow.cluster.ring import shard_for
from raftflow.sdk._http import Transport

NS = "default"
SHARDS = 4
SEED = 1212
FAILOVER_S_MAX = 8.0
ELECTION_S_MAX = 3.0  # DESIGN §8: writes resume 0.76-0.91 s after a leader dies
GIVE_UP_S = 25.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosCluster]:
    with ChaosCluster(Path(tmp_path_factory.mktemp("failover")), nodes=3, shards=SHARDS,
                      seed=SEED) as running:
        yield running


def _leader_in_view_of(cluster: ChaosCluster, node: str, shard: int) -> str | None:
    with urllib.request.urlopen(cluster.address(node) + "/api/v1/node/status",
                                timeout=5) as answer:
        status = json.load(answer)
    return next((r["leader"] for r in status["shards"] if r["shard"] == shard), None)


def _placed(cluster: ChaosCluster, source: str) -> tuple[str, str]:
    """A workflow id and the leader of its shard as `source` sees it, not `source` itself."""
    for _ in range(1000):
        wid = f"failover-{uuid.uuid4().hex[:8]}"
        leader = _leader_in_view_of(cluster, source, shard_for(NS, wid, SHARDS))
        if leader not in (None, source):
            return wid, leader
    raise AssertionError(f"{source} names no other node as a leader")


def _start(wid: str) -> dict[str, object]:
    return {"workflow_id": wid, "workflow_type": "Greeter", "task_queue": "q",
            "input": {"name": "x"}, "request_id": f"start-{wid}"}


async def _start_via(addresses: list[str], wid: str) -> tuple[int, float]:
    transport = Transport(addresses)
    began = time.monotonic()
    try:
        answer = await asyncio.wait_for(transport.call(
            "POST", f"/api/v1/namespaces/{NS}/workflows", body=_start(wid)), GIVE_UP_S)
    finally:
        await transport.close()
    return answer.status, time.monotonic() - began


def test_a_blackholed_link_to_the_leader_fails_over(cluster: ChaosCluster) -> None:
    source = "node-1"
    wid, leader = _placed(cluster, source)
    third = next(n for n in cluster.node_ids if n not in (source, leader))
    cluster.links.blackhole(http_link(source, leader))
    try:
        async def direct() -> tuple[int, str, float]:
            began = time.monotonic()
            async with aiohttp.ClientSession() as session, session.post(
                    cluster.address(source) + f"/api/v1/namespaces/{NS}/workflows",
                    json=_start(wid), timeout=aiohttp.ClientTimeout(total=GIVE_UP_S)) as answer:
                body = await answer.json()
                return answer.status, body["error"]["code"], time.monotonic() - began

        status, code, took_s = asyncio.run(direct())
        assert (status, code) == (503, "not_leader") and took_s < FAILOVER_S_MAX, took_s
        status, took_s = asyncio.run(_start_via(
            [cluster.address(source), cluster.address(third)], wid))
        assert status in (200, 201) and took_s < FAILOVER_S_MAX, (status, took_s)
    finally:
        cluster.links.heal(http_link(source, leader))


def test_a_paused_leader_fails_over(cluster: ChaosCluster) -> None:
    source = "node-1"
    wid, leader = _placed(cluster, source)
    third = next(n for n in cluster.node_ids if n not in (source, leader))
    cluster.pause(leader)
    try:
        status, took_s = asyncio.run(_start_via(
            [cluster.address(source), cluster.address(third)], wid))
        assert status in (200, 201) and took_s < FAILOVER_S_MAX + ELECTION_S_MAX, (status, took_s)
    finally:
        cluster.resume(leader)
