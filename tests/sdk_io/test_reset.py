"""Goal: `WorkflowHandle.reset` against a real 3-node cluster re-executes a workflow from a
workflow task: reset to the first task, the activity the workflow ran after it runs again, the
signal received after that task is delivered to the new run exactly once, the base run ends
TERMINATED, and the new run completes with the worker replaying the copied history. A reset to
the last task re-runs nothing already recorded before it.

Method: `raftflow node` processes on loopback (one cluster for the module, conftest.py); an SDK
`Worker` in this process runs the workflow and counts activity executions.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from raftflow.cli import main
from raftflow.cluster.launcher import LocalCluster
from raftflow.protocol.events import (
    EventType,
    HistoryEvent,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowTaskFailedEventAttributes,
)
from raftflow.sdk import activity, workflow
from raftflow.sdk.client import Client, WorkflowExecutionStatus, WorkflowHandle
from raftflow.sdk.worker import Worker

RESULT_TIMEOUT_S = 20
STEP_RUNS: list[str] = []


@activity.defn
async def step(tag: str) -> str:
    STEP_RUNS.append(tag)
    return f"did {tag}"


@workflow.defn
class StepThenSignals:
    """Runs `step`, then collects `add` signals until one says "done"."""

    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.run
    async def run(self, tag: str) -> dict[str, object]:
        did = await workflow.execute_activity(step, tag,
                                              start_to_close_timeout=timedelta(seconds=5))
        await workflow.wait_condition(lambda: "done" in self.items)
        return {"step": did, "items": self.items}

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)


async def _wait_for_completed_tasks(handle: WorkflowHandle, count: int) -> None:
    for _ in range(200):
        history = await handle.history()
        if sum(e.event_type is EventType.WORKFLOW_TASK_COMPLETED for e in history.events) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} completed workflow tasks")


def _signals(events: list[HistoryEvent]) -> list[bytes]:
    return [e.attributes.input for e in events
            if isinstance(e.attributes, WorkflowExecutionSignaledEventAttributes)]


def _run(cluster: LocalCluster,
         body: Callable[[Client, str], Awaitable[None]]) -> None:
    async def main() -> None:
        addresses = [cluster.address(n) for n in cluster.node_ids]
        async with await Client.connect(addresses) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            async with Worker(client, task_queue=queue, workflows=[StepThenSignals],
                              activities=[step]):
                await body(client, queue)

    asyncio.run(main())


def test_reset_to_the_first_task_reruns_the_activity_and_reapplies_the_signal(
        cluster: LocalCluster) -> None:
    tag = f"first-{uuid.uuid4().hex[:6]}"

    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(StepThenSignals.run, tag, id=f"wf-{tag}",
                                             task_queue=queue)
        await _wait_for_completed_tasks(handle, 2)   # the step ran, the workflow waits
        await handle.signal(StepThenSignals.add, "one")
        await _wait_for_completed_tasks(handle, 3)   # the signal was handled
        base_run = (await handle.describe()).run_id
        assert STEP_RUNS.count(tag) == 1

        new_run = await handle.reset(reset_type="FirstWorkflowTask", reason="bad deploy",
                                     request_id=f"reset-{tag}")
        assert new_run != base_run
        # A retry with the same request id answers the same run.
        assert await handle.reset(reset_type="FirstWorkflowTask",
                                  request_id=f"reset-{tag}") == new_run
        base = client.get_workflow_handle(handle.id, run_id=base_run)
        assert (await base.describe()).status is WorkflowExecutionStatus.TERMINATED

        new = client.get_workflow_handle(handle.id, run_id=new_run)
        await _wait_for_completed_tasks(new, 2)      # the step ran again in the new run
        await new.signal(StepThenSignals.add, "done")
        result = await asyncio.wait_for(new.result(), RESULT_TIMEOUT_S)
        assert result == {"step": f"did {tag}", "items": ["one", "done"]}
        assert STEP_RUNS.count(tag) == 2
        events = (await new.history()).events
        assert [json.loads(s) for s in _signals(events)] == [["one"], ["done"]]
        failed = events[3].attributes
        assert isinstance(failed, WorkflowTaskFailedEventAttributes)
        assert failed.cause == "ResetWorkflow"
        assert json.loads(failed.failure)["details"] == {"base_run_id": base_run,
                                                         "new_run_id": new_run}

    _run(cluster, body)


def test_reset_to_the_last_task_keeps_what_was_recorded_before_it(cluster: LocalCluster) -> None:
    tag = f"last-{uuid.uuid4().hex[:6]}"

    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(StepThenSignals.run, tag, id=f"wf-{tag}",
                                             task_queue=queue)
        await _wait_for_completed_tasks(handle, 2)
        await handle.signal(StepThenSignals.add, "one")
        await _wait_for_completed_tasks(handle, 3)
        new_run = await handle.reset(reset_type="LastWorkflowTask")
        new = client.get_workflow_handle(handle.id, run_id=new_run)
        await new.signal(StepThenSignals.add, "done")
        result = await asyncio.wait_for(new.result(), RESULT_TIMEOUT_S)
        assert result == {"step": f"did {tag}", "items": ["one", "done"]}
        assert STEP_RUNS.count(tag) == 1  # the step's result was in the copied history

    _run(cluster, body)


def test_the_cli_resets_by_event_id_on_the_cluster(
        cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """`raftflow workflow reset --event-id` (the first task's WorkflowTaskCompleted, event 4)
    against a real node: the new run it prints re-runs the step and completes."""
    tag = f"cli-{uuid.uuid4().hex[:6]}"

    async def body(client: Client, queue: str) -> None:
        handle = await client.start_workflow(StepThenSignals.run, tag, id=f"wf-{tag}",
                                             task_queue=queue)
        await _wait_for_completed_tasks(handle, 2)
        history = (await handle.history()).events
        assert history[3].event_type is EventType.WORKFLOW_TASK_COMPLETED
        capsys.readouterr()
        argv = ["workflow", "reset", "--address", cluster.address(cluster.node_ids[0]),
                "-w", handle.id, "--event-id", "4", "--reason", "from the cli", "--json"]
        assert await asyncio.to_thread(main, argv) == 0
        new_run = json.loads(capsys.readouterr().out)["run_id"]
        assert (await handle.describe()).run_id == new_run  # now the workflow's open run
        base = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        assert (await base.describe()).status is WorkflowExecutionStatus.TERMINATED
        new = client.get_workflow_handle(handle.id, run_id=new_run)
        await new.signal(StepThenSignals.add, "done")
        result = await asyncio.wait_for(new.result(), RESULT_TIMEOUT_S)
        assert result == {"step": f"did {tag}", "items": ["done"]}
        assert STEP_RUNS.count(tag) == 2

    _run(cluster, body)
