"""The SDK folds a workflow task into the activity completion that makes it (one commit).

Goal: a worker that holds a run sends each activity's completion with the workflow task it
makes, run in advance; a three-step workflow then takes five commands instead of eight, writes
the history a worker without its cache writes, and replays without divergence, with
`workflow.now()` in each folded task being the time history recorded for it. When the history
moved on meanwhile (a signal during the activity), the server applies the completion alone and
the workflow goes on from history, signal included.
Method: a real 3-node cluster (conftest.py); the worker's own fold counters; the run's history
read back and replayed with `raftflow.sdk.replayer`; the reference run uses a worker with no
cache (`max_cached_workflows=0`), which never folds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import _folded_task, activity, workflow
from raftflow.sdk.client import Client
from raftflow.sdk.replayer import replay_history
from raftflow.sdk.worker import Worker

STEP = timedelta(seconds=10)
RESULT_TIMEOUT_S = 20


@activity.defn
async def double(n: int) -> int:
    return 2 * n


class _Gate:
    entered: asyncio.Event | None = None
    event: asyncio.Event | None = None


@activity.defn
async def held(n: int) -> int:
    """Waits until the test opens the gate (the test signals the run meanwhile)."""
    assert _Gate.event is not None and _Gate.entered is not None
    _Gate.entered.set()
    await _Gate.event.wait()
    return n


@workflow.defn
class ThreeSteps:
    @workflow.run
    async def run(self, n: int) -> list[Any]:
        seen: list[Any] = []
        for _ in range(3):
            n = await workflow.execute_activity(double, n, start_to_close_timeout=STEP)
            seen.append([n, workflow.now().isoformat()])  # folded tasks' time is recorded
        return seen


@workflow.defn
class SignalledStep:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.run
    async def run(self) -> list[str]:
        first = await workflow.execute_activity(held, 1, start_to_close_timeout=STEP)
        second = await workflow.execute_activity(double, first, start_to_close_timeout=STEP)
        return [*self.notes, str(second)]


def _addresses(cluster: LocalCluster) -> list[str]:
    return [cluster.address(n) for n in cluster.node_ids]


def _types(history: Any) -> list[str]:
    return [e.event_type.value for e in history.events]


def test_three_steps_fold_into_five_commits_and_replay(cluster: LocalCluster) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, Any, Any, int]:
        async with await Client.connect(_addresses(cluster)) as client:
            async with Worker(client, task_queue=queue, workflows=[ThreeSteps],
                              activities=[double]) as worker:
                folded = await asyncio.wait_for(client.execute_workflow(
                    ThreeSteps.run, 1, id=f"fold-{queue}", task_queue=queue), RESULT_TIMEOUT_S)
            # Read once the worker drained: the result can arrive before the last answer.
            applied = worker.folding.folds_applied
            async with Worker(client, task_queue=queue, workflows=[ThreeSteps],
                              activities=[double], max_cached_workflows=0) as plain:
                await asyncio.wait_for(client.execute_workflow(
                    ThreeSteps.run, 1, id=f"plain-{queue}", task_queue=queue), RESULT_TIMEOUT_S)
                assert plain.folding.folds_sent == 0
            history = await client.get_workflow_handle(f"fold-{queue}").history()
            reference = await client.get_workflow_handle(f"plain-{queue}").history()
        return folded, history, reference, applied

    folded, history, reference, applied = asyncio.run(main())
    assert applied == 3  # every activity's completion carried the task it made
    assert [step[0] for step in folded] == [2, 4, 8]
    assert _types(history) == _types(reference)
    replay_history(history, [ThreeSteps])  # raises NondeterminismError on any divergence
    started_times = [e.time_ms for e in history.events
                     if e.event_type.value == "WorkflowTaskStarted"][1:]
    assert [step[1] for step in folded] == [
        workflow_time_text(t) for t in started_times]


def workflow_time_text(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).isoformat()


def test_a_signal_during_the_activity_makes_the_server_apply_the_completion_alone(
        cluster: LocalCluster) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, Any, int, int]:
        _Gate.event, _Gate.entered = asyncio.Event(), asyncio.Event()
        async with await Client.connect(_addresses(cluster)) as client:
            async with Worker(client, task_queue=queue, workflows=[SignalledStep],
                              activities=[held, double]) as worker:
                handle = await client.start_workflow(SignalledStep.run, id=f"sig-{queue}",
                                                     task_queue=queue)
                await asyncio.wait_for(_Gate.entered.wait(), RESULT_TIMEOUT_S)
                await handle.signal(SignalledStep.note, "hello")
                _Gate.event.set()
                result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
            sent, applied = worker.folding.folds_sent, worker.folding.folds_applied
            history = await handle.history()
        return result, history, sent, applied

    result, history, sent, applied = asyncio.run(main())
    assert result == ["hello", "2"]
    # Usually the first is refused (the signal's task was pending); if the worker ran that
    # task first, its runner saw the signal and the fold was applied: both are correct.
    assert sent == 2 and applied in (1, 2), (sent, applied)
    replay_history(history, [SignalledStep])


class _AheadClock:
    """A worker clock 60 s ahead of the nodes': the server refuses every fold (its time
    would lie after the proposer's now)."""

    @staticmethod
    def time() -> float:
        return time.time() + 60


def test_a_worker_clock_ahead_of_the_nodes_folds_nothing_and_loses_nothing(
        cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_folded_task, "time", _AheadClock)
    queue = f"q-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, Any, int, int]:
        async with await Client.connect(_addresses(cluster)) as client:
            async with Worker(client, task_queue=queue, workflows=[ThreeSteps],
                              activities=[double]) as worker:
                result = await asyncio.wait_for(client.execute_workflow(
                    ThreeSteps.run, 1, id=f"ahead-{queue}", task_queue=queue), RESULT_TIMEOUT_S)
            history = await client.get_workflow_handle(f"ahead-{queue}").history()
        return result, history, worker.folding.folds_sent, worker.folding.folds_applied

    result, history, sent, applied = asyncio.run(main())
    assert [step[0] for step in result] == [2, 4, 8]
    assert sent == 3 and applied == 0  # each task then ran from history, as without folding
    replay_history(history, [ThreeSteps])
    assert all(e.time_ms <= time.time() * 1000 for e in history.events)  # nodes' times only


@activity.defn
async def big(n: int) -> str:
    return "x" * (_folded_task.FOLDED_BODY_BYTES_MAX + n)


@workflow.defn
class BigStep:
    @workflow.run
    async def run(self) -> int:
        first = await workflow.execute_activity(big, 1, start_to_close_timeout=STEP)
        second = await workflow.execute_activity(double, 2, start_to_close_timeout=STEP)
        return len(first) + second


def test_a_big_result_takes_two_calls_and_a_small_one_folds(cluster: LocalCluster) -> None:
    """The activity's result alone could fill the body limit with the task's commands on top:
    that step is not folded; the next, small one is."""
    queue = f"q-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[int, int, int]:
        async with (await Client.connect(_addresses(cluster)) as client,
                    Worker(client, task_queue=queue, workflows=[BigStep],
                           activities=[big, double]) as worker):
            result = await asyncio.wait_for(client.execute_workflow(
                BigStep.run, id=f"big-{queue}", task_queue=queue), RESULT_TIMEOUT_S)
        return result, worker.folding.folds_sent, worker.folding.folds_applied

    result, sent, applied = asyncio.run(main())
    assert result == _folded_task.FOLDED_BODY_BYTES_MAX + 1 + 4
    assert (sent, applied) == (1, 1)
