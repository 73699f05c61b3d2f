"""Workflow retry policies on a real 3-node cluster (issue 15: a start's, a child's and a schedule
action's `retry_policy`).

Goal: a workflow started with a `retry_policy` that fails is run again as the next attempt of
the same workflow id, with the same input, after the back-off, until it succeeds, fails
non-retryably or uses up its attempts; `handle.result()` follows the attempts; a child's
attempts stay inside the child (its parent sees one outcome); a parent's close policy reaches
the child's current attempt; a schedule action's policy is applied.
Method: `raftflow node` processes on loopback (one cluster for the module, conftest.py);
workflows written with the public SDK; runs and histories read back through the client.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from raftflow.cli import main as cli_main
from raftflow.cluster.launcher import LocalCluster
from raftflow.protocol.events import (
    EventType,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)
from raftflow.sdk import (
    ApplicationError,
    Client,
    RetryPolicy,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
    Worker,
    activity,
    workflow,
)
from raftflow.sdk.client import WorkflowExecutionStatus
from raftflow.sdk.errors import WorkflowFailureError

RESULT_TIMEOUT_S = 60
FAST = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0,
                   maximum_attempts=3, non_retryable_error_types=("Fatal",))


@activity.defn
async def say(text: str, number: int) -> str:
    return f"{text} {number}"


@workflow.defn
class Flaky:
    """Fails until its attempt reaches `succeed_at`; with `kind` "Fatal" it fails that way."""

    @workflow.run
    async def run(self, succeed_at: int, kind: str = "Boom") -> str:
        info = workflow.info()
        if info.attempt < succeed_at:
            raise ApplicationError(f"attempt {info.attempt} fails", type=kind)
        policy = info.retry_policy
        said: str = await workflow.execute_activity(  # temporalio's args= form
            say, args=["ok at attempt", info.attempt], start_to_close_timeout=timedelta(seconds=10))
        return f"{said} of {policy.maximum_attempts if policy else 0}"


@workflow.defn
class FailsThenWaits:
    """Attempt 1 fails; later attempts wait for a signal that never comes."""

    @workflow.run
    async def run(self) -> str:
        if workflow.info().attempt == 1:
            raise ApplicationError("first attempt fails")
        await workflow.wait_condition(lambda: False)
        return "unreachable"


@workflow.defn
class FailsThenListens:
    """Attempt 1 fails; later attempts return the signals they got (those sent during the
    back-off included, recorded before the attempt's first workflow task)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        if workflow.info().attempt == 1:
            raise ApplicationError("first attempt fails")
        await workflow.wait_condition(lambda: len(self.notes) >= 2)
        return self.notes

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, child_id: str, succeed_at: int) -> str:
        result: str = await workflow.execute_child_workflow(
            Flaky.run, args=[succeed_at], id=child_id, retry_policy=FAST)
        return f"child said: {result}"


@workflow.defn
class Abandoner:
    """Starts a child that retries, waits until its second attempt runs, then completes, so its
    close policy (terminate) must reach that attempt, not the first."""

    @workflow.run
    async def run(self, child_id: str) -> str:
        await workflow.start_child_workflow(FailsThenWaits.run, id=child_id, retry_policy=FAST)
        await workflow.sleep(timedelta(seconds=2))
        return "parent done"


@workflow.defn
class SignalsItsChild:
    """Signals a child through its handle after the child's first attempt failed: the
    signals reach the attempt that runs now."""

    @workflow.run
    async def run(self, child_id: str) -> list[str]:
        child = await workflow.start_child_workflow(FailsThenListens.run, id=child_id,
                                                    retry_policy=FAST)
        await workflow.sleep(timedelta(seconds=3))  # attempt 1 fails at its first task
        await child.signal(FailsThenListens.note, "one")
        await child.signal(FailsThenListens.note, "two")
        notes: list[str] = await child
        return notes


WORKFLOWS = [Flaky, FailsThenWaits, FailsThenListens, Parent, Abandoner, SignalsItsChild]
SLOW = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=2)


def _addresses(cluster: LocalCluster) -> list[str]:
    return [cluster.address(n) for n in cluster.node_ids]


async def _runs(client: Client, workflow_id: str) -> list[str]:
    """Every run id of `workflow_id`, oldest start first."""
    listed = [w async for w in client.list_workflows(
        f"WorkflowId = '{workflow_id}' ORDER BY StartTime ASC")]
    return [w.run_id for w in listed if w.id == workflow_id]


def test_a_failing_workflow_is_retried_until_it_succeeds(
        cluster: LocalCluster, capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            wid = f"flaky-{queue}"
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                handle = await client.start_workflow(Flaky.run, 3, id=wid, task_queue=queue,
                                                     retry_policy=FAST)
                assert await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S) == (
                    "ok at attempt 3 of 3")
            runs = await _runs(client, wid)
            assert len(runs) == 3 and runs[0] == handle.result_run_id
            first = await client.get_workflow_handle(wid, run_id=runs[0]).history()
            close = first.events[-1].attributes
            assert isinstance(close, WorkflowExecutionFailedEventAttributes)
            assert close.new_execution_run_id == runs[1]
            last = await client.get_workflow_handle(wid, run_id=runs[2]).history()
            started = last.events[0].attributes
            assert isinstance(started, WorkflowExecutionStartedEventAttributes)
            assert (started.attempt, started.continued_execution_run_id,
                    started.first_execution_run_id, started.first_workflow_task_backoff_ms) == (
                3, runs[1], runs[0], 200)
            assert started.retry_policy == FAST.to_protocol()
            # The CLI's result, asked about the first attempt, follows to the last as well.
            capsys.readouterr()
            assert await asyncio.to_thread(cli_main, [
                "workflow", "result", "-w", wid, "--run-id", runs[0],
                "--address", cluster.address(cluster.node_ids[0])]) == 0
            assert capsys.readouterr().out == '"ok at attempt 3 of 3"\n'

    asyncio.run(main())


