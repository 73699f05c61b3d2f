"""The SDK sends a workflow's calls to the node that answered for its shard (no forwarding hop).

Goal: once a workflow's answer names its shard (`X-Raftflow-Shard: <shard>/<count>`) and the
node that gave it (`X-Raftflow-Served-By`), the next call about any workflow of that shard goes
there first, whichever address the client would have tried; a failed attempt there forgets it
and the call goes on as before; answers without the header change nothing. A real 3-node
cluster then shows the effect: after the first answer per shard, no workflow call is forwarded.
Method: two scripted aiohttp nodes on loopback recording which one each call reached; for the
cluster, the nodes' own request counters of forwarded calls.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from raftflow.cluster.launcher import LocalCluster
from raftflow.protocol.shard_keys import SHARD_HEADER, parse_shard_header, shard_for
from raftflow.sdk import _http
from raftflow.sdk.client import Client

COUNT = 8


def _same_shard(first: str) -> str:
    """Another workflow id in `first`'s shard."""
    shard = shard_for("ns", first, COUNT)
    return next(w for w in (f"wf-{i}" for i in range(1000))
                if w != first and shard_for("ns", w, COUNT) == shard)


def _two_nodes(test: Callable[[str, str, list[tuple[str, str]]], Awaitable[None]],
               answer_headers: Callable[[str, str], dict[str, str]]) -> None:
    """Nodes "a" and "b"; each answer carries answer_headers(node, path)."""
    reached: list[tuple[str, str]] = []  # (node, path)

    def app_for(name: str) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            reached.append((name, request.path))
            return web.json_response({}, headers=answer_headers(name, request.path))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    async def main() -> None:
        runners, addresses = [], []
        for name in ("a", "b"):
            runner = web.AppRunner(app_for(name))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            runners.append(runner)
            addresses.append(f"http://127.0.0.1:{port}")
        try:
            await test(addresses[0], addresses[1], reached)
        finally:
            for runner in runners:
                await runner.cleanup()

    asyncio.run(main())


def test_a_shard_s_next_call_goes_to_the_node_that_answered_for_it() -> None:
    holder: dict[str, str] = {}

    def headers(node: str, path: str) -> dict[str, str]:
        # Node a relays every workflow call to b, as a non-leader does: b served it.
        workflow = path.rsplit("/", 1)[-1]
        return {SHARD_HEADER: f"{shard_for('ns', workflow, COUNT)}/{COUNT}",
                _http.SERVED_BY_HEADER: holder["b"]}

    async def test(a: str, b: str, reached: list[tuple[str, str]]) -> None:
        holder["b"] = b
        transport = _http.Transport([a, b])
        other = _same_shard("wf-x")
        try:
            first = await transport.call("GET", "/w/wf-x", workflow=("ns", "wf-x"))
            assert first.address == b
            await transport.call("GET", f"/w/{other}", workflow=("ns", other))
            # A call naming no workflow starts at the node that last answered, as before.
            await transport.call("GET", "/healthz")
        finally:
            await transport.close()
        assert reached == [("a", "/w/wf-x"), ("b", f"/w/{other}"), ("b", "/healthz")]

    _two_nodes(test, headers)


