"""Goal: routing across three nodes — a call to a non-leader is forwarded once (one run,
whichever node took the call, and the answer names the node that gave it), a forwarded call
that reaches a non-leader is 503 `not_leader` with Retry-After (I7) and changes nothing, a
worker on any node gets tasks of every shard, and workflow ids with reserved characters
survive the hop.

Method: the three-node cluster (`three`, conftest.py) on one asyncio loop in a background
thread; each test places a workflow id on a shard whose leader it knows and calls another node
with an aiohttp client on that loop (`gateway_harness._drive`).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

from yarl import URL

from raftflow.api.routing import FORWARD_HOPS_MAX, FORWARDED_FROM_HEADER, FORWARDED_HEADER
from raftflow.cluster.ring import shard_for
from raftflow.node.runtime import NodeRuntime
from raftflow.sdk._http import SERVED_BY_HEADER as SDK_SERVED_BY_HEADER
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


def _placed(cluster: LiveCluster, prefix: str) -> tuple[str, NodeRuntime, NodeRuntime]:
    """A workflow id, the node leading its shard, and a node that does not lead it."""
    wid = _wid(prefix)
    leader = cluster.ready_leader(shard_for(NS, wid, cluster.shard_count))
    assert leader is not None
    other = next(n for n in cluster.nodes if n is not leader)
    return wid, leader, other


def test_a_call_to_a_non_leader_is_forwarded_once(three: LiveCluster) -> None:
    wid, leader, other = _placed(three, "fwd")

    async def scenario(call: Call) -> None:
        status, started, headers = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                              json=_start_body(wid, request_id="once"))
        assert status == 201
        # The relayed answer names the node that gave it (workers answer eager tasks there),
        # under the header name the SDK reads.
        assert headers.get(SDK_SERVED_BY_HEADER) == three.url(leader), dict(headers)
        status, described, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}")
        assert status == 200 and described["run_id"] == started["run_id"]
        status, again, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="once"),
                                      base_url=three.url(leader))
        assert again["run_id"] == started["run_id"]  # one run, whichever node took the call

    _drive(three, three.url(other), scenario)


def test_a_forwarded_call_reaching_a_non_leader_is_forwarded_once_more_never_in_a_loop(
        three: LiveCluster) -> None:
    """Leadership moves, so the node a call was forwarded to may have just lost the shard: it
    forwards once more to the leader it knows, even back to the node that sent it (a hand-off
    often goes just there; found in CI: a result wait cut by a hand-off to its sender), but
    never past FORWARD_HOPS_MAX hops: then 503."""
    wid, leader, other = _placed(three, "loop")
    before = three.executions()

    async def scenario(call: Call) -> None:
        body = _start_body(wid)
        status, answer, headers = await call(
            "POST", f"{API}/namespaces/{NS}/workflows", json=body,
            headers={FORWARDED_HEADER: str(FORWARD_HOPS_MAX)})
        assert status == 503 and _error_code(answer) == "not_leader"
        assert int(headers["Retry-After"]) >= 1
        status, started, headers = await call(
            "POST", f"{API}/namespaces/{NS}/workflows", json=body,
            headers={FORWARDED_HEADER: "1", FORWARDED_FROM_HEADER: leader.node_id})
        assert status == 201, started
        assert headers.get(SDK_SERVED_BY_HEADER) == three.url(leader)

    _drive(three, three.url(other), scenario)
    assert three.executions() == before + 1


def test_a_worker_on_any_node_gets_tasks_of_every_shard(three: LiveCluster) -> None:
    wid, leader, other = _placed(three, "far")
    queue = _wid("tq")

    async def scenario(call: Call) -> None:
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue),
                                  base_url=three.url(leader))
        assert status == 201
        status, task, _ = await call(
            "POST", f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll",
            json={"wait_ms": 5000})
        assert status == 200 and task["workflow_id"] == wid
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": None}]})
        assert status == 200
        status, described, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}")
        assert described["status"] == "COMPLETED"

    _drive(three, three.url(other), scenario)


def test_forwarding_keeps_workflow_ids_with_reserved_characters(three: LiveCluster) -> None:
    """Ids are free text (Temporal allows any characters): '/', '?', '%', ' ' must survive
    the hop to the leader, percent-encoded in the path exactly as the client sent them."""
    for _ in range(100):
        wid = f"order/7 ?x=1#%25-{uuid.uuid4().hex[:6]}"
        leader = three.ready_leader(shard_for(NS, wid, three.shard_count))
        if leader is not three.nodes[0]:
            break
    quoted = quote(wid, safe="")

    async def scenario(call: Call) -> None:
        status, started, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                        json=_start_body(wid))
        assert status == 201
        url = URL(three.url(three.nodes[0]) + f"{API}/namespaces/{NS}/workflows/{quoted}",
                  encoded=True)
        status, described, _ = await call("GET", "", base_url=url)
        assert status == 200, described
        assert described["workflow_id"] == wid and described["run_id"] == started["run_id"]

    _drive(three, three.url(three.nodes[0]), scenario)
