"""The HTTP gateway over real in-process nodes: public API, worker API, routing, overload.

Goal: check the HTTP contract end to end on real nodes — idempotent start (I5), describe and
paged history (I3), signal/terminate, error bodies `{"error": {"code", "message", "field"}}`
with the state unchanged on refusal, payload bounds, one-hop forwarding, 503 + Retry-After for
`not_leader` and `overloaded` (I7), the worker protocol (poll, complete, fail, heartbeat, stale
completions refused), and the admin endpoints (metrics, OpenAPI, cluster status).
Method: a one-node and a three-node cluster of `NodeRuntime` objects share ONE asyncio loop,
run in a background thread for the module (so Raft keeps ticking between tests), on free
127.0.0.1 ports and temporary data directories; each test drives them with an aiohttp client
on that loop. Waits are condition waits; no fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from raftflow.actors import limits
from raftflow.actors.errors import MailboxFullError
from raftflow.api.app import make_app
from raftflow.api.openapi import openapi_document
from raftflow.api.polling import TaskPoller
from raftflow.api.routing import FORWARDED_HEADER, Gateway
from raftflow.cluster.config import dev_cluster_config
from raftflow.cluster.ring import shard_for
from raftflow.node.runtime import NodeRuntime
from raftflow.protocol.commands import Barrier
from raftflow.sdk._http import SERVED_BY_HEADER as SDK_SERVED_BY_HEADER

T = TypeVar("T")
NS = "default"
API = "/api/v1"
READY_TIMEOUT_S = 20.0


def _free_port_base(count: int) -> int:
    """A base port such that base..base+count-1 and base+1000.. are all free on loopback."""
    for _ in range(200):
        base = random.randint(20_000, 40_000)
        ports = [base + i for i in range(count)] + [base + 1000 + i for i in range(count)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


class LiveCluster:
    """Nodes on one event loop in a background thread; tests submit coroutines to it."""

    def __init__(self, data_dir: Path, node_count: int, shard_count: int) -> None:
        base = _free_port_base(node_count)
        self.config = dev_cluster_config(node_count=node_count, http_port_base=base,
                                         shard_count=shard_count, secret="test-secret")
        self.shard_count = shard_count
        self.nodes: list[NodeRuntime] = []
        for spec in self.config.nodes:
            (data_dir / spec.id).mkdir()
            self.nodes.append(NodeRuntime(self.config, spec.id, data_dir / spec.id))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        await asyncio.gather(*(node.start() for node in self.nodes))
        await self.wait_for(self._all_shards_ready, READY_TIMEOUT_S)

    def _all_shards_ready(self) -> bool:
        return all(self.ready_leader(s) is not None for s in range(self.shard_count)) and all(
            n.all_local_shards_have_leaders() for n in self.nodes)

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
        """Runs held by the leaders' states (read on the loop thread)."""
        async def count() -> int:
            total = 0
            for shard in range(self.shard_count):
                leader = self.ready_leader(shard)
                actor = None if leader is None else leader.actor(shard)
                assert actor is not None, f"shard {shard} has no ready leader"
                total += len(actor.state.executions)
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


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    yield from _cluster(tmp_path_factory, 1, 2)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    yield from _cluster(tmp_path_factory, 3, 4)


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


# -- one node: public API -------------------------------------------------------------------------


