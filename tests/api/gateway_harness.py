"""In-process cluster harness for the HTTP gateway tests: live nodes and an HTTP driver.

Not a test module. `LiveCluster` runs `NodeRuntime` objects on ONE asyncio loop in a background
thread (so Raft keeps ticking between tests), on free 127.0.0.1 ports and temporary data
directories; `_drive` runs a scenario on that loop with an aiohttp client and hands it `call`,
which answers (status, parsed body, headers). Waits are condition waits; no fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from yarl import URL

from raftflow.api.access import Authenticator
from raftflow.cluster.config import dev_cluster_config
from raftflow.cluster.launcher import free_port_block
from raftflow.cluster.placement_plan import preferred_leaders
from raftflow.node.map_duties import LEADER_BALANCE_BACKOFF_S
from raftflow.node.runtime import NodeRuntime

T = TypeVar("T")
NS = "default"
API = "/api/v1"
READY_TIMEOUT_S = 20.0
SETTLE_TIMEOUT_S = 10.0


def _free_port_base(count: int) -> int:
    """A base port such that base..base+count-1 and base+1000.. are all free (this worker's
    range, below the ephemeral ports: tests/conftest.py)."""
    return free_port_block(count, random.Random())


class LiveCluster:
    """Nodes on one event loop in a background thread; tests submit coroutines to it."""

    def __init__(self, data_dir: Path, node_count: int, shard_count: int, *,
                 auth: Authenticator | None = None) -> None:
        base = _free_port_base(node_count)
        self.config = dev_cluster_config(node_count=node_count, http_port_base=base,
                                         shard_count=shard_count, secret="test-secret")
        self.shard_count = shard_count
        self.nodes: list[NodeRuntime] = []
        for spec in self.config.nodes:
            (data_dir / spec.id).mkdir()
            self.nodes.append(NodeRuntime(self.config, spec.id, data_dir / spec.id, auth=auth))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start(), READY_TIMEOUT_S + LEADER_BALANCE_BACKOFF_S + SETTLE_TIMEOUT_S)

    async def _start(self) -> None:
        await asyncio.gather(*(node.start() for node in self.nodes))
        await self.wait_for(self._all_shards_ready, READY_TIMEOUT_S)
        await self.settle()

    async def settle(self) -> None:
        """Wait (bounded) until every shard is led by its preferred replica."""
        # Each node hands its shards to their preferred replicas (node/map_duties.py):
        # a test that picks "the leader" of a shard must not race that hand-off. A refused
        # hand-off is asked again only after LEADER_BALANCE_BACKOFF_S, hence the bound.
        # Bounded: a hand-off that does not happen leaves leadership where it is; a test
        # that needs leaders to stay put checks that they did.
        with contextlib.suppress(AssertionError):
            await self.wait_for(self.leaders_settled,
                                LEADER_BALANCE_BACKOFF_S + SETTLE_TIMEOUT_S)

    def leaders_settled(self) -> bool:
        """Every shard led by its preferred replica: no node hands a leadership away any
        more (node/map_duties.py) until something fails."""
        preferred = preferred_leaders(self.nodes[0].cluster_map)
        leaders = self.leaders()
        return all(leader is not None and leader.node_id == preferred.get(shard)
                   for shard, leader in enumerate(leaders))

    def every_shard_led(self) -> bool:
        return all(leader is not None for leader in self.leaders())

    def leaders(self) -> list[NodeRuntime | None]:
        """Each shard's ready leader now, by shard."""
        return [self.ready_leader(shard) for shard in range(self.shard_count)]

    def _all_shards_ready(self) -> bool:
        return self.every_shard_led() and all(
            n.all_local_shards_have_leaders() for n in self.nodes) and self.map_led()

    def map_led(self) -> bool:
        """One node leads the cluster map and every node knows it: namespace and membership
        calls (which run on the map's leader) are answered, not 503, from the first test on."""
        leaders = [n for n in self.nodes if n.map_replica is not None
                   and n.map_replica.is_leader() and n.map_replica.map is not None]
        return len(leaders) == 1 and all(n.meta_leader() == leaders[0].node_id
                                         for n in self.nodes)

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    async def _stop(self) -> None:
        for node in self.nodes:
            await node.stop()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    @staticmethod
    async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "condition not reached"
            await asyncio.sleep(0.005)

    def ready_leader(self, shard: int) -> NodeRuntime | None:
        for node in self.nodes:
            actor = node.actor(shard)
            if actor is not None and actor.is_ready_leader():
                return node
        return None

    def url(self, node: NodeRuntime) -> str:
        return node.spec.http_address

    def executions(self) -> int:
        """Runs held by the leaders' states, open and retained closed (read on the loop
        thread; closed runs live in each state's archive)."""
        async def count() -> int:
            total = 0
            for shard in range(self.shard_count):
                leader = self.ready_leader(shard)
                actor = None if leader is None else leader.actor(shard)
                assert actor is not None, f"shard {shard} has no ready leader"
                total += len(actor.state.executions) + actor.state.archive.closed_count()
            return total
        return self.run(count())


def _cluster(tmp_path_factory: pytest.TempPathFactory, nodes: int, shards: int,
             ) -> Iterator[LiveCluster]:
    cluster = LiveCluster(tmp_path_factory.mktemp(f"c{nodes}"), nodes, shards)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


Call = Callable[..., Awaitable[tuple[int, Any, Any]]]


def _drive(cluster: LiveCluster, base: str,
           scenario: Callable[[Call], Coroutine[Any, Any, None]]) -> None:
    """Run `scenario(call)` on the cluster's loop; `call(method, path, json=..., headers=...)`
    answers (status, parsed JSON body or None, headers)."""

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async def call(method: str, path: str, *, base_url: str | URL = base,
                           **kwargs: Any) -> tuple[int, Any, Any]:
                url = base_url if isinstance(base_url, URL) else base_url + path
                async with session.request(method, url, **kwargs) as answer:
                    text = await answer.text()
                    body = json.loads(text) if text and answer.content_type == "application/json" else text or None
                    return answer.status, body, answer.headers
            await scenario(call)

    cluster.run(main())


def _start_body(workflow_id: str, **fields: Any) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "workflow_type": "Greeter", "task_queue": "q",
            "input": {"name": "x"}, **fields}


def _wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _error_code(body: Any) -> str:
    return str(body["error"]["code"])
