"""Workflow updates through the SDK against a real 3-node cluster.

Goal: `@workflow.update` handlers (with a validator) run through `handle.execute_update` and
`start_update` + `WorkflowUpdateHandle.result()`: the caller gets the result; a validator's
rejection and a handler's ApplicationError reach it as `WorkflowUpdateFailedError` (a rejection
leaves no event); an update id runs once; a worker that lost its cache replays the update
events deterministically and the workflow goes on.
Method: `raftflow node` processes on loopback (conftest.py); the public SDK only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest

from raftflow.cli import main
from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import (
    ApplicationError,
    Client,
    Worker,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
    workflow,
)
from raftflow.sdk import _updates as sdk_updates
from raftflow.sdk.contrib.aes_gcm_codec import AesGcmCodec
from raftflow.sdk.errors import RPCError

TIMEOUT_S = 20


@workflow.defn
class Account:
    def __init__(self) -> None:
        self.balance = 0
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed)
        return self.balance

    @workflow.update
    async def deposit(self, amount: int) -> int:
        if amount > 1000:
            raise ApplicationError("over the limit", type="Limit")
        await workflow.sleep(timedelta(milliseconds=20))  # accepted and completed apart
        self.balance += amount
        return self.balance

    @deposit.validator
    def check_deposit(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("amount must be positive")

    @workflow.update(name="close")
    def close_account(self) -> str:
        self.closed = True
        return "closed"


def _run(cluster: LocalCluster, body: object) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            await body(client, f"q-{uuid.uuid4().hex[:8]}")  # type: ignore[operator]

    asyncio.run(main())


def test_updates_run_validate_fail_and_deduplicate(cluster: LocalCluster) -> None:
    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(Account.run, id=f"acct-{queue}", task_queue=queue)
        async with Worker(client, task_queue=queue, workflows=[Account]):
            assert await asyncio.wait_for(handle.execute_update(Account.deposit, 5),
                                          TIMEOUT_S) == 5
            assert await handle.execute_update("deposit", args=[10], id="dep-2") == 15
            # The same update id: the first outcome, the handler does not run again.
            assert await handle.execute_update("deposit", args=[10], id="dep-2") == 15
            with pytest.raises(WorkflowUpdateFailedError) as rejected:
                await handle.execute_update(Account.deposit, -1, id="dep-neg")
            assert "positive" in str(rejected.value.cause)
            with pytest.raises(WorkflowUpdateFailedError) as failed:
                await handle.execute_update(Account.deposit, 5000)
            assert isinstance(failed.value.cause, ApplicationError)
            assert failed.value.cause.type == "Limit"
            started = await handle.start_update(Account.deposit, 1,
                                                wait_for_stage=WorkflowUpdateStage.ACCEPTED)
            assert await asyncio.wait_for(started.result(), TIMEOUT_S) == 16
            again = handle.get_update_handle(started.id)
            assert await again.result() == 16
            with pytest.raises(RPCError) as unknown:
                await handle.get_update_handle("never-sent").result()
            assert unknown.value.code == "not_found"
            with pytest.raises(ValueError, match="ADMITTED"):
                await handle.start_update(Account.deposit, 1,
                                          wait_for_stage=WorkflowUpdateStage.ADMITTED)
            assert await handle.execute_update(Account.close_account) == "closed"
            assert await asyncio.wait_for(handle.result(), TIMEOUT_S) == 16
        events = (await handle.history()).events
        accepted = [e for e in events if e.event_type == "WorkflowExecutionUpdateAccepted"]
        completed = [e for e in events if e.event_type == "WorkflowExecutionUpdateCompleted"]
        # deposit 5, dep-2, 5000 (failed in the handler), the started one, close; not dep-neg.
        assert len(accepted) == len(completed) == 5
        assert "dep-neg" not in {e.attributes.update_id for e in accepted}  # type: ignore[union-attr]

    _run(cluster, body)


def test_a_new_worker_replays_update_events_and_continues(
        cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # Short long polls: the early update's POST answers "admitted", then the client reads.
    monkeypatch.setattr(sdk_updates, "UPDATE_WAIT_MS", 100)

    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(Account.run, id=f"replay-{queue}", task_queue=queue)
        # Sent before any worker runs: the run's first workflow task carries it.
        first = asyncio.ensure_future(handle.execute_update(Account.deposit, 7, id="early"))
        await asyncio.sleep(0.3)
        assert not first.done()
        async with Worker(client, task_queue=queue, workflows=[Account]):
            assert await asyncio.wait_for(first, TIMEOUT_S) == 7
        # A fresh worker (empty cache) replays the whole history, update events included.
        async with Worker(client, task_queue=queue, workflows=[Account]):
            assert await asyncio.wait_for(handle.execute_update(Account.deposit, 3),
                                          TIMEOUT_S) == 10
            await handle.execute_update("close")
            assert await asyncio.wait_for(handle.result(), TIMEOUT_S) == 10
        types = [e.event_type for e in (await handle.history()).events]
        assert "WorkflowTaskFailed" not in types  # no nondeterminism on replay

    _run(cluster, body)


def test_the_cli_runs_updates_against_the_cluster(cluster: LocalCluster,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    async def body(client: Client, queue: str) -> None:
        wid = f"cli-{queue}"
        handle = await client.start_workflow(Account.run, id=wid, task_queue=queue)
        address = cluster.address(cluster.node_ids[0])

        def cli(*argv: str) -> int:
            return main(["workflow", "update", *argv, "-w", wid, "--address", address,
                         "--timeout", str(TIMEOUT_S)])

        async with Worker(client, task_queue=queue, workflows=[Account]):
            assert await asyncio.to_thread(cli, "execute", "--name", "deposit", "-i", "4",
                                           "--update-id", "c-1") == 0
            assert await asyncio.to_thread(cli, "execute", "--name", "deposit", "-i", "0") == 1
            assert await asyncio.to_thread(cli, "result", "--update-id", "c-1") == 0
            assert await handle.execute_update("close") == "closed"
        captured = capsys.readouterr()
        assert captured.out == "4\n4\n"
        assert "error: update_failed:" in captured.err and "positive" in captured.err

    _run(cluster, body)


def test_update_payloads_go_through_the_payload_codec(cluster: LocalCluster) -> None:
    codec = AesGcmCodec({"k1": AesGcmCodec.new_key()}, encrypt_with="k1")

    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses, payload_codec=codec) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            handle = await client.start_workflow(Account.run, id=f"codec-{queue}",
                                                 task_queue=queue)
            async with Worker(client, task_queue=queue, workflows=[Account]):
                assert await asyncio.wait_for(handle.execute_update(Account.deposit, 6),
                                              TIMEOUT_S) == 6
                with pytest.raises(WorkflowUpdateFailedError):
                    await handle.execute_update(Account.deposit, 0)
                assert await handle.execute_update("close") == "closed"
                assert await asyncio.wait_for(handle.result(), TIMEOUT_S) == 6
            events = (await handle.history()).events
            accepted = next(e for e in events
                            if e.event_type == "WorkflowExecutionUpdateAccepted")
            sealed = json.loads(accepted.attributes.input)  # type: ignore[union-attr]
            assert sealed != [6] and "_raftflow_payload" in sealed[0]  # the server saw no 6

    asyncio.run(main())
