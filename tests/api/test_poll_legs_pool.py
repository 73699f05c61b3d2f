"""Goal: idle long polls never hold up the calls a node forwards (issue 12, item 6: forwarded
calls must not stall for tens of seconds). Each poll on a node of three keeps one leg per other
node open for its whole wait; those legs used to share the node's connection pool (100) with
forwarded calls, so 50 idle polls made every forwarded call wait until some poll ended.

Method: the three-node cluster; POLLS idle polls (an empty queue, POLL_WAIT_MS each) on
node-1 through a client with no connection bound, then a start on node-1 for a shard another
node leads, through its own connection: it must answer within FORWARD_S_MAX, long before
any poll ends. Without the legs' own pool it answered after the polls' wait (14 s).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from raftflow.cluster.ring import shard_for
from tests.api.gateway_harness import API, NS, LiveCluster, _start_body, _wid

POLLS = 120  # 240 legs: more than twice aiohttp's default pool
OLD_POOL_CONNECTIONS = 100  # aiohttp's default, which legs shared with forwarded calls
POLL_WAIT_MS = 10_000
LEGS_OPEN_WITHIN_S = 5.0
FORWARD_S_MAX = 3.0


def test_idle_polls_do_not_hold_up_forwarded_calls(three: LiveCluster) -> None:
    node = three.nodes[0]
    for _ in range(1000):
        wid = _wid("pool")
        if three.ready_leader(shard_for(NS, wid, three.shard_count)) is not node:
            break
    queue = _wid("idle")

    async def poll(session: aiohttp.ClientSession) -> int:
        async with session.post(
                three.url(node) + f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll",
                json={"wait_ms": POLL_WAIT_MS}) as answer:
            return answer.status

    def pool_filled() -> bool:
        # Legs wait on the other nodes' matchers under their poll ids (private: a test's look).
        return all(len(n.matcher._waiting_polls) >= OLD_POOL_CONNECTIONS // 2
                   for n in three.nodes if n is not node)

    async def scenario() -> None:
        unbounded = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=unbounded) as pollers, \
                aiohttp.ClientSession() as client:
            polls = [asyncio.ensure_future(poll(pollers)) for _ in range(POLLS)]
            try:
                await three.wait_for(pool_filled, LEGS_OPEN_WITHIN_S)
                began = time.monotonic()
                async with client.post(three.url(node) + f"{API}/namespaces/{NS}/workflows",
                                       json=_start_body(wid)) as answer:
                    status = answer.status
                took_s = time.monotonic() - began
                assert status == 201 and took_s < FORWARD_S_MAX, \
                    f"forwarded call answered {status} after {took_s:.1f} s"
                assert not any(p.done() for p in polls), "a poll ended before the call"
            finally:
                for p in polls:
                    p.cancel()
                await asyncio.gather(*polls, return_exceptions=True)

    three.run(scenario())
