"""Goal: per-namespace rate limits on live nodes, as api/rate_limits.py promises: beyond a
namespace's start limit a start or a signal is a 429 `rate_limited` with Retry-After and the
JSON error body, and changes nothing; each node admits its own share, and a call another node
forwarded is not counted again; another namespace is untouched; polls have their own limit;
an update takes effect on every node and `null` lifts it.

Method: the three-node cluster (`three`, conftest.py). Rates are far below a call per second
per node (0.3/s over 3 nodes: one call, then one per 10 s), so "the second call right after
the first is refused" holds on any machine, however slow.
"""

from __future__ import annotations

from collections.abc import Callable

from raftflow.cluster.ring import shard_for
from raftflow.node.runtime import NodeRuntime
from tests.api.gateway_harness import API, Call, LiveCluster, _drive, _error_code, _wid

SLOW_PER_S = 0.3  # over the cluster: 0.1/s on each of the 3 nodes, a burst of one call


def _start(workflow_id: str) -> dict[str, object]:
    return {"workflow_id": workflow_id, "workflow_type": "Greeter", "task_queue": "q",
            "input": {"name": "x"}, "request_id": f"r-{workflow_id}"}


def _rates_reached(cluster: LiveCluster, name: str, start: float | None,
                   poll: float | None) -> Callable[[], bool]:
    def every_node_has_them() -> bool:
        for node in cluster.nodes:
            found = node.cluster_map.namespace(name)
            if found is None or (found.start_rate_per_s, found.poll_rate_per_s) != (start, poll):
                return False
        return True
    return every_node_has_them


def _led_by(cluster: LiveCluster, namespace: str, node: NodeRuntime, prefix: str) -> str:
    """A workflow id of `namespace` whose shard `node` leads."""
    for _ in range(1000):
        wid = _wid(prefix)
        if cluster.ready_leader(shard_for(namespace, wid, cluster.shard_count)) is node:
            return wid
    raise AssertionError(f"{node.node_id} leads no shard")


def test_starts_signals_and_polls_beyond_a_namespace_limit_are_429(three: LiveCluster) -> None:
    first, second, third = three.nodes
    base = three.url(first)

    async def scenario(call: Call) -> None:
        status, created, _ = await call("POST", f"{API}/namespaces", json={
            "name": "noisy", "retention_ms": 60_000, "start_rate_per_s": SLOW_PER_S})
        assert status == 201 and created["start_rate_per_s"] == SLOW_PER_S, created
        assert created["poll_rate_per_s"] is None
        status, _, _ = await call("POST", f"{API}/namespaces", json={"name": "quiet"})
        assert status == 201
        await three.wait_for(_rates_reached(three, "noisy", SLOW_PER_S, None))
        noisy = f"{API}/namespaces/noisy/workflows"

        # The first node's share is one call: the first start is taken...
        kept = _led_by(three, "noisy", first, "kept")
        status, _, _ = await call("POST", noisy, json=_start(kept))
        assert status == 201
        # ...the next start and a signal are refused, with the wait and the rule...
        refused = _wid("refused")
        status, body, headers = await call("POST", noisy, json=_start(refused))
        assert status == 429, body
        assert _error_code(body) == "rate_limited" and body["error"]["field"] == "namespace"
        assert "namespace noisy" in body["error"]["message"]
        assert int(headers["Retry-After"]) >= 1
        status, body, headers = await call("POST", f"{noisy}/{kept}/signal",
                                           json={"signal_name": "go", "request_id": "s1"})
        assert status == 429 and _error_code(body) == "rate_limited", body
        assert "Retry-After" in headers
        # ...and changed nothing: the refused workflow does not exist.
        status, body, _ = await call("GET", f"{noisy}/{refused}")
        assert status == 404, body

        # Another node admits its own share, and the node it forwards to (the first, out
        # of tokens) does not count the call again.
        forwarded = _led_by(three, "noisy", first, "fwd")
        status, body, _ = await call("POST", noisy, json=_start(forwarded),
                                     base_url=three.url(second))
        assert status == 201, body
        status, body, _ = await call("POST", noisy, json=_start(_wid("more")),
                                     base_url=three.url(second))
        assert status == 429, body

        # The flood spent only noisy's budget.
        for index in range(20):
            status, body, _ = await call("POST", f"{API}/namespaces/quiet/workflows",
                                         json=_start(f"quiet-{index}"))
            assert status == 201, body

        # Polls have their own limit.
        status, body, _ = await call("PATCH", f"{API}/namespaces/noisy",
                                     json={"poll_rate_per_s": SLOW_PER_S})
        assert status == 200 and body["poll_rate_per_s"] == SLOW_PER_S, body
        assert body["start_rate_per_s"] == SLOW_PER_S  # left out: unchanged
        await three.wait_for(_rates_reached(three, "noisy", SLOW_PER_S, SLOW_PER_S))
        poll = f"{API}/namespaces/noisy/task-queues/q2/activity-tasks/poll"
        status, _, _ = await call("POST", poll, json={"wait_ms": 0}, base_url=three.url(third))
        assert status == 204
        status, body, headers = await call("POST", poll, json={"wait_ms": 0},
                                           base_url=three.url(third))
        assert status == 429 and _error_code(body) == "rate_limited", body
        assert "task polls" in body["error"]["message"] and "Retry-After" in headers

        # null goes back to the cluster's default (here: unlimited).
        status, body, _ = await call("PATCH", f"{API}/namespaces/noisy",
                                     json={"start_rate_per_s": None, "poll_rate_per_s": None})
        assert status == 200 and body["start_rate_per_s"] is None, body
        await three.wait_for(_rates_reached(three, "noisy", None, None))
        for index in range(5):
            status, body, _ = await call("POST", noisy, json=_start(f"free-{index}"))
            assert status == 201, body

    _drive(three, base, scenario)


def test_an_invalid_rate_is_a_400_naming_the_field(three: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        for rate in (0, -1, 1e9, "fast"):
            status, body, _ = await call("POST", f"{API}/namespaces", json={
                "name": "bad-rate", "start_rate_per_s": rate})
            assert status == 400 and _error_code(body) == "invalid_argument", body
            assert body["error"]["field"] == "start_rate_per_s", body
        status, body, _ = await call("GET", f"{API}/namespaces/bad-rate")
        assert status == 404, body

    _drive(three, three.url(three.nodes[0]), scenario)
