"""End-to-end behaviour of a real 3-node cluster: node processes, HTTP, fsync, kill -9.

Goal: what DESIGN §4 promises holds against real processes — a workflow with a retried
activity and a durable timer completes under a plain HTTP worker; it still completes when its
shard's leader is killed mid-way; nothing acknowledged is lost when every node is killed at
once and restarted; shards get new leaders within 10 s after the busiest node dies.
Method: `LocalCluster` starts `raftflow node` processes on free loopback ports in a temp dir;
the test talks HTTP to them and sends SIGKILL to the processes it started.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from raftflow.cluster.launcher import LocalCluster
from raftflow.cluster.ring import shard_for
from tests.http_retry import retrying_503
from tests.integration.http_worker import NAMESPACE, TASK_QUEUE, HttpWorker

WF = f"/api/v1/namespaces/{NAMESPACE}/workflows"


async def _start(session: aiohttp.ClientSession, address: str, workflow_id: str,
                 request_id: str | None = None, task_queue: str = TASK_QUEUE) -> dict[str, Any]:
    body = {"workflow_id": workflow_id, "workflow_type": "Order", "task_queue": task_queue,
            "input": {"order": workflow_id}, "request_id": request_id or f"req-{workflow_id}"}
    for _ in range(50):
        async with session.post(address + WF, json=body) as answer:
            if answer.status in (200, 201):
                return dict(await answer.json())
            assert answer.status == 503, (answer.status, await answer.text())
        await asyncio.sleep(0.2)
    raise AssertionError("start never acknowledged")


async def _describe(session: aiohttp.ClientSession, addresses: list[str], workflow_id: str) -> dict[str, Any]:
    for attempt in range(100):
        address = addresses[attempt % len(addresses)]
        try:
            async with session.get(f"{address}{WF}/{workflow_id}") as answer:
                if answer.status == 200:
                    return dict(await answer.json())
                assert answer.status == 503, (answer.status, await answer.text())
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} could not be described")


async def _history(session: aiohttp.ClientSession, addresses: list[str], workflow_id: str) -> list[dict[str, Any]]:
    for attempt in range(100):
        address = addresses[attempt % len(addresses)]
        try:
            async with session.get(f"{address}{WF}/{workflow_id}/history") as answer:
                if answer.status == 200:
                    return list((await answer.json())["events"])
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"no history for {workflow_id}")


async def _wait_status(session: aiohttp.ClientSession, addresses: list[str], workflow_id: str,
                       status: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described = await _describe(session, addresses, workflow_id)
        if described["status"] == status or time.monotonic() > deadline:
            return described
        await asyncio.sleep(0.2)


def _leader_of(cluster: LocalCluster, workflow_id: str) -> str:
    status = cluster.wait_ready()
    shard = shard_for(NAMESPACE, workflow_id, len(status["shards"]))  # type: ignore[arg-type]
    leader = status["shards"][shard]["leader"]  # type: ignore[index]
    assert isinstance(leader, str)
    return leader


def _check_order_history(events: list[dict[str, Any]]) -> None:
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    types = [e["event_type"] for e in events]
    assert types[-1] == "WorkflowExecutionCompleted" and types.count("WorkflowExecutionCompleted") == 1
    assert types.count("ActivityTaskScheduled") == 2
    assert types.count("ActivityTaskCompleted") == 2
    assert types.count("TimerFired") == 1
    result = events[-1]["attributes"]["result"]
    assert result["charge"]["done"] == "charge" and result["ship"]["done"] == "ship"


def test_workflow_with_retried_activity_and_timer_completes(cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with aiohttp.ClientSession() as session:
            started = await _start(session, addresses[0], "order-1")
            again = await _start(session, addresses[1], "order-1")  # same request id: same run
            assert again["run_id"] == started["run_id"]
            worker = HttpWorker(session, [addresses[2]])
            stop = asyncio.Event()
            loops = [asyncio.create_task(worker.run_workflow_tasks(stop)),
                     asyncio.create_task(worker.run_activity_tasks(stop))]
            done = await _wait_status(session, addresses, "order-1", "COMPLETED", 30)
            stop.set()
            await asyncio.gather(*loops)
            assert done["status"] == "COMPLETED", done
            assert done["run_id"] == started["run_id"]
            assert done["result"]["ship"]["order"] == {"order": "order-1"}
            _check_order_history(await _history(session, addresses, "order-1"))
            # The failed first attempt was retried by the server: charge ran exactly twice.
            assert Counter(t for t, _ in worker.activity_runs) == {"charge": 2, "ship": 1}

    asyncio.run(main())


def test_workflow_completes_after_its_shard_leader_is_killed(cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = {n: cluster.address(n) for n in cluster.node_ids}
        leader = _leader_of(cluster, "order-2")
        survivors = [a for n, a in addresses.items() if n != leader]
        async with aiohttp.ClientSession() as session:
            started = await _start(session, addresses[leader], "order-2")
            worker = HttpWorker(session, survivors)
            stop = asyncio.Event()
            loops = [asyncio.create_task(worker.run_workflow_tasks(stop)),
                     asyncio.create_task(worker.run_activity_tasks(stop))]
            # Let the workflow get going (charge retried), then kill -9 its shard's leader.
            deadline = time.monotonic() + 20
            while len(worker.activity_runs) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(worker.activity_runs) >= 2
            cluster.kill(leader)
            done = await _wait_status(session, survivors, "order-2", "COMPLETED", 40)
            stop.set()
            await asyncio.gather(*loops)
            assert done["status"] == "COMPLETED", done
            assert done["run_id"] == started["run_id"]
            _check_order_history(await _history(session, survivors, "order-2"))
            # The killed node restarts from its WAL and catches up with the others.
            cluster.start_node(leader)
            deadline = time.monotonic() + 30
            while not await _caught_up(session, addresses, leader):
                assert time.monotonic() < deadline, "restarted node did not catch up"
                await asyncio.sleep(0.2)

    asyncio.run(main())


async def _caught_up(session: aiohttp.ClientSession, addresses: dict[str, str], node: str) -> bool:
    """Every shard replica on `node` has applied as far as the highest commit index reported."""
    views = {}
    for name, address in addresses.items():
        try:
            async with session.get(address + "/api/v1/node/status") as answer:
                views[name] = {s["shard"]: s for s in (await answer.json())["shards"]}
        except (aiohttp.ClientError, ValueError):
            return False
    return all(views[node][shard]["applied_index"] >= max(v[shard]["commit_index"] for v in views.values())
               for shard in views[node])


def test_kill_all_nodes_and_restart_keeps_every_acknowledged_change(cluster: LocalCluster) -> None:
    async def main() -> dict[str, Any]:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        acknowledged: dict[str, Any] = {"starts": {}, "signals": [], "completed": []}
        async with aiohttp.ClientSession() as session:
            for i in range(40):
                wid = f"keep-{i}"
                started = await _start(session, addresses[i % 3], wid, task_queue="no-worker")
                acknowledged["starts"][wid] = started["run_id"]
            for i in range(0, 40, 4):
                body = {"signal_name": "poke", "input": {"n": i}, "request_id": f"sig-{i}"}
                url = f"{addresses[i % 3]}{WF}/keep-{i}/signal"

                async def signal(url: str = url, body: dict[str, Any] = body,
                                 ) -> tuple[int, str, str | None]:
                    async with session.post(url, json=body) as answer:
                        return answer.status, await answer.text(), answer.headers.get("Retry-After")
                # A 503 (a leader election under CI load) changed nothing: sent again with the
                # same request id, as docs/api.md tells clients; acknowledged only on a 200.
                status, text = await retrying_503(signal)
                assert status == 200, text
                acknowledged["signals"].append(f"keep-{i}")
            # Complete two workflows through the worker; both are acknowledged when COMPLETED.
            worker = HttpWorker(session, addresses)
            stop = asyncio.Event()
            loops = [asyncio.create_task(worker.run_workflow_tasks(stop)),
                     asyncio.create_task(worker.run_activity_tasks(stop))]
            for wid in ("done-a", "done-b"):
                await _start(session, addresses[0], wid)
            for wid in ("done-a", "done-b"):
                described = await _wait_status(session, addresses, wid, "COMPLETED", 40)
                assert described["status"] == "COMPLETED"
                acknowledged["completed"].append(wid)
            stop.set()
            await asyncio.gather(*loops)
        return acknowledged

    acknowledged = asyncio.run(main())
    for node_id in cluster.node_ids:
        cluster.kill(node_id)
    cluster.start()
    cluster.wait_ready()

    async def check() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with aiohttp.ClientSession() as session:
            for wid, run_id in acknowledged["starts"].items():
                described = await _describe(session, addresses, wid)
                assert described["run_id"] == run_id
            for wid in acknowledged["signals"]:
                events = await _history(session, addresses, wid)
                assert [e["event_type"] for e in events].count("WorkflowExecutionSignaled") == 1
            for wid in acknowledged["completed"]:
                assert (await _describe(session, addresses, wid))["status"] == "COMPLETED"
                _check_order_history(await _history(session, addresses, wid))

    asyncio.run(check())


def test_every_shard_has_a_new_leader_within_10s_after_the_busiest_node_dies(
        cluster: LocalCluster) -> None:
    status = cluster.wait_ready()
    leaders = Counter(s["leader"] for s in status["shards"])  # type: ignore[union-attr, index]
    busiest, led = leaders.most_common(1)[0]
    assert led >= 1
    cluster.kill(busiest)
    killed_at = time.monotonic()
    survivor = next(n for n in cluster.node_ids if n != busiest)
    while True:
        current = cluster.status(survivor)
        if current is not None and all(s["leader"] not in (None, busiest)
                                       for s in current["shards"]):  # type: ignore[union-attr, index]
            break
        assert time.monotonic() - killed_at < 10, f"shards without a leader after 10 s: {current}"
        time.sleep(0.05)
    elapsed = time.monotonic() - killed_at
    print(f"all shards led again {elapsed:.2f} s after kill -9 of {busiest} (led {led})")


def test_leaders_move_to_their_preferred_replicas(cluster: LocalCluster) -> None:
    # Raft elects whichever replica times out first; the nodes then hand each shard to the
    # ring's preferred replica (the first listed), so leadership spreads evenly.
    deadline = time.monotonic() + 20
    while True:
        status = cluster.status()
        assert status is not None
        misplaced = [s["shard"] for s in status["shards"] if s["leader"] != s["replicas"][0]]
        if not misplaced:
            break
        assert time.monotonic() < deadline, f"shards not led by their preferred replica: {misplaced}"
        time.sleep(0.2)
    leaders = Counter(s["leader"] for s in status["shards"])
    assert max(leaders.values()) - min(leaders.values()) <= 1, leaders
