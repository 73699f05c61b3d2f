"""Goal: a call forwarded over a blackholed link fails over within a few seconds (issue 12,
item 6): the gateway notices the shard's leader does not answer and says `not_leader` with
Retry-After, so the client retries on another node, instead of waiting out the forward's whole
timeout (75 s) or the SDK's own (30 s) while the request sits unanswered in the link.

Method: three in-process nodes; node-1 reaches node-2's HTTP API through a blackhole (a
listening socket that nobody accepts on: the kernel completes the handshake and buffers the
request, and no byte ever comes back, as through the chaos proxy's blackholed link), while
their Raft link stays healthy, so node-1 keeps naming node-2 as the leader of node-2's
shards. A call to node-1 for such a shard must come back 503 `not_leader` within
FAILOVER_S_MAX; through the SDK transport given node-1 and node-3, the same start must
succeed (node-3 forwards it to node-2) within the same bound, and create exactly one run.
A forwarded wait on a live leader (node-3 to node-2) still runs its whole wait, longer than
the failover's probe takes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from raftflow.cluster.ring import shard_for
from raftflow.node.runtime import NodeRuntime
from raftflow.sdk._http import Transport
from tests.api.gateway_harness import (
    API,
    NS,
    Call,
    LiveCluster,
    _drive,
    _error_code,
    _start_body,
    _wid,
)

# What "a few seconds" means here: the gateway's probe of a silent peer (routing.py) plus
# the SDK's wait before its next node, with room for a loaded test machine.
FAILOVER_S_MAX = 8.0
# Far above FAILOVER_S_MAX and far below the old 75 s: a hang fails the test in bounded time.
GIVE_UP_S = 20.0
# The leader balancer runs every 2 s (node/runtime.py); a few of its rounds.
LEADS_WITHIN_S = 15.0


@pytest.fixture(scope="module")
def blackhole() -> Iterator[socket.socket]:
    """A listening socket nobody accepts on: connections complete, nothing is ever read."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory,
        blackhole: socket.socket) -> Iterator[LiveCluster]:
    """Three nodes; node-1's HTTP calls to node-2 go into the blackhole."""
    root = tmp_path_factory.mktemp("cut")
    cluster = LiveCluster(root, 3, 4)
    first, second = cluster.config.nodes[0], cluster.config.nodes[1]
    silent = replace(second, http_port=blackhole.getsockname()[1])
    cluster.nodes[0] = NodeRuntime(cluster.config, first.id, root / first.id,
                                   dial={second.id: silent})
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _led_by(cluster: LiveCluster, node: NodeRuntime) -> str:
    """A workflow id on a shard that `node` leads, once the leader balancer gave it one
    (leaders move to each shard's preferred replica, spread over the nodes)."""
    shards = range(cluster.shard_count)
    cluster.run(cluster.wait_for(
        lambda: any(cluster.ready_leader(s) is node for s in shards), LEADS_WITHIN_S))
    for _ in range(1000):
        wid = _wid("cut")
        if cluster.ready_leader(shard_for(NS, wid, cluster.shard_count)) is node:
            return wid
    raise AssertionError(f"no workflow id found for the shards {node.node_id} leads")


def test_a_call_forwarded_into_a_blackhole_fails_over_in_seconds(cut: LiveCluster) -> None:
    wid = _led_by(cut, cut.nodes[1])

    async def scenario(call: Call) -> None:
        began = time.monotonic()
        status, answer, headers = await asyncio.wait_for(call(
            "POST", f"{API}/namespaces/{NS}/workflows",
            json=_start_body(wid, request_id="cut-1")), GIVE_UP_S)
        took_s = time.monotonic() - began
        assert status == 503 and _error_code(answer) == "not_leader", answer
        assert int(headers["Retry-After"]) >= 1
        assert took_s < FAILOVER_S_MAX, f"failed over after {took_s:.1f} s"

    _drive(cut, cut.url(cut.nodes[0]), scenario)


def test_the_sdk_call_lands_on_the_leader_through_another_node(cut: LiveCluster) -> None:
    wid = _led_by(cut, cut.nodes[1])
    before = cut.executions()

    async def scenario(_: Call) -> None:
        transport = Transport([cut.url(cut.nodes[0]), cut.url(cut.nodes[2])])
        try:
            began = time.monotonic()
            answer = await asyncio.wait_for(transport.call(
                "POST", f"{API}/namespaces/{NS}/workflows",
                body=_start_body(wid, request_id="cut-2")), GIVE_UP_S)
            took_s = time.monotonic() - began
        finally:
            await transport.close()
        assert answer.status == 201 and answer.address == cut.url(cut.nodes[1])
        assert took_s < FAILOVER_S_MAX, f"failed over after {took_s:.1f} s"

    _drive(cut, cut.url(cut.nodes[0]), scenario)
    assert cut.executions() == before + 1


def test_a_long_forwarded_wait_on_a_live_leader_is_not_cut(cut: LiveCluster) -> None:
    """The failover must not cut calls that legitimately wait long: a forwarded wait for a
    workflow's result on a leader that answers probes runs its whole wait (204)."""
    wid = _led_by(cut, cut.nodes[1])
    wait_ms = 5_000

    async def scenario(call: Call) -> None:
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, request_id="cut-3"))
        assert status == 201
        began = time.monotonic()
        status, answer, headers = await asyncio.wait_for(call(
            "GET", f"{API}/namespaces/{NS}/workflows/{wid}/result?wait_ms={wait_ms}"),
            GIVE_UP_S)
        took_s = time.monotonic() - began
        assert status == 204, answer
        assert took_s >= wait_ms / 1000 * 0.9, f"cut after {took_s:.1f} s"

    _drive(cut, cut.url(cut.nodes[2]), scenario)