def test_start_is_idempotent_per_request_id_and_one_run_is_open(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid = _wid("start")
        status, first, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="r-1"))
        assert status == 201 and first["workflow_id"] == wid and first["run_id"]
        status, again, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="r-1"))
        assert status in (200, 201) and again["run_id"] == first["run_id"]
        status, other, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                      json=_start_body(wid, request_id="r-2"))
        assert status == 409 and _error_code(other) == "workflow_already_started"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_describe_history_paging_signal_and_terminate(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid = _wid("life")
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, started, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                        json=_start_body(wid))
        assert status == 201
        status, described, _ = await call("GET", wf)
        assert status == 200 and described["status"] == "RUNNING"
        assert described["run_id"] == started["run_id"]
        for i in range(3):
            status, _, _ = await call("POST", wf + "/signal",
                                      json={"signal_name": "ping", "input": i})
            assert status == 200
        status, whole, _ = await call("GET", wf + "/history")
        assert status == 200 and whole["next_page_token"] is None
        ids = [e["event_id"] for e in whole["events"]]
        assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 5
        assert [e["event_type"] for e in whole["events"]].count("WorkflowExecutionSignaled") == 3
        paged: list[int] = []
        token: str | None = None
        for _ in range(len(ids) + 1):
            query = f"?page_size=2{'' if token is None else '&next_page_token=' + token}"
            status, page, _ = await call("GET", wf + "/history" + query)
            assert status == 200 and len(page["events"]) <= 2
            paged += [e["event_id"] for e in page["events"]]
            token = page["next_page_token"]
            if token is None:
                break
        assert paged == ids
        status, _, _ = await call("POST", wf + "/terminate", json={"reason": "test"})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "TERMINATED"
        status, refused, _ = await call("POST", wf + "/signal", json={"signal_name": "late"})
        assert status == 409 and _error_code(refused) == "workflow_not_running"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_unknown_workflow_is_404(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wf = f"{API}/namespaces/{NS}/workflows/{_wid('nobody')}"
        for method, path, body in (("GET", wf, None), ("GET", wf + "/history", None),
                                   ("POST", wf + "/signal", {"signal_name": "s"}),
                                   ("POST", wf + "/terminate", {})):
            status, answer, _ = await call(method, path, json=body)
            assert status == 404, (method, path, answer)
            assert _error_code(answer) == "not_found"

    _drive(one, one.url(one.nodes[0]), scenario)


@pytest.mark.parametrize(("namespace", "body", "field"), [
    (NS, {"workflow_type": "T", "task_queue": "q"}, "workflow_id"),
    (NS, {"workflow_id": 5, "workflow_type": "T", "task_queue": "q"}, "workflow_id"),
    (NS, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q", "colour": 1}, "colour"),
    (NS, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q",
          "execution_timeout_ms": "soon"}, "execution_timeout_ms"),
    ("n" * 1001, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q"}, "namespace"),
    # Beyond msgpack's int64: must be refused here, not poison the shard's next log entry.
    (NS, {"workflow_id": "w", "workflow_type": "T", "task_queue": "q",
          "task_timeout_ms": 10**30}, "task_timeout_ms"),
])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(
        one: LiveCluster, namespace: str, body: dict[str, Any], field: str) -> None:
    before = one.executions()

    async def scenario(call: Call) -> None:
        status, answer, _ = await call("POST", f"{API}/namespaces/{namespace}/workflows",
                                       json=body)
        assert status == 400, answer
        assert answer["error"]["code"] == "invalid_argument"
        assert answer["error"]["field"] == field
        assert field in answer["error"]["message"]

    _drive(one, one.url(one.nodes[0]), scenario)
    assert one.executions() == before


def test_a_payload_over_2_mib_is_413_and_changes_nothing(one: LiveCluster) -> None:
    before = one.executions()

    async def scenario(call: Call) -> None:
        big = "x" * (2 * 1024 * 1024 + 1)
        status, answer, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                       json=_start_body(_wid("big"), input=big))
        assert status == 413 and _error_code(answer) == "payload_too_large"
        status, answer, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                       json=_start_body(_wid("huge"), input="y" * 5_000_000))
        assert status == 413
        assert _error_code(answer) == "payload_too_large"  # JSON error body, like every error

    _drive(one, one.url(one.nodes[0]), scenario)
    assert one.executions() == before


def test_a_full_mailbox_answers_503_overloaded_with_retry_after(one: LiveCluster) -> None:
    node = one.nodes[0]
    wid = _wid("busy")
    shard = shard_for(NS, wid, one.shard_count)
    group = node.host.groups[shard]  # type: ignore[union-attr]
    actor = node.actor(shard)
    assert actor is not None
    held: list[Callable[[str], None]] = []

    async def fill() -> int:
        # Stop the log from committing this shard, then fill its mailbox to the bound.
        group.propose = lambda data, on_failed: held.append(on_failed)  # type: ignore[method-assign]
        filled = 0
        while True:  # until a drain (in-flight cap reached) frees no room any more
            try:
                future = actor.submit(Barrier(now_ms=actor.now_ms(), leader_node=node.node_id,
                                              term=0))
                future.add_done_callback(lambda f: f.cancelled() or f.exception())
                filled += 1
                continue
            except MailboxFullError:
                await asyncio.sleep(0)
            if actor.mailbox_depth == limits.MAILBOX_COMMANDS_MAX and held:
                return filled

    async def release() -> None:
        del group.propose
        for on_failed in held:
            on_failed("test released")
        await one.wait_for(lambda: actor.mailbox_depth == 0)

    assert one.run(fill()) > 0
    try:
        async def scenario(call: Call) -> None:
            status, answer, headers = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                                 json=_start_body(wid))
            assert status == 503 and _error_code(answer) == "overloaded"
            assert int(headers["Retry-After"]) >= 1

        _drive(one, one.url(node), scenario)
    finally:
        one.run(release())

    async def after(call: Call) -> None:
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows", json=_start_body(wid))
        assert status == 201  # the shard recovers once its log commits again

    _drive(one, one.url(node), after)


