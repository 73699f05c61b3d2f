"""Activity timeouts and a worker whose sticky cache evicts, on a real 3-node cluster.

Goal: an attempt that overruns start-to-close is timed out by the server and retried, and the
workflow gets the second attempt's result; with no retries left the workflow sees ActivityError
caused by a TimeoutError naming StartToClose; heartbeat timeouts too; a worker caching at most
one workflow still completes several interleaved workflows (each eviction means a full replay).
Method: the public SDK against `raftflow node` processes (conftest.py), a task queue per test.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import ActivityError, RetryPolicy, activity, errors, workflow
from raftflow.sdk.client import Client
from raftflow.sdk.worker import Worker

QUICK = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2)
ONCE = RetryPolicy(maximum_attempts=1)


@activity.defn
async def overruns_first(label: str) -> str:
    if activity.info().attempt == 1:
        await asyncio.sleep(5)  # the server times this attempt out long before
    return f"{label}@{activity.info().attempt}"


@activity.defn
async def goes_quiet(label: str) -> str:
    await asyncio.sleep(5)  # no heartbeat: the heartbeat timeout fires first
    return label


@workflow.defn
class Patient:
    @workflow.run
    async def run(self, retries: bool) -> str:
        try:
            return str(await workflow.execute_activity(
                overruns_first, "x", start_to_close_timeout=timedelta(milliseconds=700),
                retry_policy=QUICK if retries else ONCE))
        except ActivityError as error:
            cause = error.cause
            assert isinstance(cause, errors.TimeoutError), cause
            return f"timed out: {cause.timeout_type}"


@workflow.defn
class Quiet:
    @workflow.run
    async def run(self) -> str:
        try:
            return str(await workflow.execute_activity(
                goes_quiet, "y", start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(milliseconds=500), retry_policy=ONCE))
        except ActivityError as error:
            assert isinstance(error.cause, errors.TimeoutError), error.cause
            return f"timed out: {error.cause.timeout_type}"


@workflow.defn
class Stepper:
    @workflow.run
    async def run(self, n: int) -> list[int]:
        seen = []
        for i in range(3):
            await workflow.sleep(0.05 * (n + 1))
            seen.append(i)
        return seen


def _run(cluster: LocalCluster, body: Any) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            await body(client, f"t-{uuid.uuid4().hex[:8]}")

    asyncio.run(main())


def test_start_to_close_timeout_is_retried_then_reported(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        async with Worker(client, task_queue=queue, workflows=[Patient, Quiet],
                          activities=[overruns_first, goes_quiet]):
            retried = await asyncio.wait_for(client.execute_workflow(
                Patient.run, True, id=f"{queue}-retried", task_queue=queue), 30)
            assert retried == "x@2"
            final = await asyncio.wait_for(client.execute_workflow(
                Patient.run, False, id=f"{queue}-final", task_queue=queue), 30)
            assert final.startswith("timed out:") and "start" in final.lower()
            quiet = await asyncio.wait_for(client.execute_workflow(
                Quiet.run, id=f"{queue}-quiet", task_queue=queue), 30)
            assert quiet.startswith("timed out:") and "heartbeat" in quiet.lower()

    _run(cluster, body)


def test_worker_with_a_cache_of_one_completes_interleaved_workflows(cluster: LocalCluster) -> None:
    """The server sends this (sticky) worker only new events; a run evicted from its cache of
    one meanwhile must be replayed from the whole history, which the worker fetches."""
    async def body(client: Client, queue: str) -> None:
        worker = Worker(client, task_queue=queue, workflows=[Stepper], activities=[],
                        max_cached_workflows=1)
        fetched: list[str] = []
        fetch = worker._cache._fetch_history

        async def counting_fetch(workflow_id: str, run_id: str) -> list[dict[str, Any]]:
            fetched.append(workflow_id)
            return await fetch(workflow_id, run_id)

        worker._cache._fetch_history = counting_fetch
        async with worker:
            results = await asyncio.wait_for(asyncio.gather(*(
                client.execute_workflow(Stepper.run, n, id=f"{queue}-{n}", task_queue=queue)
                for n in range(4))), 60)
        assert results == [[0, 1, 2]] * 4
        assert fetched, "interleaved runs in a cache of one: some sticky task missed the cache"

    _run(cluster, body)
