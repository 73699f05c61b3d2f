"""Goal: each node's metrics live in their own registry, count what the shells record, and the
middleware labels requests by route pattern (bounded cardinality), method and status.

Method: record into fresh `Metrics` objects and read samples back from their registries; serve
a small aiohttp app through aiohttp's TestServer (127.0.0.1, free port) and inspect the
latency histogram after real requests.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from raftflow.api.metrics import Metrics, metrics_handler, metrics_middleware


def _sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_recorders_count_into_a_private_registry() -> None:
    metrics, other = Metrics(), Metrics()
    metrics.record_commit(3, batch_commands=17)
    metrics.record_commit(3, batch_commands=1)
    metrics.set_mailbox_depth(3, 9)
    metrics.record_leader_change(3)
    metrics.record_tasks_dispatched("activity", 2)
    metrics.record_timers_fired(3, 4)
    assert _sample(metrics, "raftflow_commits_total", {"shard": "3"}) == 2
    assert _sample(metrics, "raftflow_batch_commands_sum", {"shard": "3"}) == 18
    assert _sample(metrics, "raftflow_mailbox_depth", {"shard": "3"}) == 9
    assert _sample(metrics, "raftflow_leader_changes_total", {"shard": "3"}) == 1
    assert _sample(metrics, "raftflow_tasks_dispatched_total", {"kind": "activity"}) == 2
    assert _sample(metrics, "raftflow_timers_fired_total", {"shard": "3"}) == 4
    assert _sample(other, "raftflow_commits_total", {"shard": "3"}) is None
    assert REGISTRY.get_sample_value("raftflow_commits_total", {"shard": "3"}) is None
    body, content_type = metrics.render()
    assert b'raftflow_commits_total{shard="3"} 2.0' in body
    assert content_type.startswith("text/plain")


async def _serve_and_call(metrics: Metrics) -> tuple[int, int, int, str]:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hi": request.match_info["id"]})

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("bug")

    app = web.Application(middlewares=[metrics_middleware(metrics)])
    app.router.add_get("/things/{id}", hello)
    app.router.add_get("/boom", boom)
    app.router.add_get("/metrics", metrics_handler(metrics))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        ok = (await client.get("/things/a")).status
        await client.get("/things/b")
        missing = (await client.get("/nowhere")).status
        failed = (await client.get("/boom")).status
        text = await (await client.get("/metrics")).text()
    return ok, missing, failed, text


def test_middleware_labels_by_route_pattern() -> None:
    metrics = Metrics()
    ok, missing, failed, text = asyncio.run(_serve_and_call(metrics))
    assert (ok, missing, failed) == (200, 404, 500)
    name = "raftflow_http_request_duration_seconds_count"
    assert _sample(metrics, name, {"route": "/things/{id}", "method": "GET", "status": "200"}) == 2
    assert _sample(metrics, name, {"route": "unmatched", "method": "GET", "status": "404"}) == 1
    assert _sample(metrics, name, {"route": "/boom", "method": "GET", "status": "500"}) == 1
    assert 'route="/things/{id}"' in text and "/things/a" not in text