# -- one node: worker protocol ---------------------------------------------------------------------


def test_worker_flow_poll_complete_fail_heartbeat_and_stale_completions(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("work"), _wid("tq")
        tq = f"{API}/namespaces/{NS}/task-queues/{queue}"
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        status, _, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 0})
        assert status == 204
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200 and task["workflow_id"] == wid
        assert [e["event_id"] for e in task["history"]] == list(range(1, len(task["history"]) + 1))
        commands = [
            {"type": "ScheduleActivityTask", "activity_id": "a1", "activity_type": "Charge",
             "task_queue": queue, "input": {"n": 1}, "start_to_close_timeout_ms": 30_000},
            {"type": "ScheduleActivityTask", "activity_id": "a2", "activity_type": "Charge",
             "task_queue": queue, "start_to_close_timeout_ms": 30_000,
             "retry_policy": {"maximum_attempts": 1}},
            {"type": "StartTimer", "timer_id": "t1", "start_to_fire_timeout_ms": 3_600_000},
        ]
        completion = {"task_token": task["task_token"], "commands": commands}
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json=completion)
        assert status == 200
        status, stale, _ = await call("POST", f"{API}/tasks/workflow/complete", json=completion)
        assert status == 409 and _error_code(stale) == "stale_task"

        activities = {}
        for _ in range(2):
            status, activity, _ = await call("POST", f"{tq}/activity-tasks/poll",
                                             json={"wait_ms": 5000})
            assert status == 200
            activities[activity["activity_id"]] = activity
        assert activities["a1"]["input"] == {"n": 1}
        token1, token2 = activities["a1"]["task_token"], activities["a2"]["task_token"]
        status, beat, _ = await call("POST", f"{API}/tasks/activity/heartbeat",
                                     json={"task_token": token1, "details": {"p": 50}})
        assert status == 200 and beat == {"cancel_requested": False}
        status, _, _ = await call("POST", f"{API}/tasks/activity/complete",
                                  json={"task_token": token1, "result": {"ok": True}})
        assert status == 200
        status, stale, _ = await call("POST", f"{API}/tasks/activity/complete",
                                      json={"task_token": token1, "result": {"ok": True}})
        assert status == 409 and _error_code(stale) == "stale_task"
        status, _, _ = await call("POST", f"{API}/tasks/activity/fail", json={
            "task_token": token2, "failure": {"message": "card declined", "type": "Declined",
                                              "non_retryable": True}})
        assert status == 200

        status, task, _ = await call("POST", f"{tq}/workflow-tasks/poll", json={"wait_ms": 5000})
        assert status == 200
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": {"done": 1}}]})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "COMPLETED"
        status, history, _ = await call("GET", wf + "/history")
        types = [e["event_type"] for e in history["events"]]
        for expected in ("ActivityTaskScheduled", "ActivityTaskCompleted", "ActivityTaskFailed",
                         "TimerStarted", "WorkflowExecutionCompleted"):
            assert expected in types, (expected, types)
        assert types[-1] == "WorkflowExecutionCompleted"
        assert [e["event_id"] for e in history["events"]] == list(range(1, len(types) + 1))

    _drive(one, one.url(one.nodes[0]), scenario)