def test_signals_sent_during_the_back_off_reach_the_next_attempt(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            wid = f"listens-{queue}"
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                handle = await client.start_workflow(FailsThenListens.run, id=wid,
                                                     task_queue=queue, retry_policy=SLOW)
                for _ in range(100):  # until attempt 2 is open, in its 2 s back-off
                    if len(await _runs(client, wid)) == 2:
                        break
                    await asyncio.sleep(0.05)
                waiting = client.get_workflow_handle(wid)
                assert (await waiting.describe()).description.workflow_task_pending is False
                await waiting.signal(FailsThenListens.note, "early")
                history = await waiting.history()
                assert [e.event_type for e in history.events] == [
                    EventType.WORKFLOW_EXECUTION_STARTED, EventType.WORKFLOW_EXECUTION_SIGNALED]
                await waiting.signal(FailsThenListens.note, "later")
                assert await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S) == [
                    "early", "later"]

    asyncio.run(main())


@pytest.mark.parametrize(("succeed_at", "kind", "attempts"), [
    (9, "Boom", 3),  # the policy's three attempts used up
    (9, "Fatal", 1),  # a non-retryable error type: no second attempt
])
def test_the_chain_ends_with_the_last_attempts_failure(cluster: LocalCluster, succeed_at: int,
                                                       kind: str, attempts: int) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            wid = f"doomed-{queue}"
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                handle = await client.start_workflow(Flaky.run, args=[succeed_at, kind], id=wid,
                                                     task_queue=queue, retry_policy=FAST)
                with pytest.raises(WorkflowFailureError) as raised:
                    await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
            assert str(raised.value.__cause__) == f"attempt {attempts} fails"
            assert len(await _runs(client, wid)) == attempts

    asyncio.run(main())


def test_a_child_retries_inside_its_own_chain(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            child = f"child-{queue}"
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                assert await client.execute_workflow(
                    Parent.run, child, 2, id=f"parent-{queue}", task_queue=queue,
                ) == "child said: ok at attempt 2 of 3"
            history = await client.get_workflow_handle(f"parent-{queue}").history()
            kinds = [e.event_type for e in history.events]
            assert kinds.count(EventType.CHILD_WORKFLOW_EXECUTION_STARTED) == 1
            assert kinds.count(EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED) == 1
            assert EventType.CHILD_WORKFLOW_EXECUTION_FAILED not in kinds
            assert len(await _runs(client, child)) == 2

    asyncio.run(main())


def test_a_parent_signals_its_childs_current_attempt(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            child = f"listener-{queue}"
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                assert await asyncio.wait_for(client.execute_workflow(
                    SignalsItsChild.run, child, id=f"signaller-{queue}", task_queue=queue),
                    RESULT_TIMEOUT_S) == ["one", "two"]
            assert len(await _runs(client, child)) == 2

    asyncio.run(main())


def test_the_parent_close_policy_reaches_the_childs_current_attempt(
        cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            child = f"held-{queue}"
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                assert await client.execute_workflow(
                    Abandoner.run, child, id=f"abandoner-{queue}", task_queue=queue,
                ) == "parent done"
                handle = client.get_workflow_handle(child)
                for _ in range(100):
                    described = await handle.describe()
                    if described.status is WorkflowExecutionStatus.TERMINATED:
                        break
                    await asyncio.sleep(0.1)
            assert described.status is WorkflowExecutionStatus.TERMINATED
            runs = await _runs(client, child)
            assert len(runs) == 2 and described.run_id == runs[1]

    asyncio.run(main())


def test_a_schedule_action_is_retried_by_its_policy(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue = f"q-{uuid.uuid4().hex[:8]}"
            prefix = f"act-{queue}"
            schedule = Schedule(
                action=ScheduleActionStartWorkflow(Flaky.run, args=[2], id=prefix,
                                                   task_queue=queue, retry_policy=FAST),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(paused=True))
            async with Worker(client, task_queue=queue, workflows=WORKFLOWS, activities=[say]):
                handle = await client.create_schedule(f"sched-{queue}", schedule)
                await handle.trigger()
                action_id = ""
                for _ in range(100):
                    recent = (await handle.describe()).info.recent_actions
                    if recent:
                        action_id = recent[0].action.workflow_id
                        break
                    await asyncio.sleep(0.1)
                assert action_id.startswith(prefix + "-")
                result = await asyncio.wait_for(
                    client.get_workflow_handle(action_id).result(), RESULT_TIMEOUT_S)
                assert result == "ok at attempt 2 of 3"
                await handle.delete()
            assert len(await _runs(client, action_id)) == 2

    asyncio.run(main())
