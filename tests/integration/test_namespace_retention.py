"""Namespaces and retention on a real 3-node cluster (issue 13's contract, its first part).

Goal: a namespace created with a 20 s retention holds workflows like `default` does; its
closed runs are listed and counted by `ExecutionStatus = 'Completed'`, then gone (describe →
404, count 0) within 50 s of closing, while runs in `default`
(3 days) stay; a call on a namespace nobody created is a 404 `namespace_not_found`; create is
idempotent with the same settings and refused with others; update changes retention for runs
that close afterwards; every node answers the same.
Method: SDK client and worker per namespace; the namespace API and visibility queries over
HTTP and through the real CLI (`python -m raftflow`), against
`raftflow node` processes (tests/integration/conftest.py). Waits are condition waits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import quote

import aiohttp

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import Client, Worker, activity, workflow
from tests.http_retry import retrying_503
from tests.integration.cli_runner import cli_json

RETENTION_S = 20
GONE_WITHIN_S = 50
WORKFLOWS = 6


@activity.defn
async def stamp(text: str) -> str:
    return f"stamped {text}"


@workflow.defn
class Stamp:
    @workflow.run
    async def run(self, text: str) -> str:
        from datetime import timedelta
        return str(await workflow.execute_activity(
            stamp, text, start_to_close_timeout=timedelta(seconds=10)))


def _cli(cluster: LocalCluster, *args: str) -> Any:
    return cli_json(cluster, *args, node=2)


async def _json(session: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One call's (status, body); a 503 is sent again after its Retry-After (tests/http_retry.py)."""
    async def once() -> tuple[int, dict[str, Any], str | None]:
        async with session.request(method, url, json=body) as answer:
            return answer.status, dict(await answer.json()), answer.headers.get("Retry-After")
    return await retrying_503(once)


async def _run_workflows(addresses: list[str], namespace: str, prefix: str) -> list[str]:
    async with await Client.connect(addresses, namespace=namespace) as client:
        queue = f"q-{uuid.uuid4().hex[:6]}"
        async with Worker(client, task_queue=queue, workflows=[Stamp], activities=[stamp]):
            handles = [await client.start_workflow(Stamp.run, f"{prefix}-{i}",
                                                   id=f"{prefix}-{i}", task_queue=queue)
                       for i in range(WORKFLOWS)]
            results = [await handle.result() for handle in handles]
    assert results == [f"stamped {prefix}-{i}" for i in range(WORKFLOWS)]
    return [f"{prefix}-{i}" for i in range(WORKFLOWS)]


def test_a_namespace_keeps_closed_runs_for_its_retention_only(cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        api = addresses[0] + "/api/v1/namespaces"
        async with aiohttp.ClientSession() as session:
            status, unknown = await _json(session, "GET", f"{addresses[1]}/api/v1/namespaces/"
                                          "shop/workflows/x")
            assert status == 404 and unknown["error"]["code"] == "namespace_not_found"
            created = _cli(cluster, "namespace", "create", "shop", "--retention",
                           f"{RETENTION_S}s", "--description", "orders")
            assert created == {"name": "shop", "retention_ms": 20_000, "description": "orders",
                               "search_attributes": {}, "start_rate_per_s": None,
                               "poll_rate_per_s": None}
            again = await _json(session, "POST", api, {
                "name": "shop", "retention_ms": RETENTION_S * 1000, "description": "orders"})
            assert again == (200, created)
            status, conflict = await _json(session, "POST", api, {"name": "shop",
                                                                  "retention_ms": 60_000})
            assert status == 409 and conflict["error"]["code"] == "namespace_already_exists"
            for address in addresses:  # every node answers from the map's leader
                status, listed = await _json(session, "GET", address + "/api/v1/namespaces")
                assert status == 200
                assert [n["name"] for n in listed["namespaces"]] == ["default", "shop"]
            status, default = await _json(session, "GET", api + "/default")
            assert status == 200 and default["retention_ms"] == 3 * 24 * 3_600_000

            shop_ids = await _run_workflows(addresses, "shop", "shop-wf")
            closed_at = time.monotonic()
            default_ids = await _run_workflows(addresses, "default", "kept-wf")
            describe = addresses[2] + "/api/v1/namespaces/{ns}/workflows/{wf}"
            for wf in shop_ids:
                status, found = await _json(session, "GET", describe.format(ns="shop", wf=wf))
                assert status == 200 and found["status"] == "COMPLETED", found
            completed = "ExecutionStatus = 'Completed'"
            assert _cli(cluster, "workflow", "count", "-n", "shop", "-q", completed) == {
                "count": WORKFLOWS}
            listed = _cli(cluster, "workflow", "list", "-n", "shop", "-q", completed)
            assert sorted(w["workflow_id"] for w in listed["workflows"]) == sorted(shop_ids)

            gone: set[str] = set()
            while len(gone) < len(shop_ids):
                assert time.monotonic() - closed_at < GONE_WITHIN_S, f"still there: {gone}"
                for wf in shop_ids:
                    status, found = await _json(session, "GET",
                                                describe.format(ns="shop", wf=wf))
                    if status == 404:
                        assert found["error"]["code"] == "not_found", found
                        gone.add(wf)
                await asyncio.sleep(1.0)
            assert time.monotonic() - closed_at >= RETENTION_S - 1  # not before retention
            assert _cli(cluster, "workflow", "count", "-n", "shop", "-q", completed) == {
                "count": 0}
            status, kept = await _json(session, "GET", addresses[1] + "/api/v1/namespaces/"
                                       f"default/workflow-count?query={quote(completed)}")
            assert (status, kept) == (200, {"count": WORKFLOWS})
            for wf in default_ids:
                status, found = await _json(session, "GET", describe.format(ns="default", wf=wf))
                assert status == 200 and found["status"] == "COMPLETED", found

            status, updated = await _json(session, "PATCH", api + "/shop",
                                          {"retention_ms": 3_600_000})
            assert status == 200 and updated["retention_ms"] == 3_600_000, updated
            assert updated["description"] == "orders"
            status, missing = await _json(session, "PATCH", api + "/nowhere",
                                          {"retention_ms": 3_600_000})
            assert status == 404 and missing["error"]["code"] == "namespace_not_found"

    asyncio.run(main())
