"""The task stream (protocol/task_stream.py), the SDK worker's default protocol, on a real
3-node cluster.

Goal: a worker on streams runs workflows with the same histories as a worker on HTTP (and as
the golden recording of the same sample); a slow worker never holds more tasks than its slots;
a worker that is not the SDK can speak the stream (grant, task, call, reply, withdraw); bad
input gets a clear refusal; and a worker survives kill -9 of a node it streams from.

Method: `raftflow node` processes on loopback (one cluster for the module; the last test
kills a node and starts it again). Raw-protocol tests open WebSockets with aiohttp and speak
msgpack frames; the rest goes through the public SDK.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from raftflow.cluster.launcher import LocalCluster
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.task_stream import (
    STREAM_SUBPROTOCOL,
    Call,
    FrameToNode,
    Grant,
    PushedTask,
    Reply,
    ToWorker,
    Withdraw,
    Withdrawn,
    decode_to_worker,
    encode_frame,
)
from raftflow.sdk import activity, workflow
from raftflow.sdk.client import Client
from raftflow.sdk.worker import TaskProtocol, Worker
from tests.live_cluster import running
from tests.sdk.sample_workflows import ACTIVITIES, WORKFLOWS, Order

RESULT_TIMEOUT_S = 30
HISTORIES = Path(__file__).resolve().parents[1] / "data" / "histories"
NS = "/api/v1/namespaces/default"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running(tmp_path_factory, "task-streams") as local:
        yield local


def _addresses(cluster: LocalCluster) -> list[str]:
    return [cluster.address(n) for n in cluster.node_ids]


def _run(cluster: LocalCluster, body: Callable[[Client, str], Awaitable[None]]) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            await body(client, f"q-{uuid.uuid4().hex[:8]}")

    asyncio.run(main())


# -- the SDK on streams ------------------------------------------------------------------------

def _shape(events: list[dict[str, Any]]) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """A history without what differs between two runs of the same code (ids, times, queue,
    identities): each event's type and its stable attributes."""
    stable = ("activity_id", "activity_type", "input", "result", "attempt", "timer_id",
              "start_to_fire_timeout_ms", "start_to_close_timeout_ms")

    def value(key: str, found: object) -> str:
        if key == "result" and isinstance(found, dict):  # Order's result names its uuid4,
            found = {k: v for k, v in found.items() if k != "id"}  # seeded by the run id
        return json.dumps(found, sort_keys=True)

    return [(e["event_type"], tuple((k, value(k, e["attributes"][k]))
                                    for k in stable if k in e["attributes"]))
            for e in events]


