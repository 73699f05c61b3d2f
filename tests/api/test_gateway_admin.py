"""Goal: a node's admin endpoints — Prometheus metrics, the OpenAPI document (which must list
every public route the app serves) and cluster status, on one node and on three.

Method: the one-node and three-node clusters of conftest.py, queried over HTTP with an aiohttp
client on their loop (`gateway_harness._drive`); the route check builds the app with
`make_app` and compares its router with the document.
"""

from __future__ import annotations

import aiohttp

from raftflow.api.app import make_app
from raftflow.api.openapi import openapi_document
from raftflow.api.polling import TaskPoller
from raftflow.api.routing import Gateway
from tests.api.gateway_harness import (
    API,
    Call,
    LiveCluster,
    _drive,
)


def test_metrics_openapi_and_cluster_status(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        status, metrics, _ = await call("GET", "/metrics")
        assert status == 200 and "raftflow_commits" in metrics
        status, document, _ = await call("GET", f"{API}/openapi.json")
        assert status == 200 and document["openapi"].startswith("3")
        assert f"{API}/namespaces/{{ns}}/workflows" in document["paths"]
        status, cluster, _ = await call("GET", f"{API}/cluster/status")
        assert status == 200
        assert [set(n) for n in cluster["nodes"]] == [
            {"id", "address", "pid", "alive", "state", "replicas", "leaders"}]
        node = cluster["nodes"][0]
        assert node["alive"] is True and node["state"] == "active"
        assert node["replicas"] == node["leaders"] == one.shard_count
        assert cluster["epoch"] >= 0 and cluster["moves"] == []
        assert len(cluster["shards"]) == one.shard_count
        for shard in cluster["shards"]:
            assert set(shard) == {"shard", "leader", "replicas", "term", "commit_index",
                                  "replica_lags"}
            assert shard["leader"] == "node-1" and shard["replicas"] == ["node-1"]
            assert shard["term"] >= 1 and shard["commit_index"] >= 1
            # One replica, its own commit index: it lags by what it has not applied yet.
            assert set(shard["replica_lags"]) == {"node-1"}
            assert 0 <= shard["replica_lags"]["node-1"] <= shard["commit_index"]

    _drive(one, one.url(one.nodes[0]), scenario)


def test_cluster_status_of_three_nodes(three: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        status, cluster, _ = await call("GET", f"{API}/cluster/status")
        assert status == 200
        assert [n["id"] for n in cluster["nodes"]] == ["node-1", "node-2", "node-3"]
        assert all(n["alive"] and isinstance(n["pid"], int) for n in cluster["nodes"])
        for shard in cluster["shards"]:
            assert sorted(shard["replicas"]) == ["node-1", "node-2", "node-3"]
            leader = three.ready_leader(shard["shard"])
            assert leader is not None and shard["leader"] == leader.node_id

    _drive(three, three.url(three.nodes[1]), scenario)


# Served for the nodes themselves (cluster status fan-out, list fan-out), not for clients.
# Internal routes not documented yet (poll/end and the hand-out retry are, marked x-internal).
_INTERNAL_ROUTES = {("GET", "/api/v1/node/status"),
                    ("GET", "/api/v1/namespaces/{ns}/shards/{shard}/workflows"),
                    ("GET", "/api/v1/namespaces/{ns}/shards/{shard}/workflow-count"),
                    ("*", "/api/v1/namespaces/{ns}/known"),
                    ("POST", "/api/v1/namespaces/{ns}/shards/{shard}/configure"),
                    ("PATCH", "/api/v1/namespaces/{ns}/shards/{shard}/configure")}


def test_every_public_route_is_in_the_openapi_document(one: LiveCluster) -> None:
    node = one.nodes[0]

    async def routes() -> set[tuple[str, str]]:
        async with aiohttp.ClientSession() as session:
            app = make_app(gateway=Gateway(node, session, node.tokens),
                           poller=TaskPoller(node, node.matcher, session, node.tokens), node=node)
            found = set()
            for route in app.router.routes():
                path = route.resource.canonical if route.resource is not None else ""
                path = path.replace("{namespace}", "{ns}").replace("{task_queue}", "{tq}")
                if route.method != "HEAD":
                    found.add((route.method, path))
            return found

    served = one.run(routes()) - _INTERNAL_ROUTES
    paths = openapi_document()["paths"]
    assert isinstance(paths, dict)
    documented = {(method.upper(), path) for path, operations in paths.items()
                  for method in operations}
    assert served - documented == set()
