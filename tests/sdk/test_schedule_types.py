"""Goal: the SDK's schedule types take temporalio's names and arguments, and convert to the wire
form and back without loss; a schedule the server would refuse is refused before sending.

Method: round trips (SDK -> wire -> JSON bytes -> wire -> SDK) with every field set and with
defaults, with and without a payload codec; tables of local refusals; describe and list answers
read into temporalio's description types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from raftflow.protocol import payload as wire_payload
from raftflow.protocol import schedules as wire
from raftflow.protocol.schedule_calendars import ScheduleRange as ScheduleRangeWire
from raftflow.sdk import workflow
from raftflow.sdk._schedule_wire import (
    backfill_to_wire,
    description_from_wire,
    list_description_from_wire,
    overlap_from_wire,
    overlap_to_wire,
    schedule_from_wire,
    schedule_to_wire,
)
from raftflow.sdk._wire_payloads import WirePayloads
from raftflow.sdk.converter import Payload, PayloadCodec
from raftflow.sdk.retry import RetryPolicy
from raftflow.sdk.schedules import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)


class ReversingCodec(PayloadCodec):
    """Reversible and visibly not plain."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload({"encoding": b"test/reversed", "inner": p.encoding or b""},
                        p.data[::-1]) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload({"encoding": p.metadata["inner"]}, p.data[::-1]) for p in payloads]


@workflow.defn(name="DailyReport")
class Report:
    @workflow.run
    async def run(self, region: str) -> str:
        return region


def full_schedule() -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            Report.run, "eu", id="report", task_queue="reports",
            execution_timeout=timedelta(hours=1), run_timeout=timedelta(minutes=30),
            task_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
            search_attributes={"Region": "eu"}),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=(ScheduleRange(8, 17, 3),), comment="shifts")],
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=1),
                                            offset=timedelta(minutes=5))],
            cron_expressions=["0 6 * * MON-FRI", "*/1 * * * * *"],
            skip=[ScheduleCalendarSpec(month=(ScheduleRange(12),), day_of_month=(
                ScheduleRange(25),)), "0 6 1 1 *"],
            start_at=datetime(2026, 1, 1, tzinfo=UTC), end_at=datetime(2027, 1, 1, tzinfo=UTC),
            jitter=timedelta(seconds=30), time_zone_name="Europe/Berlin"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE,
                              catchup_window=timedelta(minutes=10), pause_on_failure=True),
        state=ScheduleState(note="weekday reports", paused=True, limited_actions=True,
                            remaining_actions=5))


def round_trip(schedule: Schedule, payloads: WirePayloads) -> tuple[wire.Schedule, Schedule]:
    async def go() -> tuple[wire.Schedule, Schedule]:
        sent = await schedule_to_wire(schedule, payloads)
        body = msgspec.json.encode(sent, enc_hook=wire_payload.json_enc_hook)
        received = msgspec.json.decode(body, type=wire.Schedule,
                                       dec_hook=wire_payload.json_dec_hook)
        assert received == sent
        return sent, await schedule_from_wire(received, payloads)
    return asyncio.run(go())


def test_a_full_schedule_round_trips() -> None:
    schedule = full_schedule()
    sent, back = round_trip(schedule, WirePayloads(None))
    assert sent.action.workflow_type == "DailyReport" and sent.action.input == b'["eu"]'
    assert sent.spec.intervals == (wire.IntervalSpec(every_ms=3_600_000, offset_ms=300_000),)
    assert sent.policies.overlap is wire.OverlapPolicy.BUFFER_ONE
    assert sent.spec.calendars[0].hour == (ScheduleRangeWire(start=8, end=17, step=3),)
    assert sent.spec.skip == ("0 6 1 1 *",) and len(sent.spec.skip_calendars) == 1
    assert back == schedule


def test_defaults_round_trip() -> None:
    schedule = Schedule(action=ScheduleActionStartWorkflow("T", id="w", task_queue="q"),
                        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
                            every=timedelta(seconds=1))]))
    sent, back = round_trip(schedule, WirePayloads(None))
    assert sent.policies == wire.SchedulePolicies() and sent.state == wire.ScheduleState()
    assert back == schedule and back.action.args == []


def test_arguments_go_through_the_codec() -> None:
    schedule = full_schedule()
    sent, back = round_trip(schedule, WirePayloads(ReversingCodec()))
    assert b'"eu"' not in sent.action.input and b"_raftflow_payload" in sent.action.input
    assert back.action.args == ["eu"]


