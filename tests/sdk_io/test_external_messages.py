"""Workflows signalling and cancelling other workflows across shards, on a real 3-node cluster.

Goal (issue 15, items 1 and 3): `workflow.get_external_workflow_handle(id).signal()/.cancel()`
reaches workflows on every shard exactly once, through the source shard's outbox; a missing
target fails the call with `ExternalWorkflowExecutionNotFound`; and messages in flight survive
kill -9 of a node (the outbox is re-sent by the next leader, the target deduplicates).
Method: `raftflow node` processes on loopback (one cluster for the module, conftest.py); a
Sender workflow signals Mailbox workflows (tests/sdk_io/workflows.py) placed on all 8 shards,
then every history is read back: each mailbox holds exactly one WorkflowExecutionSignaled per
message (its request id is the message id `{sender run}/{initiated event}`), and the sender one
outcome event per message.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from raftflow.cluster.launcher import LocalCluster
from raftflow.cluster.ring import shard_for
from raftflow.protocol.events import EventType
from raftflow.sdk import ApplicationError, workflow
from raftflow.sdk.client import Client, WorkflowExecutionStatus
from raftflow.sdk.worker import Worker
from tests.sdk_io.workflows import ACTIVITIES, WORKFLOWS, Mailbox

RESULT_TIMEOUT_S = 60
_OUTCOMES = (EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
             EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED)
SHARDS = 8


@workflow.defn
class Sender:
    """Signals each mailbox `item` then `close`; reports each target's outcome."""

    @workflow.run
    async def run(self, targets: list[str], item: str) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for target in targets:
            handle = workflow.get_external_workflow_handle(target)
            try:
                await handle.signal("add", item)
                await handle.signal("close")
                outcomes[target] = "ok"
            except ApplicationError as error:
                outcomes[target] = error.type or "?"
        return outcomes


@workflow.defn
class Canceller:
    @workflow.run
    async def run(self, target: str) -> str:
        await workflow.get_external_workflow_handle(target).cancel()
        return "requested"


def _spread(prefix: str, count_per_shard: int = 1) -> list[str]:
    """Workflow ids covering every shard `count_per_shard` times."""
    ids: list[str] = []
    per_shard: Counter[int] = Counter()
    n = 0
    while len(ids) < SHARDS * count_per_shard:
        candidate = f"{prefix}-{n}"
        shard = shard_for("default", candidate, SHARDS)
        if per_shard[shard] < count_per_shard:
            per_shard[shard] += 1
            ids.append(candidate)
        n += 1
    return ids


async def _signaled_ids(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).history()
    return [e.attributes.request_id for e in history.events
            if e.event_type == EventType.WORKFLOW_EXECUTION_SIGNALED]


def _worker(client: Client, queue: str) -> Worker:
    return Worker(client, task_queue=queue, workflows=[*WORKFLOWS, Sender, Canceller],
                  activities=ACTIVITIES)


async def _check_exactly_once(client: Client, sender_id: str, mailboxes: list[str],
                              item: str) -> None:
    sender = client.get_workflow_handle(sender_id)
    history = await sender.history()
    initiated = [e.event_id for e in history.events if e.event_type
                 == EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED]
    outcomes = Counter(e.attributes.initiated_event_id for e in history.events
                       if e.event_type in _OUTCOMES)
    assert sorted(outcomes) == initiated and set(outcomes.values()) == {1}
    signalled = [e.attributes.initiated_event_id for e in history.events
                 if e.event_type == EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED]
    run_id = history.events[0].attributes.first_execution_run_id or ""
    expected = {f"{run_id}/{event_id}" for event_id in signalled}
    seen: list[str] = []
    for mailbox in mailboxes:
        result = await asyncio.wait_for(client.get_workflow_handle(mailbox).result(),
                                        RESULT_TIMEOUT_S)
        assert result == [item], (mailbox, result)
        signaled = await _signaled_ids(client, mailbox)
        assert len(signaled) == 2 and len(set(signaled)) == 2, (mailbox, signaled)
        seen.extend(signaled)
    assert sorted(seen) == sorted(expected)


def test_signals_reach_every_shard_once_and_a_missing_target_fails(
        cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            mailboxes = _spread(f"inbox-{queue}")
            async with _worker(client, queue):
                for mailbox in mailboxes:
                    await client.start_workflow(Mailbox.run, id=mailbox, task_queue=queue)
                sender_id = f"sender-{queue}"
                handle = await client.start_workflow(
                    Sender.run, [*mailboxes, f"nobody-{queue}"], "hello", id=sender_id,
                    task_queue=queue)
                outcomes = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
                assert outcomes == {**{m: "ok" for m in mailboxes},
                                    f"nobody-{queue}": "ExternalWorkflowExecutionNotFound"}
                await _check_exactly_once(client, sender_id, mailboxes, "hello")

    asyncio.run(main())


def test_a_cancel_request_reaches_a_workflow_on_another_shard(cluster: LocalCluster) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            async with _worker(client, queue):
                target = await client.start_workflow(Mailbox.run, id=f"victim-{queue}",
                                                     task_queue=queue)
                done = await client.execute_workflow(Canceller.run, f"victim-{queue}",
                                                     id=f"canceller-{queue}", task_queue=queue)
                assert done == "requested"
                for _ in range(100):
                    description = await target.describe()
                    if description.status is not WorkflowExecutionStatus.RUNNING:
                        break
                    await asyncio.sleep(0.1)
                assert description.status is WorkflowExecutionStatus.CANCELED

    asyncio.run(main())


def test_messages_in_flight_survive_kill_9_of_a_node(cluster: LocalCluster) -> None:
    """Last in the module: it kills a node while senders are signalling, then restarts it."""
    victim = cluster.node_ids[1]

    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            mailboxes = _spread(f"box-{queue}", 2)
            senders = [f"s-{queue}-{i}" for i in range(4)]
            async with _worker(client, queue):
                for mailbox in mailboxes:
                    await client.start_workflow(Mailbox.run, id=mailbox, task_queue=queue)
                handles = [await client.start_workflow(
                    Sender.run, mailboxes[i::4], "k", id=sender, task_queue=queue)
                    for i, sender in enumerate(senders)]
                await asyncio.sleep(0.3)
                cluster.kill(victim)  # SIGKILL mid-way: some messages are in the outboxes
                for handle in handles:
                    outcomes = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
                    assert set(outcomes.values()) == {"ok"}, outcomes
                for i, sender in enumerate(senders):
                    await _check_exactly_once(client, sender, mailboxes[i::4], "k")

    try:
        asyncio.run(main())
    finally:
        cluster.start_node(victim)