def test_bad_worker_input_is_400(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("badworker"), _wid("tq")
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        status, task, _ = await call(
            "POST", f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll",
            json={"wait_ms": 5000})
        assert status == 200
        huge_timer = [{"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 10**30}]
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": huge_timer})
        assert status == 400, answer
        assert answer["error"]["field"] == "commands[0].start_to_fire_timeout_ms"
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": [{"type": "Explode"}]})
        assert status == 400 and answer["error"]["field"] == "commands[0].type"
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"], "commands": []})
        assert status == 200  # the refusals above left the task open
        status, answer, _ = await call("POST", f"{API}/tasks/workflow/complete",
                                       json={"commands": []})
        assert status == 400 and answer["error"]["field"] == "task_token"
        status, answer, _ = await call("POST", f"{API}/namespaces/{NS}/task-queues/q/workflow-tasks/poll",
                                       json={"wait_ms": -1})
        assert status == 400 and answer["error"]["field"] == "wait_ms"

    _drive(one, one.url(one.nodes[0]), scenario)


# -- one node: admin -------------------------------------------------------------------------------


def test_metrics_openapi_and_cluster_status(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        status, metrics, _ = await call("GET", "/metrics")
        assert status == 200 and "raftflow_commits" in metrics
        status, document, _ = await call("GET", f"{API}/openapi.json")
        assert status == 200 and document["openapi"].startswith("3")
        assert f"{API}/namespaces/{{ns}}/workflows" in document["paths"]
        status, cluster, _ = await call("GET", f"{API}/cluster/status")
        assert status == 200
        assert [set(n) for n in cluster["nodes"]] == [{"id", "address", "pid", "alive"}]
        assert cluster["nodes"][0]["alive"] is True
        assert len(cluster["shards"]) == one.shard_count
        for shard in cluster["shards"]:
            assert set(shard) == {"shard", "leader", "replicas", "term", "commit_index"}
            assert shard["leader"] == "node-1" and shard["replicas"] == ["node-1"]
            assert shard["term"] >= 1 and shard["commit_index"] >= 1

    _drive(one, one.url(one.nodes[0]), scenario)


# -- three nodes: routing ----------------------------------------------------------------------------


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


def test_a_forwarded_call_reaching_a_non_leader_is_503_not_leader(three: LiveCluster) -> None:
    wid, _, other = _placed(three, "loop")
    before = three.executions()

    async def scenario(call: Call) -> None:
        status, answer, headers = await call(
            "POST", f"{API}/namespaces/{NS}/workflows", json=_start_body(wid),
            headers={FORWARDED_HEADER: "node-x"})
        assert status == 503 and _error_code(answer) == "not_leader"
        assert int(headers["Retry-After"]) >= 1

    _drive(three, three.url(other), scenario)
    assert three.executions() == before


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
_INTERNAL_ROUTES = {("GET", "/api/v1/node/status"), ("POST", "/api/v1/tasks/poll/end"),
                    ("GET", "/api/v1/namespaces/{ns}/shards/{shard}/workflows")}


def test_every_public_route_is_in_the_openapi_document(one: LiveCluster) -> None:
    node = one.nodes[0]

    async def routes() -> set[tuple[str, str]]:
        async with aiohttp.ClientSession() as session:
            app = make_app(gateway=Gateway(node, session),
                           poller=TaskPoller(node, node.matcher, session), node=node)
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


@pytest.mark.parametrize("cluster_name", ["one", "three"])
def test_a_task_is_not_lost_to_a_poller_that_hung_up(
        request: pytest.FixtureRequest, cluster_name: str) -> None:
    """A worker whose long poll is cut (client timeout, crash) must not swallow the next task:
    the next poll gets it at once, first attempt, not after the 10 s task timeout."""
    cluster: LiveCluster = request.getfixturevalue(cluster_name)
    wid, queue = _wid("hangup"), _wid("tq")
    poll = f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll"
    entry = cluster.nodes[0]

    async def scenario(call: Call) -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.post(cluster.url(entry) + poll, json={"wait_ms": 20_000},
                                   timeout=aiohttp.ClientTimeout(total=0.3))
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", poll, json={"wait_ms": 3000})
        assert status == 200, "the task went to the poller that hung up"
        assert task["workflow_id"] == wid and task["attempt"] == 1

    _drive(cluster, cluster.url(entry), scenario)


def test_signal_retry_is_idempotent_and_cancel_closes_through_the_worker(
        one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("cancel"), _wid("tq")
        wf = f"{API}/namespaces/{NS}/workflows/{wid}"
        poll = f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll"
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        for _ in range(2):
            status, _, _ = await call("POST", wf + "/signal", json={
                "signal_name": "go", "input": 1, "request_id": "sig-1"})
            assert status == 200
        status, _, _ = await call("POST", wf + "/cancel", json={"reason": "user"})
        assert status == 200
        status, history, _ = await call("GET", wf + "/history")
        types = [e["event_type"] for e in history["events"]]
        assert types.count("WorkflowExecutionSignaled") == 1  # the retry changed nothing (I5)
        assert "WorkflowExecutionCancelRequested" in types
        status, task, _ = await call("POST", poll, json={"wait_ms": 5000})
        assert status == 200
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CancelWorkflowExecution", "details": "bye"}]})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "CANCELED"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_a_durable_timer_fires_and_schedules_the_next_workflow_task(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        wid, queue = _wid("timer"), _wid("tq")
        poll = f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll"
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, task, _ = await call("POST", poll, json={"wait_ms": 5000})
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "StartTimer", "timer_id": "t", "start_to_fire_timeout_ms": 50}]})
        assert status == 200
        status, task, _ = await call("POST", poll, json={"wait_ms": 5000})
        assert status == 200, "the timer did not fire"
        types = [e["event_type"] for e in task["history"]]
        assert types.index("TimerStarted") < types.index("TimerFired")

    _drive(one, one.url(one.nodes[0]), scenario)