def test_temporalio_call_forms() -> None:
    one = ScheduleActionStartWorkflow(Report, "eu", id="r", task_queue="q")
    many = ScheduleActionStartWorkflow("DailyReport", args=["eu"], id="r", task_queue="q")
    assert one == many and one.workflow == "DailyReport" and one.args == ["eu"]
    with pytest.raises(ValueError, match="either arg or args"):
        ScheduleActionStartWorkflow(Report.run, "eu", args=["x"], id="r", task_queue="q")
    # The update callback shape: edit the description in place, hand the schedule back.
    description = asyncio.run(description_from_wire(describe_answer(), WirePayloads(None)))
    update_input = ScheduleUpdateInput(description=description)
    update_input.description.schedule.state.note = "edited"
    update = ScheduleUpdate(schedule=update_input.description.schedule)
    assert update.schedule.state.note == "edited"


@pytest.mark.parametrize("policy", list(ScheduleOverlapPolicy))
def test_overlap_policies_map_both_ways(policy: ScheduleOverlapPolicy) -> None:
    assert overlap_from_wire(overlap_to_wire(policy)) is policy
    assert overlap_to_wire(policy).value == policy.name.lower()


@pytest.mark.parametrize(("spec", "error", "words"), [
    (ScheduleSpec(cron_expressions=["61 * * * *"]), ValueError,
     "spec.cron_expressions[0]: minute field '61'"),
    (ScheduleSpec(cron_expressions=["@daily"], time_zone_name="Mars/Olympus"), ValueError,
     "unknown time zone 'Mars/Olympus'"),
    (ScheduleSpec(), ValueError, "at least one calendar, cron expression or interval"),
    (ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(milliseconds=1500))]),
     ValueError, "whole seconds"),
    (ScheduleSpec(cron_expressions=["@daily"], start_at=datetime(2026, 1, 1)), TypeError,
     "start_at needs a time zone"),
])
def test_schedules_the_server_would_refuse_are_refused_here(
        spec: ScheduleSpec, error: type[Exception], words: str) -> None:
    schedule = Schedule(action=ScheduleActionStartWorkflow("T", id="w", task_queue="q"),
                        spec=spec)
    with pytest.raises(error) as raised:
        asyncio.run(schedule_to_wire(schedule, WirePayloads(None)))
    assert words in str(raised.value)


def test_backfills() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    sent = backfill_to_wire(ScheduleBackfill(start_at=start, end_at=start + timedelta(hours=1),
                                             overlap=ScheduleOverlapPolicy.ALLOW_ALL))
    assert sent == wire.ScheduleBackfill(start_at_ms=1_767_261_600_000,
                                         end_at_ms=1_767_265_200_000,
                                         overlap=wire.OverlapPolicy.ALLOW_ALL)
    with pytest.raises(ValueError, match="end_at_ms: must not be before start_at_ms"):
        backfill_to_wire(ScheduleBackfill(start_at=start, end_at=start - timedelta(seconds=1)))


RUN = wire.ScheduleActionRun(workflow_id="report-2026-01-01T05:00:00Z", run_id="r1")
RESULT = wire.ScheduleActionResult(scheduled_at_ms=1_767_243_600_000,
                                   started_at_ms=1_767_243_601_500, action=RUN)


def describe_answer() -> wire.ScheduleDescription:
    schedule = asyncio.run(schedule_to_wire(full_schedule(), WirePayloads(None)))
    return wire.ScheduleDescription(schedule_id="daily", schedule=schedule, info=wire.ScheduleInfo(
        num_actions=7, num_actions_missed_catchup_window=2, num_actions_skipped_overlap=1,
        running_actions=(RUN,), recent_actions=(RESULT,),
        next_action_times_ms=(1_767_247_200_000,), created_at_ms=1_767_225_600_000))


def test_describe_and_list_answers_read_as_temporalio_types() -> None:
    description = asyncio.run(description_from_wire(describe_answer(), WirePayloads(None)))
    assert description.id == "daily" and description.schedule == full_schedule()
    info = description.info
    assert (info.num_actions, info.num_actions_missed_catchup_window,
            info.num_actions_skipped_overlap) == (7, 2, 1)
    assert info.running_actions[0].first_execution_run_id == "r1"
    assert info.recent_actions[0].started_at == datetime(2026, 1, 1, 5, 0, 1, 500_000,
                                                         tzinfo=UTC)
    assert info.next_action_times == [datetime(2026, 1, 1, 6, tzinfo=UTC)]
    assert info.created_at == datetime(2026, 1, 1, tzinfo=UTC) and info.last_updated_at is None
    listed = list_description_from_wire(wire.ScheduleListEntry(
        schedule_id="daily", workflow_type="DailyReport",
        spec=wire.ScheduleSpec(cron_expressions=("@daily",)), note="n", paused=True,
        recent_actions=(RESULT,), next_action_times_ms=(1_767_247_200_000,)))
    assert listed.schedule is not None and listed.info is not None
    assert listed.schedule.action.workflow == "DailyReport"
    assert listed.schedule.spec.cron_expressions == ["@daily"]
    assert (listed.schedule.state.note, listed.schedule.state.paused) == ("n", True)
    assert listed.info.recent_actions[0].action.workflow_id == RUN.workflow_id
