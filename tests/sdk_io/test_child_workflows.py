"""Child workflows on a real 3-node cluster (issue 15 item 2).

Goal: `workflow.start_child_workflow` / `execute_child_workflow` start children on every shard
and deliver each child's result to its parent exactly once, also when a node is killed -9
mid-way; a taken child id fails the start with `WorkflowAlreadyStartedError`; a failing child
surfaces as `ChildWorkflowError`; the parent close policy terminates (or abandons) children
still running when the parent completes.
Method: `raftflow node` processes on loopback (one cluster for the module, conftest.py);
workflows written with the public SDK; histories read back through the client.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

from raftflow.cluster.launcher import LocalCluster
from raftflow.cluster.ring import shard_for
from raftflow.protocol.events import EventType
from raftflow.sdk import ApplicationError, workflow
from raftflow.sdk.client import Client, WorkflowExecutionStatus
from raftflow.sdk.errors import ChildWorkflowError, WorkflowAlreadyStartedError
from raftflow.sdk.worker import Worker

RESULT_TIMEOUT_S = 90
SHARDS = 8


@workflow.defn
class Square:
    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.sleep(timedelta(milliseconds=300))
        if n < 0:
            raise ApplicationError(f"negative {n}", non_retryable=True)
        return n * n


@workflow.defn
class Forever:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "released"

    @workflow.signal
    def release(self) -> None:
        self.done = True


@workflow.defn
class Fanout:
    @workflow.run
    async def run(self, ids: list[str]) -> list[int]:
        handles = [await workflow.start_child_workflow(Square.run, i, id=child_id)
                   for i, child_id in enumerate(ids)]
        return list(await asyncio.gather(*(h.result() for h in handles)))


@workflow.defn
class Edgy:
    """Reports what each child start did: taken id, failed child, released child."""

    @workflow.run
    async def run(self, taken_id: str, prefix: str) -> list[str]:
        outcomes: list[str] = []
        try:
            await workflow.start_child_workflow(Square.run, 1, id=taken_id)
            outcomes.append("started")
        except WorkflowAlreadyStartedError:
            outcomes.append("taken")
        try:
            await workflow.execute_child_workflow(Square.run, -2, id=f"{prefix}-neg")
        except ChildWorkflowError as error:
            outcomes.append(f"failed: {type(error.__cause__).__name__}")
        held = await workflow.start_child_workflow(Forever.run, id=f"{prefix}-held")
        await held.signal(Forever.release)
        outcomes.append(await held)
        return outcomes


@workflow.defn
class Leaver:
    """Starts children that outlive it, under the given parent close policy."""

    @workflow.run
    async def run(self, child_id: str, policy: str) -> str:
        await workflow.start_child_workflow(
            Forever.run, id=child_id, parent_close_policy=workflow.ParentClosePolicy(policy))
        return "left"


def _worker(client: Client, queue: str) -> Worker:
    return Worker(client, task_queue=queue, workflows=[Square, Forever, Fanout, Edgy, Leaver],
                  activities=[])


def _client(cluster: LocalCluster) -> list[str]:
    return [cluster.address(n) for n in cluster.node_ids]


async def _children_started(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).history()
    return sum(e.event_type == EventType.CHILD_WORKFLOW_EXECUTION_STARTED for e in history.events)


def test_start_failures_child_failures_and_signals_to_a_child(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_client(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            async with _worker(client, queue):
                await client.start_workflow(Forever.run, id=f"taken-{queue}", task_queue=queue)
                outcomes = await client.execute_workflow(
                    Edgy.run, f"taken-{queue}", queue, id=f"edgy-{queue}", task_queue=queue)
                assert outcomes == ["taken", "failed: ApplicationError", "released"]

    asyncio.run(main())


def test_the_parent_close_policy_terminates_or_abandons_a_running_child(
        cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_client(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            async with _worker(client, queue):
                for policy, expected in (("terminate", WorkflowExecutionStatus.TERMINATED),
                                         ("abandon", WorkflowExecutionStatus.RUNNING)):
                    child = f"left-{policy}-{queue}"
                    assert await client.execute_workflow(
                        Leaver.run, child, policy, id=f"leaver-{policy}-{queue}",
                        task_queue=queue) == "left"
                    handle = client.get_workflow_handle(child)
                    for _ in range(100):
                        status = (await handle.describe()).status
                        if status is expected and policy != "abandon":
                            break
                        await asyncio.sleep(0.1)
                    assert status is expected, (policy, status)

    asyncio.run(main())


def test_fifty_children_on_every_shard_survive_kill_9_of_a_node(cluster: LocalCluster) -> None:
    """Last in the module: it kills a node mid-way, then restarts it."""
    victim = cluster.node_ids[2]
    count = 50

    async def main() -> None:
        async with await Client.connect(_client(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            ids = [f"sq-{queue}-{i}" for i in range(count)]
            assert {shard_for("default", i, SHARDS) for i in ids} == set(range(SHARDS))
            parent_id = f"fanout-{queue}"
            async with _worker(client, queue):
                handle = await client.start_workflow(Fanout.run, ids, id=parent_id,
                                                     task_queue=queue)
                for _ in range(200):  # mid-way: some children started, most not yet
                    if await _children_started(client, parent_id) >= 10:
                        break
                    await asyncio.sleep(0.05)
                cluster.kill(victim)
                result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
                assert result == [i * i for i in range(count)]
                history = await client.get_workflow_handle(parent_id).history()
                kinds = Counter(e.event_type for e in history.events)
                assert kinds[EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED] == count
                assert kinds[EventType.CHILD_WORKFLOW_EXECUTION_STARTED] == count
                assert kinds[EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED] == count
                closed = Counter(e.attributes.initiated_event_id for e in history.events
                                 if e.event_type == EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED)
                assert set(closed.values()) == {1}
                for child_id in ids:  # each child ran as exactly one run
                    runs = [w for w in await client.list_workflows(
                        f"WorkflowId = '{child_id}'") if w.id == child_id]
                    assert len(runs) == 1, (child_id, runs)

    try:
        asyncio.run(main())
    finally:
        cluster.start_node(victim)
