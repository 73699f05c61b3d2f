"""Schedules wired into the shard core: commands, ticks, actions through the outbox and their
closes coming back (shards/core/on_schedules.py, schedule_actions.py).

Two `Shard`s play the schedule's shard and the actions' shard; `_tick` plays the leader's shell
(api/schedule_ticker.py): it plans a step with real time zones and proposes it.
"""

from __future__ import annotations

import zoneinfo

import pytest

from raftflow.protocol.commands import (
    AckMessages,
    CompleteWorkflowExecution,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.messages import (
    CancelMessage,
    DeliverMessages,
    MessageOutcome,
    ScheduleActionClosedMessage,
    ScheduleStartMessage,
    TerminateMessage,
)
from raftflow.protocol.results import Ack, Rejected
from raftflow.protocol.schedule_commands import (
    CreateSchedule,
    DeleteSchedule,
    PatchSchedule,
    UpdateSchedule,
)
from raftflow.protocol.schedules import (
    OverlapPolicy,
    Schedule,
    ScheduleBackfill,
    ScheduleSpec,
    ScheduleState,
)
from raftflow.shards.core import snapshot
from raftflow.shards.core.schedule_ticks import describe, plan_tick
from tests.core.core_driver import NAMESPACE
from tests.core.schedule_world import T0, World, schedule_of


def test_an_interval_schedule_starts_deterministic_runs_and_skips_overlaps() -> None:
    world = World()
    assert world.tick() is not None and world.record.next_wake_ms == T0 + 1_000
    world.at(T0 + 3_500)
    world.tick()
    assert world.record.processed_through_ms == T0 + 3_000
    (start,) = world.home.state.outbox.values()
    assert isinstance(start.body, ScheduleStartMessage)
    assert start.body.workflow_id == "job-2027-01-15T08:00:01Z"
    world.carry()
    assert world.open_actions() == ["job-2027-01-15T08:00:01Z"]
    run = world.runs.state.open_execution(NAMESPACE, "job-2027-01-15T08:00:01Z")
    assert run is not None and run.parent is not None and run.parent.schedule_id == "s1"
    assert world.record.num_actions == 1 and world.record.num_skipped == 2
    world.finish("job-2027-01-15T08:00:01Z")
    assert not world.record.running
    world.at(T0 + 4_000)
    world.tick()
    world.carry()
    assert world.open_actions() == ["job-2027-01-15T08:00:04Z"]
    info = describe(world.record, T0 + 4_000, zoneinfo.ZoneInfo).info
    assert [a.action.workflow_id for a in info.recent_actions] == [
        "job-2027-01-15T08:00:01Z", "job-2027-01-15T08:00:04Z"]
    assert info.next_action_times_ms[0] == T0 + 5_000


def test_a_stale_tick_changes_nothing() -> None:
    world = World()
    world.at(T0 + 2_000)
    tick = plan_tick(world.record, T0 + 2_000, zoneinfo.ZoneInfo)
    assert tick is not None
    world.home.run(tick)
    rejected = world.home.run_unchanged(tick)  # the same step again: its cursor moved
    assert rejected.code is ErrorCode.STALE_TASK
    world.home.run(UpdateSchedule(now_ms=T0 + 2_000, namespace=NAMESPACE, schedule_id="s1",
                                  schedule=schedule_of(every_ms=2_000), request_id="u1"))
    assert world.home.run_unchanged(tick).code is ErrorCode.STALE_TASK


def test_downtime_past_the_catchup_window_counts_missed_times() -> None:
    world = World(schedule_of(OverlapPolicy.ALLOW_ALL))
    world.at(T0 + 100_000)  # 100 times, a 60 s window
    world.tick()
    assert world.record.num_missed == 39  # the window's start is inclusive
    assert world.record.num_actions == 61 and world.record.processed_through_ms == T0 + 100_000


def test_client_commands_are_idempotent_and_refuse_a_second_create() -> None:
    world = World()
    again = world.home.run(CreateSchedule(now_ms=T0, namespace=NAMESPACE, schedule_id="s1",
                                          request_id="create", schedule=schedule_of()))
    assert again.result == Ack()
    other = world.home.run_unchanged(CreateSchedule(
        now_ms=T0, namespace=NAMESPACE, schedule_id="s1", request_id="other",
        schedule=schedule_of()))
    assert other.code is ErrorCode.SCHEDULE_ALREADY_EXISTS
    missing = world.home.run_unchanged(DeleteSchedule(now_ms=T0, namespace=NAMESPACE,
                                                      schedule_id="nope", request_id="d"))
    assert missing.code is ErrorCode.NOT_FOUND
    bad = world.home.run_unchanged(CreateSchedule(
        now_ms=T0, namespace=NAMESPACE, schedule_id="s2", request_id="bad",
        schedule=Schedule(spec=ScheduleSpec(), action=schedule_of().action)))
    assert isinstance(bad, Rejected) and bad.field == "schedule.spec"


def test_remaining_actions_limit_scheduled_actions_only() -> None:
    world = World(schedule_of(OverlapPolicy.ALLOW_ALL,
                            state=ScheduleState(limited_actions=True, remaining_actions=2)))
    world.at(T0 + 5_000)
    world.tick()
    assert world.record.num_actions == 2 and world.record.schedule.state.remaining_actions == 0
    world.home.run(PatchSchedule(now_ms=T0 + 5_000, namespace=NAMESPACE, schedule_id="s1",
                                 request_id="p", trigger=True))
    assert world.record.num_actions == 3  # a trigger is always taken
    world.carry()
    assert len(world.open_actions()) == 3


def test_paused_times_are_not_taken_and_unpause_resumes() -> None:
    world = World()
    world.home.run(PatchSchedule(now_ms=T0, namespace=NAMESPACE, schedule_id="s1",
                                 request_id="p1", pause=True, note="maintenance"))
    world.at(T0 + 3_000)
    world.tick()
    assert world.record.num_actions == 0 and world.record.schedule.state.note == "maintenance"
    world.home.run(PatchSchedule(now_ms=T0 + 3_000, namespace=NAMESPACE, schedule_id="s1",
                                 request_id="p2", pause=False))
    world.at(T0 + 4_000)
    world.tick()
    assert world.record.num_actions == 1


def test_a_backfill_with_buffer_all_runs_each_time_in_turn() -> None:
    world = World()
    world.home.run(PatchSchedule(
        now_ms=T0, namespace=NAMESPACE, schedule_id="s1", request_id="b",
        backfills=(ScheduleBackfill(start_at_ms=T0 - 10_000, end_at_ms=T0 - 8_000,
                                    overlap=OverlapPolicy.BUFFER_ALL),)))
    world.tick()
    assert not world.record.backfills and len(world.record.buffered) == 2
    started: list[str] = []
    for _ in range(3):
        world.carry()
        (open_id,) = world.open_actions()
        started.append(open_id)
        world.finish(open_id)
    assert started == ["job-2027-01-15T07:59:50Z", "job-2027-01-15T07:59:51Z",
                       "job-2027-01-15T07:59:52Z"]
    assert not world.record.running and not world.record.buffered


@pytest.mark.parametrize("policy, stop", [(OverlapPolicy.CANCEL_OTHER, CancelMessage),
                                          (OverlapPolicy.TERMINATE_OTHER, TerminateMessage)])
def test_replacing_policies_stop_the_running_action(policy: OverlapPolicy,
                                                     stop: type) -> None:
    world = World(schedule_of(policy))
    world.at(T0 + 1_000)
    world.tick()
    world.carry()
    world.at(T0 + 2_000)
    world.tick()
    (order,) = world.home.state.outbox.values()
    assert isinstance(order.body, stop)
    world.carry()  # delivers the order; a terminate closes the run and tells the schedule
    if policy is OverlapPolicy.CANCEL_OTHER:
        world.finish("job-2027-01-15T08:00:01Z")
    world.carry()
    assert world.open_actions() == ["job-2027-01-15T08:00:02Z"]


def test_a_refused_start_frees_the_slot() -> None:
    world = World()
    world.runs.start("job-2027-01-15T08:00:01Z")  # someone else holds the action's id
    world.at(T0 + 1_000)
    world.tick()
    world.carry()
    assert not world.record.running and world.record.num_actions == 1


def test_pause_on_failure_pauses_theschedule_of() -> None:
    world = World(schedule_of(pause_on_failure=True))
    world.at(T0 + 1_000)
    world.tick()
    world.carry()
    world.finish("job-2027-01-15T08:00:01Z", failed=True)
    assert world.record.schedule.state.paused and world.record.schedule.state.note


def test_a_close_notice_after_delete_is_a_no_op_and_snapshots_keep_schedules() -> None:
    world = World()
    world.at(T0 + 1_000)
    world.tick()
    world.carry()
    restored = snapshot.from_bytes(snapshot.to_bytes(world.home.state))
    assert restored.schedules == world.home.state.schedules
    world.home.run(DeleteSchedule(now_ms=T0 + 1_000, namespace=NAMESPACE, schedule_id="s1",
                                  request_id="d"))
    world.finish("job-2027-01-15T08:00:01Z")
    assert not world.home.state.schedules and not world.home.state.outbox


def test_a_repeated_close_notice_changes_nothing() -> None:
    world = World(schedule_of(OverlapPolicy.BUFFER_ONE))
    world.at(T0 + 2_000)
    world.tick()
    world.carry()
    execution = world.runs.state.open_execution(NAMESPACE, "job-2027-01-15T08:00:01Z")
    assert execution is not None
    world.runs.decide(execution.run_id, CompleteWorkflowExecution(result=b"1"))
    (notice,) = world.runs.state.outbox.values()
    assert isinstance(notice.body, ScheduleActionClosedMessage)
    for _ in range(2):
        world.home.run(DeliverMessages(now_ms=T0 + 2_000, entries=(notice,)))
    assert list(world.record.running) == ["job-2027-01-15T08:00:02Z"]
    outcome = MessageOutcome(message_id=notice.message_id)
    world.runs.run(AckMessages(now_ms=T0 + 2_000, outcomes=(outcome,)))
