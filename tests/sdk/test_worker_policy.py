"""The worker's pure policy: how polls spread over nodes, how many eager activities to ask for.

Goal: polls spread evenly over the nodes and are never pinned to one (`local`: the server's
fan-out is the only one, so a worker with few slots leaves no node's tasks waiting), pollers never
exceed the slots, and eager activities are asked for only for this worker's queue and types.
Method: table-driven checks of `_worker_policy`.
"""

from __future__ import annotations

import pytest

from raftflow.protocol.commands import ScheduleActivityTask, StartTimer, WorkflowCommand
from raftflow.sdk._worker_policy import (
    EAGER_ACTIVITIES_PER_TASK_MAX,
    POLLERS_PER_NODE,
    eager_activities_wanted,
    poll_plan,
)

NODES = ("http://a", "http://b", "http://c")


@pytest.mark.parametrize("slots", [1, 2, 3, 4, 7, 24, 25, 100, 1000])
def test_poll_plan_spreads_server_fanned_polls_within_the_slots(slots: int) -> None:
    plan = poll_plan(NODES, slots)
    assert 1 <= len(plan) <= slots
    addresses = plan
    counts = {address: addresses.count(address) for address in NODES}
    assert max(counts.values()) - min(counts.values()) <= 1, "polls spread evenly"
    assert max(counts.values()) <= POLLERS_PER_NODE
    if slots >= len(NODES):
        assert set(addresses) == set(NODES)


def test_eager_activities_only_for_this_queue_and_known_types() -> None:
    def schedule(activity_type: str, queue: str = "") -> ScheduleActivityTask:
        return ScheduleActivityTask(activity_id="x", activity_type=activity_type,
                                    task_queue=queue, start_to_close_timeout_ms=1000)

    commands: list[WorkflowCommand] = [
        schedule("step"), schedule("step", "q"), schedule("step", "other"), schedule("unknown"),
        StartTimer(timer_id="t", start_to_fire_timeout_ms=1000)]
    assert eager_activities_wanted(commands, "q", {"step"}) == 2
    assert eager_activities_wanted(commands, "q", set()) == 0
    many = [schedule("step")] * (EAGER_ACTIVITIES_PER_TASK_MAX + 5)
    assert eager_activities_wanted(many, "q", {"step"}) == EAGER_ACTIVITIES_PER_TASK_MAX
