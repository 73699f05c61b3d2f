"""Test helper for schedules in the shard core: a schedule's shard and its actions' shard, the
courier between them, and the leader's shell (`tick` plans steps with real time zones).

Not a test module.
"""

from __future__ import annotations

import zoneinfo

from raftflow.protocol.commands import (
    AckMessages,
    CompleteWorkflowExecution,
    Failure,
    FailWorkflowExecution,
)
from raftflow.protocol.messages import DeliverMessages, OutboxEntry
from raftflow.protocol.results import Ack, MessagesDelivered
from raftflow.protocol.schedule_commands import CreateSchedule, ScheduleTick
from raftflow.protocol.schedules import (
    IntervalSpec,
    OverlapPolicy,
    Schedule,
    SchedulePolicies,
    ScheduleSpec,
    ScheduleStartWorkflowAction,
    ScheduleState,
)
from raftflow.shards.core.schedule_records import ScheduleRecord
from raftflow.shards.core.schedule_ticks import plan_tick
from tests.core.core_driver import NAMESPACE, Shard

T0 = 1_800_000_000_000  # a whole second


def schedule_of(overlap: OverlapPolicy = OverlapPolicy.SKIP, every_ms: int = 1_000,
              state: ScheduleState | None = None, pause_on_failure: bool = False) -> Schedule:
    return Schedule(spec=ScheduleSpec(intervals=(IntervalSpec(every_ms=every_ms),)),
                    action=ScheduleStartWorkflowAction(workflow_id="job", workflow_type="Job",
                                                       task_queue="q", input=b"[1]"),
                    policies=SchedulePolicies(overlap=overlap, catchup_window_ms=60_000,
                                              pause_on_failure=pause_on_failure),
                    state=state or ScheduleState())


class World:
    """The schedule's shard and the actions' shard, and the courier between them."""

    def __init__(self, schedule: Schedule | None = None) -> None:
        self.home, self.runs = Shard(), Shard()
        self.home.now_ms = self.runs.now_ms = T0
        result = self.home.run(CreateSchedule(now_ms=T0, namespace=NAMESPACE,
                                              schedule_id="s1", request_id="create",
                                              schedule=schedule or schedule_of())).result
        assert result == Ack()

    @property
    def record(self) -> ScheduleRecord:
        return self.home.state.schedules[(NAMESPACE, "s1")]

    def at(self, now_ms: int) -> None:
        self.home.now_ms = self.runs.now_ms = now_ms

    def tick(self) -> ScheduleTick | None:
        """Plan and propose ticks until the schedule needs none; returns the last one."""
        last = None
        while (tick := plan_tick(self.record, self.home.now_ms, zoneinfo.ZoneInfo)) is not None:
            assert self.home.run(tick).result == Ack()
            last = tick
        return last

    def carry(self) -> list[OutboxEntry]:
        """Deliver every outbox message of both shards (a round of the courier)."""
        carried: list[OutboxEntry] = []
        for source, target in ((self.home, self.runs), (self.runs, self.home)):
            entries = tuple(source.state.outbox.values())
            if not entries:
                continue
            output = target.run(DeliverMessages(now_ms=target.now_ms, entries=entries))
            assert isinstance(output.result, MessagesDelivered)
            source.run(AckMessages(now_ms=source.now_ms, outcomes=output.result.outcomes))
            carried.extend(entries)
        return carried

    def finish(self, workflow_id: str, failed: bool = False) -> None:
        execution = self.runs.state.open_execution(NAMESPACE, workflow_id)
        assert execution is not None
        self.runs.decide(execution.run_id, FailWorkflowExecution(failure=Failure(message="x"))
                         if failed else CompleteWorkflowExecution(result=b"1"))
        self.carry()

    def open_actions(self) -> list[str]:
        return sorted(wid for (_, wid) in self.runs.state.open_runs)