async def _history(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(
            f"{client.addresses[0]}{NS}/workflows/{workflow_id}/history") as answer:
        assert answer.status == 200
        body = await answer.json()
    events: list[dict[str, Any]] = body["events"]
    return events


def test_streams_and_http_give_the_same_history_as_the_golden_one(
        cluster: LocalCluster) -> None:
    """The sample Order (a retried activity, a second one, a timer) recorded in
    tests/data/histories/order_retry.json, run by a worker on each protocol."""
    golden = json.loads((HISTORIES / "order_retry.json").read_text())["events"]
    shapes: dict[TaskProtocol, list[Any]] = {}

    async def body(client: Client, queue: str) -> None:
        for protocol in ("stream", "http"):
            calls_before = client.transport.stream_calls_sent
            async with Worker(client, task_queue=queue, workflows=list(WORKFLOWS.values()),
                              activities=list(ACTIVITIES.values()), task_protocol=protocol):
                workflow_id = f"order-{protocol}-{queue}"
                result = await asyncio.wait_for(client.execute_workflow(
                    Order.run, "o-1", id=workflow_id, task_queue=queue), RESULT_TIMEOUT_S)
                assert result["charge"] == "charged o-1" and result["ship"] == "shipped o-1"
            calls = client.transport.stream_calls_sent - calls_before
            # The workflow task completions and activity answers (at least five) went on the
            # stream, and none when the worker was told to use HTTP.
            assert (calls >= 5) if protocol == "stream" else (calls == 0), (protocol, calls)
            shapes[protocol] = _shape(await _history(client, workflow_id))

    _run(cluster, body)
    assert shapes["stream"] == shapes["http"] == _shape(golden)


@activity.defn
async def sleepy(n: int) -> int:
    """Counts how many run at once (the worker's slots bound it)."""
    _Running.now += 1
    _Running.most = max(_Running.most, _Running.now)
    try:
        await asyncio.sleep(0.3)
        return n
    finally:
        _Running.now -= 1


class _Running:
    now = 0
    most = 0


@workflow.defn
class OneSleepy:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(sleepy, n,
                                               start_to_close_timeout=timedelta(seconds=20))


@pytest.mark.parametrize("slots", [2, 3])
def test_a_slow_worker_gets_no_more_tasks_than_its_slots(cluster: LocalCluster,
                                                         slots: int) -> None:
    """Twelve workflows each wait for one 0.3 s activity; the worker has `slots` activity
    slots. At no moment do more than `slots` activities run in the worker (a task pushed
    without a grant would not run at all: the worker drops it). With a slot per node, the
    grants are each node's own, and the nodes record no more than `slots` handed out and not
    yet answered either: from each attempt's hand-out (the pending activity's
    `last_started_time`, sampled while it runs) to its ActivityTaskCompleted, both stamped by
    the nodes' one clock. (With fewer slots than nodes a grant waits on every node, as an HTTP
    poll does, and a task another node claimed meanwhile waits there, handed out but not yet
    pushed, until a grant takes it: docs/api.md, "Worker protocol".)"""
    _Running.now = _Running.most = 0
    handed_out: dict[str, int] = {}
    spans: list[tuple[int, int]] = []

    async def body(client: Client, queue: str) -> None:
        async with Worker(client, task_queue=queue, workflows=[OneSleepy], activities=[sleepy],
                          max_concurrent_activities=slots):
            handles = [await client.start_workflow(OneSleepy.run, n, id=f"s-{queue}-{n}",
                                                   task_queue=queue) for n in range(12)]
            results = asyncio.gather(*(h.result() for h in handles))
            async with aiohttp.ClientSession() as session:
                while not results.done():
                    for described in await asyncio.gather(*(
                            _describe(session, client.addresses[0], h.id) for h in handles)):
                        for pending in described["pending_activities"]:
                            if pending["last_started_time"]:
                                handed_out[described["workflow_id"]] = _ms(
                                    pending["last_started_time"])
                    await asyncio.sleep(0.05)
            assert await results == list(range(12))
        for handle in handles:
            if handle.id not in handed_out:
                continue  # ran between two looks: counted by the worker only (below)
            events = await _history(client, handle.id)
            (closed,) = [_ms(e["timestamp"]) for e in events
                         if e["event_type"] == "ActivityTaskCompleted"]
            spans.append((handed_out[handle.id], closed))

    _run(cluster, body)
    # Never passed (and the test did load the worker: two at once at least).
    assert 2 <= _Running.most <= slots, _Running.most
    # A completion is stamped before the worker frees its slot, and a hand-out after a grant
    # took a free slot: at one millisecond, the closes count first.
    edges = sorted([(t, 1) for t, _ in spans] + [(t, -1) for _, t in spans])
    held = most = 0
    for _, change in edges:
        held += change
        most = max(most, held)
    if slots >= len(cluster.node_ids):
        assert len(spans) >= 8, spans  # most were seen running (0.3 s each, looked at every
        assert 2 <= most <= slots, (most, spans)  # 0.05 s): what was seen never passed


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


async def _describe(session: aiohttp.ClientSession, address: str,
                    workflow_id: str) -> dict[str, Any]:
    async with session.get(f"{address}{NS}/workflows/{workflow_id}") as answer:
        assert answer.status == 200, await answer.text()
        described: dict[str, Any] = await answer.json()
        return described


# -- the raw protocol --------------------------------------------------------------------------

async def _open(session: aiohttp.ClientSession, address: str,
                queue: str) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(f"{address}{NS}/task-queues/{queue}/stream",
                                    params={"identity": "raw"}, protocols=(STREAM_SUBPROTOCOL,))


async def _send(ws: aiohttp.ClientWebSocketResponse, *messages: Grant | Call | Withdraw) -> None:
    await ws.send_bytes(encode_frame(FrameToNode(messages=list(messages))))


async def _next(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 10) -> list[ToWorker]:
    message = await ws.receive(timeout=timeout_s)
    assert message.type is aiohttp.WSMsgType.BINARY, message
    return decode_to_worker(message.data).messages


def test_a_non_sdk_worker_speaks_the_stream(cluster: LocalCluster) -> None:
    """Grants on every node; a started workflow's first task is pushed by its shard's leader;
    completed on that stream, the workflow closes; a withdraw is confirmed."""
    queue = f"raw-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            streams = [await _open(session, a, queue) for a in _addresses(cluster)]
            for ws in streams:
                assert ws.protocol == STREAM_SUBPROTOCOL
                await _send(ws, Grant(kind=TaskKind.WORKFLOW, count=1))
            async with session.post(f"{cluster.address(cluster.node_ids[0])}{NS}/workflows",
                                    json={"workflow_id": f"raw-{queue}", "workflow_type": "Raw",
                                          "task_queue": queue, "input": [1]}) as answer:
                assert answer.status == 201, await answer.text()
            pushed = await asyncio.wait_for(_first_task(streams), 10)
            ws, task = pushed
            assert task["workflow_id"] == f"raw-{queue}" and task["workflow_type"] == "Raw"
            body = json.dumps({"task_token": task["task_token"], "commands": [
                {"type": "CompleteWorkflowExecution", "result": 42}]}).encode()
            await _send(ws, Call(seq=1, path="/api/v1/tasks/workflow/complete", body=body))
            reply = (await _next(ws))[0]
            assert isinstance(reply, Reply) and (reply.seq, reply.status) == (1, 200), reply
            async with session.get(f"{cluster.address(cluster.node_ids[1])}{NS}/workflows/"
                                   f"raw-{queue}/result") as answer:
                closed = await answer.json()
            assert closed["status"] == "COMPLETED" and closed["result"] == 42, closed
            for other in streams:
                await _send(other, Withdraw())
                if other is not ws:
                    assert [type(m) for m in await _next(other)] == [Withdrawn]
            assert [type(m) for m in await _next(ws)] == [Withdrawn]
            for other in streams:
                await other.close()

    async def _first_task(streams: list[aiohttp.ClientWebSocketResponse],
                          ) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
        waits = {asyncio.ensure_future(_next(ws, 15)): ws for ws in streams}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in pending:
            wait.cancel()
        winner = done.pop()
        messages = winner.result()
        assert len(messages) == 1 and isinstance(messages[0], PushedTask), messages
        return waits[winner], json.loads(messages[0].body)

    asyncio.run(main())


def test_bad_calls_get_clear_replies_and_bad_frames_close_the_stream(
        cluster: LocalCluster) -> None:
    address = cluster.address(cluster.node_ids[0])

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            # Not an upgrade: a 400 naming the header and the rule, as any refusal.
            async with session.get(f"{address}{NS}/task-queues/q/stream") as answer:
                assert answer.status == 400
                error = (await answer.json())["error"]
                assert error["field"] == "Upgrade" and "WebSocket" in error["message"]
            ws = await _open(session, address, "q")
            await _send(ws, Call(seq=5, path="/api/v1/tasks/nope", body=b"{}"),
                        Call(seq=6, path="/api/v1/tasks/activity/complete",
                             body=b'{"task_token": "forged"}'),
                        Call(seq=7, path="/api/v1/tasks/activity/complete", body=b"{"))
            replies: dict[int, Reply] = {}
            while len(replies) < 3:
                for message in await _next(ws):
                    assert isinstance(message, Reply)
                    replies[message.seq] = message
            assert replies[5].status == 404
            assert replies[6].status == 400
            assert json.loads(replies[6].body)["error"]["field"] == "task_token"
            assert replies[7].status == 400
            # A frame that is not msgpack of the worker's messages ends the stream (1002).
            await ws.send_bytes(b"\x93not a frame")
            closing = await ws.receive(timeout=10)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.PROTOCOL_ERROR

    asyncio.run(main())


# -- failover (last: it kills a node) ----------------------------------------------------------

@activity.defn
async def step(n: int) -> int:
    await asyncio.sleep(0.05)
    return n + 1


@workflow.defn
class Steps:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(3):
            n = await workflow.execute_activity(step, n,
                                                start_to_close_timeout=timedelta(seconds=5))
        return n


def test_a_worker_on_streams_survives_kill_9_of_a_node(cluster: LocalCluster) -> None:
    """Workflows run while the node leading the most shards is killed (-9): the worker's
    stream to it breaks, the calls waiting on it go another way, the shards' new leaders push
    the tasks on their streams, and every workflow ends with the right result. After the node
    restarts, the worker streams from it again and runs new workflows."""
    status = cluster.status()
    assert status is not None
    leaders = [s["leader"] for s in status["shards"]]
    victim = max(set(leaders), key=leaders.count)

    async def body(client: Client, queue: str) -> None:
        async with Worker(client, task_queue=queue, workflows=[Steps], activities=[step]):
            handles = [await client.start_workflow(Steps.run, n, id=f"f-{queue}-{n}",
                                                   task_queue=queue) for n in range(24)]
            await asyncio.sleep(0.2)
            cluster.kill(victim)
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)),
                                             RESULT_TIMEOUT_S)
            assert results == [n + 3 for n in range(24)]
            cluster.start_node(victim)
            await asyncio.to_thread(cluster.wait_ready)
            # The worker streams from the restarted node again: its grants wait there as polls
            # of this queue (the node's pollers gauge), without any new workflow.
            await asyncio.wait_for(_until_polled(cluster.address(victim), queue),
                                   RESULT_TIMEOUT_S)
            later = [await client.start_workflow(Steps.run, n, id=f"g-{queue}-{n}",
                                                 task_queue=queue) for n in range(8)]
            assert await asyncio.wait_for(asyncio.gather(*(h.result() for h in later)),
                                          RESULT_TIMEOUT_S) == [n + 3 for n in range(8)]

    try:
        _run(cluster, body)
    finally:
        if cluster.processes[victim].poll() is not None:
            cluster.start_node(victim)


async def _until_polled(address: str, queue: str) -> None:
    """Until the node at `address` counts polls of `queue` waiting on it."""
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{address}/metrics") as answer:
                text = await answer.text()
            if any(sample.value > 0 for family in text_string_to_metric_families(text)
                   if family.name == "raftflow_task_queue_pollers" for sample in family.samples
                   if sample.labels.get("task_queue") == queue):
                return
            await asyncio.sleep(0.2)
