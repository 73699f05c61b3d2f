"""What the chaos harness reads from and does to a node: replica digests, the pending
workflow task in a description, the wall-clock skew, and dialling peers through other
addresses.

Method: a 3-node in-process cluster (the gateway harness) driven over HTTP; the skew and dial
tests need no cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from raftflow.cluster.config import NodeSpec, dev_cluster_config
from raftflow.node import wall_clock
from raftflow.node.runtime import NodeRuntime
from tests.api.gateway_harness import (
    API,
    NS,
    Call,
    LiveCluster,
    _cluster,
    _drive,
    _start_body,
    _wid,
)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    yield from _cluster(tmp_path_factory, 3, 2)


def test_replicas_report_equal_digests_at_equal_applied_indexes(three: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        for _ in range(5):
            status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(_wid("digest")))
            assert status == 201
        readings: dict[int, set[tuple[int, str]]] = {}
        for _attempt in range(100):  # followers apply a heartbeat or so after the leader
            readings = {}
            for node in three.nodes:
                status, body, _ = await call("GET", "/api/v1/node/digests",
                                             base_url=three.url(node))
                assert status == 200 and body["id"] == node.node_id
                for shard in body["shards"]:
                    assert len(shard["digest"]) == 64
                    readings.setdefault(shard["shard"], set()).add(
                        (shard["applied_index"], shard["digest"]))
            if all(len(r) == 1 for r in readings.values()):
                break
            await asyncio.sleep(0.05)
        assert sorted(readings) == [0, 1]
        assert all(len(r) == 1 for r in readings.values()), readings
        assert all(next(iter(r))[0] > 0 for r in readings.values())

    _drive(three, three.url(three.nodes[0]), scenario)


def test_different_states_give_different_digests(three: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        async def digests() -> dict[int, str]:
            leader = three.ready_leader(0)
            assert leader is not None
            _, body, _ = await call("GET", "/api/v1/node/digests", base_url=three.url(leader))
            return {s["shard"]: s["digest"] for s in body["shards"]}

        before = await digests()
        for _ in range(6):  # lands on both shards with near certainty
            await call("POST", f"{API}/namespaces/{NS}/workflows",
                       json=_start_body(_wid("change")))
        assert await digests() != before

    _drive(three, three.url(three.nodes[0]), scenario)


def test_a_description_says_whether_a_workflow_task_is_pending(three: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid = _wid("pending")
        await call("POST", f"{API}/namespaces/{NS}/workflows", json=_start_body(wid))
        status, body, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}")
        assert status == 200 and body["workflow_task_pending"] is True
        await call("POST", f"{API}/namespaces/{NS}/workflows/{wid}/terminate", json={})
        status, body, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}")
        assert body["status"] == "TERMINATED" and body["workflow_task_pending"] is False

    _drive(three, three.url(three.nodes[0]), scenario)


def test_the_wall_clock_skew_shifts_proposed_timestamps(three: LiveCluster) -> None:
    skew_ms = 3_600_000

    async def scenario(call: Call) -> None:
        wid = _wid("skew")
        for node in three.nodes:  # each node has its own clock; whichever leads proposes
            node.clock.set_skew_ms(skew_ms)
        try:
            await call("POST", f"{API}/namespaces/{NS}/workflows", json=_start_body(wid))
        finally:
            for node in three.nodes:
                node.clock.set_skew_ms(0)
        _, body, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}/history")
        started = datetime.fromisoformat(body["events"][0]["timestamp"]).timestamp() * 1000
        assert started - three.nodes[0].clock.now_ms() > skew_ms - 60_000

    _drive(three, three.url(three.nodes[0]), scenario)


def test_skew_file_parsing_and_bounds(tmp_path: Path) -> None:
    path = tmp_path / "skew"
    assert wall_clock.read_skew_file(path) == 0
    path.write_text("-2500\n")
    assert wall_clock.read_skew_file(path) == -2500
    clock = wall_clock.SkewableWallClock()
    with pytest.raises(ValueError):
        clock.set_skew_ms(wall_clock.SKEW_MS_MAX + 1)
    assert clock.skew_ms == 0


def test_peers_are_dialled_at_their_override_but_named_by_their_own_address(
        tmp_path: Path) -> None:
    config = dev_cluster_config(node_count=2, http_port_base=20100, shard_count=1,
                                secret="s")
    via = NodeSpec(id="node-2", host="127.0.0.1", http_port=29999, raft_port=29998)
    node = NodeRuntime(config, "node-1", tmp_path, dial={"node-2": via})
    assert node.http_address("node-2") == "http://127.0.0.1:29999"
    assert node.public_address("node-2") == "http://127.0.0.1:20101"
    assert node.http_address("node-1") == node.public_address("node-1")
