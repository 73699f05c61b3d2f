"""Cancel and terminate are idempotent by request id, through the SDK, on a real cluster.

Goal: `WorkflowHandle.cancel(request_id=)` and `terminate(request_id=)` called again with the
same id succeed with the first answer, even once the run has closed, and leave exactly one
WorkflowExecutionCancelRequested / WorkflowExecutionTerminated event carrying that id
(DESIGN §4 I5); a new id on the closed run is refused, so the success is the dedup's doing.
Method: a 3-node cluster (conftest.py); Mailbox runs wait for a signal that never comes, one
cancelled with a worker running (it closes CANCELED), one terminated without a worker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk.client import Client, WorkflowHandle
from raftflow.sdk.errors import RPCError, WorkflowFailureError
from raftflow.sdk.worker import Worker
from tests.sdk_io.workflows import Mailbox

RESULT_TIMEOUT_S = 20


async def _events(handle: WorkflowHandle, event_type: str) -> list[dict[str, object]]:
    """The run's events of one type, as the API's JSON."""
    return [e for e in (await handle.history()).to_json()["events"]
            if e["event_type"] == event_type]


def _run(cluster: LocalCluster, body: Callable[[Client, str], Awaitable[None]]) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            await body(client, f"q-{uuid.uuid4().hex[:8]}")

    asyncio.run(main())


async def _cancel_twice(client: Client, queue: str) -> None:
    request_id = f"cancel-{queue}"
    async with Worker(client, task_queue=queue, workflows=[Mailbox]):
        handle = await client.start_workflow(Mailbox.run, id=f"mb-{queue}", task_queue=queue)
        await handle.cancel("first", request_id=request_id)
        await handle.cancel("second", request_id=request_id)  # a retry: the same answer
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        assert failure.value.status == "CANCELED"
    await handle.cancel("third", request_id=request_id)  # closed by now: still the first answer
    with pytest.raises(RPCError) as refused:
        await handle.cancel("fourth")
    assert refused.value.code == "workflow_not_running"
    requested = await _events(handle, "WorkflowExecutionCancelRequested")
    assert [e["attributes"] for e in requested] == [
        {"cause": "first", "request_id": request_id}]


async def _terminate_twice(client: Client, queue: str) -> None:
    request_id = f"terminate-{queue}"
    handle = await client.start_workflow(Mailbox.run, id=f"mb-{queue}", task_queue=queue)
    await handle.terminate("first", request_id=request_id)
    await handle.terminate("second", request_id=request_id)  # the run is closed: first answer
    with pytest.raises(RPCError) as refused:
        await handle.terminate("third")
    assert refused.value.code == "workflow_not_running"
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
    assert failure.value.status == "TERMINATED"
    terminated = await _events(handle, "WorkflowExecutionTerminated")
    assert [e["attributes"] for e in terminated] == [
        {"reason": "first", "request_id": request_id}]


def test_cancel_retried_with_its_request_id_is_recorded_once(cluster: LocalCluster) -> None:
    _run(cluster, _cancel_twice)


def test_terminate_retried_with_its_request_id_is_recorded_once(cluster: LocalCluster) -> None:
    _run(cluster, _terminate_twice)
