"""Goal: replayed code that diverges from its history is caught, with a message naming the
event id, what history recorded and what the code now produces.

Method: the golden Order history (charge → ship → timer → complete) is replayed against
edited copies of the Order workflow: a changed activity type, a changed order of steps, a
removed timer, an extra activity; each must raise NondeterminismError at the right event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raftflow.sdk import errors, workflow
from raftflow.sdk._replay import WorkflowRunner
from tests.sdk.history_builder import activate
from tests.sdk.sample_workflows import FAST, QUICK_RETRY, charge, ship, square

ORDER = json.loads((Path(__file__).resolve().parents[1] / "data" / "histories" /
                    "order_retry.json").read_text())


def replay(cls: type) -> None:
    runner = WorkflowRunner(cls, namespace="default", workflow_id=ORDER["workflow_id"],
                            run_id=ORDER["run_id"], workflow_type="Order", task_queue="golden")
    activate(runner, ORDER["events"])


@workflow.defn(name="Order")
class ChangedType:
    @workflow.run
    async def run(self, order: str) -> Any:
        await workflow.execute_activity(square, 2, start_to_close_timeout=FAST)


@workflow.defn(name="Order")
class ChangedOrder:
    @workflow.run
    async def run(self, order: str) -> Any:
        await workflow.execute_activity(charge, order, start_to_close_timeout=FAST,
                                        retry_policy=QUICK_RETRY)
        await workflow.sleep(0.3)
        await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)


@workflow.defn(name="Order")
class RemovedTimer:
    @workflow.run
    async def run(self, order: str) -> Any:
        await workflow.execute_activity(charge, order, start_to_close_timeout=FAST)
        await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
        return "done"


@workflow.defn(name="Order")
class ExtraActivity:
    @workflow.run
    async def run(self, order: str) -> Any:
        await workflow.execute_activity(charge, order, start_to_close_timeout=FAST)
        await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)
        await workflow.execute_activity(ship, order, start_to_close_timeout=FAST)


def test_changed_activity_type() -> None:
    with pytest.raises(errors.NondeterminismError) as caught:
        replay(ChangedType)
    error = caught.value
    assert error.event_id == 5
    assert error.expected == "ActivityTaskScheduled(activity_id='1', activity_type='charge')"
    assert error.produced == "ScheduleActivityTask(activity_id='1', activity_type='square')"
    assert str(error).startswith("nondeterminism at event 5: history recorded "
                                 "ActivityTaskScheduled(activity_id='1', activity_type='charge')")


def test_changed_order_of_steps() -> None:
    with pytest.raises(errors.NondeterminismError) as caught:
        replay(ChangedOrder)
    assert caught.value.event_id == 11
    assert "activity_type='ship'" in caught.value.expected
    assert caught.value.produced == "StartTimer(timer_id='1')"


def test_removed_timer() -> None:
    with pytest.raises(errors.NondeterminismError) as caught:
        replay(RemovedTimer)
    assert caught.value.event_id == 17
    assert caught.value.expected == "TimerStarted(timer_id='1')"
    assert caught.value.produced == "CompleteWorkflowExecution()"


def test_extra_command_is_caught_at_the_end_of_its_task() -> None:
    with pytest.raises(errors.NondeterminismError) as caught:
        replay(ExtraActivity)
    assert caught.value.event_id == 17
    assert caught.value.produced == "ScheduleActivityTask(activity_id='3', activity_type='ship')"


def test_runner_recovers_by_full_replay_after_an_error() -> None:
    """After raising, the runner replays everything again on the next call (it does not keep
    half-applied state)."""
    runner = WorkflowRunner(ChangedType, namespace="default", workflow_id="w", run_id="r",
                            workflow_type="Order", task_queue="golden")
    with pytest.raises(errors.NondeterminismError):
        activate(runner, ORDER["events"][:12])
    with pytest.raises(errors.NondeterminismError):
        activate(runner, ORDER["events"][12:])