def test_a_failed_shard_leader_is_forgotten_and_the_call_goes_on() -> None:
    def headers(node: str, path: str) -> dict[str, str]:
        workflow = path.rsplit("/", 1)[-1]
        return {SHARD_HEADER: f"{shard_for('ns', workflow, COUNT)}/{COUNT}"}

    async def test(a: str, b: str, reached: list[tuple[str, str]]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
        transport = _http.Transport([a, b])
        other = _same_shard("wf-x")
        try:
            await transport.call("GET", "/w/wf-x", workflow=("ns", "wf-x"))
            shard = shard_for("ns", "wf-x", COUNT)
            transport._shard_leaders[shard] = dead  # the leader it learnt has gone away
            answer = await transport.call("GET", f"/w/{other}", workflow=("ns", other))
            assert answer.status == 200
            assert transport._shard_leaders[shard] == a  # relearnt from the answer
        finally:
            await transport.close()
        assert reached == [("a", "/w/wf-x"), ("a", f"/w/{other}")]

    _two_nodes(test, headers)


def test_a_leader_the_client_was_not_given_is_not_used() -> None:
    """A client given one address (say, a load balancer's) keeps to it: the served-by node
    may be unreachable from where the client runs."""
    holder: dict[str, str] = {}

    def headers(node: str, path: str) -> dict[str, str]:
        workflow = path.rsplit("/", 1)[-1]
        return {SHARD_HEADER: f"{shard_for('ns', workflow, COUNT)}/{COUNT}",
                _http.SERVED_BY_HEADER: holder["b"]}

    async def test(a: str, b: str, reached: list[tuple[str, str]]) -> None:
        holder["b"] = b
        transport = _http.Transport([a])
        other = _same_shard("wf-x")
        try:
            await transport.call("GET", "/w/wf-x", workflow=("ns", "wf-x"))
            await transport.call("GET", f"/w/{other}", workflow=("ns", other))
        finally:
            await transport.close()
        assert [node for node, _ in reached] == ["a", "a"]

    _two_nodes(test, headers)


def test_answers_without_the_header_leave_routing_as_it_was() -> None:
    async def test(a: str, b: str, reached: list[tuple[str, str]]) -> None:
        transport = _http.Transport([a, b])
        try:
            for workflow in ("wf-1", "wf-2", "wf-3"):
                await transport.call("GET", f"/w/{workflow}", workflow=("ns", workflow))
        finally:
            await transport.close()
        assert [node for node, _ in reached] == ["a", "a", "a"]
        assert transport._shard_leaders == {}

    _two_nodes(test, lambda node, path: {})


def test_shard_header_parsing_refuses_what_it_cannot_use() -> None:
    assert parse_shard_header("3/16") == (3, 16)
    for bad in (None, "", "3", "16/16", "-1/16", "a/16", "3/0", "3/5000", "3/16/1"):
        assert parse_shard_header(bad) is None, bad


def _forwarded_calls(cluster: LocalCluster) -> int:
    total = 0
    for node in cluster.node_ids:
        with urllib.request.urlopen(f"{cluster.address(node)}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        total += int(sum(sample.value for family in text_string_to_metric_families(text)
                         if family.name == "raftflow_forwarded_calls"
                         for sample in family.samples if sample.name.endswith("_total")))
    return total


def test_on_a_cluster_workflow_calls_go_straight_to_the_leader(cluster: LocalCluster) -> None:
    """32 starts, describes and terminates over an 8-shard cluster, through a client given
    every node: only a shard's first answer may come through a forward (it names the leader);
    every later call goes straight to it. Without routing about 2 in 3 calls are forwarded."""
    queue = f"q-{uuid.uuid4().hex[:8]}"  # no worker: the runs stay open until terminated
    ids = [f"route-{queue}-{i}" for i in range(32)]
    shards = 8  # tests/live_cluster.running's default

    async def main() -> tuple[int, int, int]:
        async with await Client.connect([cluster.address(n) for n in cluster.node_ids]) as client:
            counts = [_forwarded_calls(cluster)]
            handles = [await client.start_workflow("Idle", id=w, task_queue=queue) for w in ids]
            counts.append(_forwarded_calls(cluster))
            for handle in handles:
                assert (await handle.describe()).status.name == "RUNNING"
            counts.append(_forwarded_calls(cluster))
            for handle in handles:
                await handle.terminate("done")
            counts.append(_forwarded_calls(cluster))
        return counts[1] - counts[0], counts[2] - counts[1], counts[3] - counts[2]

    starts, describes, terminates = asyncio.run(main())
    assert starts <= shards, starts
    # A leader may move meanwhile (one forward, then the answer names the new one).
    assert describes <= 1 and terminates <= 1, (describes, terminates)
