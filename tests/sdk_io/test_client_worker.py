"""The SDK's client and worker against a real 3-node cluster.

Goal: workflows written with `raftflow.sdk` run end to end through `Client` and `Worker`:
activities (async and sync, one retried by the server after a failure, heartbeat details
reaching the retry), durable timers, signals in order, queries, failures surfacing as
`WorkflowFailureError`, continue-as-new followed by `result()`, listing, a worker restarted
mid-workflow (the new one replays the full history), and a client that survives kill -9 of a
node.
Method: `raftflow node` processes on loopback (one cluster for the module, conftest.py); each
test uses its own task queue and workflow ids, drives everything through the public SDK, and
kills a node only in the last test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from raftflow.cluster.launcher import LocalCluster
from raftflow.protocol.events import (
    HistoryEvent,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from raftflow.sdk import ApplicationError
from raftflow.sdk.client import Client, IdReusePolicy, WorkflowExecutionStatus, WorkflowHandle
from raftflow.sdk.errors import QueryFailedError, WorkflowAlreadyStartedError, WorkflowFailureError
from raftflow.sdk.worker import Worker
from tests.sdk_io.workflows import (
    ACTIVITIES,
    CANCELLED_ACTIVITIES,
    STARTED_ACTIVITIES,
    WORKFLOWS,
    Cancellable,
    Counter,
    Failing,
    FlipV1,
    FlipV2,
    Mailbox,
    Order,
    TwoSteps,
    ship,
)

RESULT_TIMEOUT_S = 20


def _addresses(cluster: LocalCluster) -> list[str]:
    return [cluster.address(n) for n in cluster.node_ids]


def _run(cluster: LocalCluster, body: Callable[[Client, str], Awaitable[None]],
         addresses: list[str] | None = None) -> None:
    """Run `body(client, task_queue)` with a client (on every node unless `addresses` are
    given) and a fresh task queue."""

    async def main() -> None:
        async with await Client.connect(addresses or _addresses(cluster)) as client:
            await body(client, f"q-{uuid.uuid4().hex[:8]}")

    asyncio.run(main())


def _worker(client: Client, queue: str, **options: Any) -> Worker:
    return Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=ACTIVITIES,
                  **options)


def test_order_with_a_retried_activity_a_sync_activity_and_a_timer(
        cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        async with _worker(client, queue):
            handle = await client.start_workflow(Order.run, "o-1", id=f"order-{queue}",
                                                 task_queue=queue)
            result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        assert result == {"charge": "charged o-1 (attempt 2, saw ['half-way'])",
                          "ship": "shipped o-1 from ship"}
        description = await handle.describe()
        assert description.status is WorkflowExecutionStatus.COMPLETED
        assert description.run_id == handle.result_run_id
        events = (await handle.history()).events
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        types = [e.event_type for e in events]
        assert types.count("ActivityTaskFailed") == 0  # retried inside one scheduled activity
        assert "TimerFired" in types and types[-1] == "WorkflowExecutionCompleted"
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.start_workflow(Order.run, "o-1", id=f"order-{queue}", task_queue=queue,
                                        id_reuse_policy=IdReusePolicy.REJECT_DUPLICATE)

    _run(cluster, body)


def test_signals_arrive_in_order_and_queries_see_them(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(Mailbox.run, id=f"mail-{queue}", task_queue=queue)
        for item in ("a", "b", "c", "d", "e"):  # sent before any worker runs
            await handle.signal(Mailbox.add, item)
        async with _worker(client, queue):
            assert await _first_query(lambda: handle.query(Mailbox.items)) == ["a", "b", "c", "d", "e"]
            await handle.signal("add", "f")
            with pytest.raises(QueryFailedError):
                await handle.query("no-such-query")
            await handle.signal(Mailbox.close_mailbox)
            result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        assert result == ["a", "b", "c", "d", "e", "f"]

    _run(cluster, body)


def test_signal_with_start_starts_once_then_signals_the_open_run(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        wid = f"sws-{queue}"
        first = await client.start_workflow(Mailbox.run, id=wid, task_queue=queue,
                                            start_signal=Mailbox.add, start_signal_args=["a"])
        second = await client.start_workflow(Mailbox.run, id=wid, task_queue=queue,
                                             start_signal="add", start_signal_args=["b"])
        assert second.result_run_id == first.result_run_id is not None
        assert first.first_execution_run_id == first.result_run_id
        assert second.first_execution_run_id is None  # it signalled the run it found open
        async with _worker(client, queue):
            await first.signal(Mailbox.close_mailbox)
            result = await asyncio.wait_for(first.result(), RESULT_TIMEOUT_S)
        assert result == ["a", "b"]
        types = [e.event_type for e in (await first.history()).events]
        assert types[:3] == ["WorkflowExecutionStarted", "WorkflowTaskScheduled",
                             "WorkflowExecutionSignaled"]
        assert types.count("WorkflowExecutionSignaled") == 3  # a, b, close
        with pytest.raises(WorkflowAlreadyStartedError):  # closed, and the policy refuses
            await client.start_workflow(Mailbox.run, id=wid, task_queue=queue,
                                        start_signal="add", start_signal_args=["c"],
                                        id_reuse_policy=IdReusePolicy.REJECT_DUPLICATE)

    _run(cluster, body)


async def _first_query(ask: Callable[[], Awaitable[Any]]) -> Any:
    """A query before the first workflow task completed fails ("has not started yet")."""
    for _ in range(50):
        try:
            return await ask()
        except QueryFailedError as error:
            if "not started" not in str(error):
                raise
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow never answered a query")


def test_query_without_a_worker_fails_cleanly(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(Mailbox.run, id=f"lonely-{queue}", task_queue=queue)
        with pytest.raises(QueryFailedError):
            await handle.query(Mailbox.items, timeout=0.3)
        await handle.terminate("test over")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert failure.value.status == "TERMINATED"

    _run(cluster, body)


def test_execute_workflow_failure_and_continue_as_new(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        async with _worker(client, queue):
            with pytest.raises(WorkflowFailureError) as failure:
                await asyncio.wait_for(client.execute_workflow(
                    Failing.run, "o-9", id=f"fail-{queue}", task_queue=queue), RESULT_TIMEOUT_S)
            assert await asyncio.wait_for(client.execute_workflow(
                Counter.run, 0, 3, id=f"count-{queue}", task_queue=queue), RESULT_TIMEOUT_S) == 3
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "OrderFailed" and "o-9" in cause.message
        assert failure.value.status == "FAILED"

    _run(cluster, body)


def test_list_workflows(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        ids = {f"list-{queue}-{i}" for i in range(3)}
        for workflow_id in ids:
            await client.start_workflow("Mailbox", id=workflow_id, task_queue=queue)
        running = await client.list_workflows("ExecutionStatus = 'Running'", page_size=1000)
        assert ids <= {w.id for w in running}
        assert all(w.status is WorkflowExecutionStatus.RUNNING for w in running)
        for workflow_id in ids:
            await client.get_workflow_handle(workflow_id).terminate("done")
        terminated = await client.list_workflows("ExecutionStatus = 'Terminated'")
        assert ids <= {w.id for w in terminated}

    _run(cluster, body)


def test_worker_restart_mid_workflow_replays_the_history(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(TwoSteps.run, "r", id=f"two-{queue}",
                                             task_queue=queue)
        first = _worker(client, queue)
        running = asyncio.create_task(first.run())  # the `await worker.run()` style
        await _wait_for_event(handle, "TimerStarted")  # step one done, the timer runs
        await first.shutdown()
        assert running.done() and running.exception() is None
        # The first worker is gone with its cache; a new one must replay from event 1.
        async with _worker(client, queue, max_cached_workflows=0):
            result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        assert result == ["shipped r-1 from ship", "shipped r-2 from ship"]

    _run(cluster, body)


def test_worker_given_one_address_reaches_every_shard(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        async with _worker(client, queue):
            results = await asyncio.wait_for(asyncio.gather(*(
                client.execute_workflow(Counter.run, i, i, id=f"one-{queue}-{i}",
                                        task_queue=queue) for i in range(12))),
                RESULT_TIMEOUT_S)
        assert results == list(range(12))  # 12 ids over 8 shards led by all three nodes

    _run(cluster, body, addresses=[cluster.address(cluster.node_ids[1])])


def test_cancel_reaches_a_heartbeating_activity(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        async with _worker(client, queue):
            handle = await client.start_workflow(Cancellable.run, "c-1", id=f"cancel-{queue}",
                                                 task_queue=queue)
            for _ in range(100):  # until the activity runs
                if STARTED_ACTIVITIES:
                    break
                await asyncio.sleep(0.05)
            await handle.cancel("changed my mind")
            with pytest.raises(WorkflowFailureError) as failure:
                await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
            assert failure.value.status == "CANCELED"
            for _ in range(100):  # the activity learns it on its next heartbeat
                if CANCELLED_ACTIVITIES:
                    break
                await asyncio.sleep(0.05)
        assert CANCELLED_ACTIVITIES

    _run(cluster, body)


def test_nondeterministic_code_fails_the_workflow_task(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(FlipV1.run, id=f"flip-{queue}", task_queue=queue)
        async with Worker(client, task_queue=queue, workflows=[FlipV1]):
            await _wait_for_event(handle, "TimerStarted")
        # A "deployment" of incompatible code; the signal makes the server send a new task.
        async with Worker(client, task_queue=queue, workflows=[FlipV2], activities=[ship]):
            await handle.signal("poke")
            failed = await _wait_for_event(handle, "WorkflowTaskFailed")
        assert isinstance(failed.attributes, WorkflowTaskFailedEventAttributes)
        assert failed.attributes.cause == "NonDeterministicError"
        assert b"nondeterminism at event" in failed.attributes.failure
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        await handle.terminate("bad deployment")

    _run(cluster, body)


async def _wait_for_event(handle: WorkflowHandle, event_type: str) -> HistoryEvent:
    for _ in range(200):
        for event in (await handle.history()).events:
            if event.event_type == event_type:
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {event_type} in the history of {handle.id}")


def test_client_and_worker_survive_kill_9_of_a_node(cluster: LocalCluster) -> None:
    """Last in the module: it kills a node (and restarts it for good measure)."""
    victim = cluster.node_ids[0]

    async def body(client: Client, queue: str) -> None:
        async with _worker(client, queue):
            first = await client.execute_workflow(Order.run, "k-0", id=f"before-{queue}",
                                                  task_queue=queue)
            assert first["ship"] == "shipped k-0 from ship"
            mailbox = await client.start_workflow(Mailbox.run, id=f"mail-{queue}",
                                                  task_queue=queue)
            cluster.kill(victim)  # SIGKILL; the client and the worker know every node
            handles = [await client.start_workflow(Order.run, f"k-{i}", id=f"after-{queue}-{i}",
                                                   task_queue=queue) for i in range(1, 4)]
            for item in ("x", "y", "z"):
                await mailbox.signal(Mailbox.add, item)  # retried elsewhere with the same id
            await mailbox.signal(Mailbox.close_mailbox)
            assert await asyncio.wait_for(mailbox.result(), RESULT_TIMEOUT_S) == ["x", "y", "z"]
            for i, handle in enumerate(handles, start=1):
                result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
                assert result["ship"] == f"shipped k-{i} from ship"
            listed = {w.id for w in await client.list_workflows(page_size=1000)}
            assert {h.id for h in handles} <= listed

    try:
        _run(cluster, body)
    finally:
        cluster.start_node(victim)


def test_eager_start_runs_the_first_task_on_the_clients_own_worker(
        cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        async with _worker(client, queue):
            eager = await client.start_workflow(Counter.run, 2, 2, id=f"eager-{queue}",
                                                task_queue=queue, request_eager_start=True)
            assert await asyncio.wait_for(eager.result(), RESULT_TIMEOUT_S) == 2
            # A client with no worker of that queue: the request is ignored, a poll serves it.
            async with await Client.connect(_addresses(cluster)) as other:
                plain = await other.start_workflow(Counter.run, 2, 2, id=f"plain-{queue}",
                                                   task_queue=queue, request_eager_start=True)
                assert await asyncio.wait_for(plain.result(), RESULT_TIMEOUT_S) == 2
        first_started = {}
        for handle in (eager, plain):
            events = (await handle.history()).events
            started = next(e.attributes for e in events
                           if isinstance(e.attributes, WorkflowTaskStartedEventAttributes))
            first_started[handle.id] = started.request_id
        assert first_started[f"eager-{queue}"].startswith("eager-start-"), first_started
        assert not first_started[f"plain-{queue}"].startswith("eager-"), first_started

    _run(cluster, body)
