"""Random walks of schedules in the shard core: any interleaving of time passing, ticks, the
courier (with repeated deliveries), action runs closing, pause, trigger, backfill and update
keeps the invariants (checked after every command), applies a stale tick as a no-op, hands no
scheduled time to the overlap policy twice, and is deterministic (the log replayed on a fresh state gives the same
state; a snapshot round trip keeps the schedules).
"""

from __future__ import annotations

import zoneinfo
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.protocol.commands import AckMessages
from raftflow.protocol.messages import DeliverMessages
from raftflow.protocol.results import Ack, MessagesDelivered
from raftflow.protocol.schedule_commands import PatchSchedule, ScheduleTick, UpdateSchedule
from raftflow.protocol.schedules import OverlapPolicy, ScheduleBackfill, ScheduleState
from raftflow.shards.core import apply, snapshot
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.schedule_ticks import plan_tick
from raftflow.shards.core.state import ShardState
from tests.core.core_driver import NAMESPACE
from tests.core.schedule_world import T0, World, schedule_of

POLICIES = st.sampled_from(list(OverlapPolicy))
OPS = st.one_of(
    st.tuples(st.just("advance"), st.integers(0, 4_000)),
    st.tuples(st.just("advance"), st.integers(500, 2_500)),
    st.tuples(st.just("carry"), st.booleans()),
    st.tuples(st.just("finish"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("trigger"), POLICIES),
    st.tuples(st.just("backfill"), st.integers(0, 5_000), POLICIES),
    st.tuples(st.just("update"), POLICIES, st.integers(1, 3)),
    st.tuples(st.just("stale"),),
)


def _carry(world: World, twice: bool) -> None:
    for source, target in ((world.home, world.runs), (world.runs, world.home)):
        entries = tuple(source.state.outbox.values())
        if not entries:
            continue
        delivered = target.run(DeliverMessages(now_ms=target.now_ms, entries=entries))
        if twice:  # a re-send after a lost answer: the same outcomes, nothing applied again
            again = target.run(DeliverMessages(now_ms=target.now_ms, entries=entries))
            assert again.result == delivered.result
        assert isinstance(delivered.result, MessagesDelivered)
        source.run(AckMessages(now_ms=source.now_ms, outcomes=delivered.result.outcomes))


@settings(max_examples=60, deadline=None)
@given(policy=POLICIES, every_s=st.integers(1, 3), jitter_ms=st.sampled_from([0, 700]),
       budget=st.one_of(st.none(), st.integers(0, 4)), ops=st.lists(OPS, min_size=10, max_size=40))
def test_random_schedule_walks(policy: OverlapPolicy, every_s: int, jitter_ms: int,
                               budget: int | None, ops: list[tuple[object, ...]]) -> None:
    state = (ScheduleState() if budget is None
             else ScheduleState(limited_actions=True, remaining_actions=budget))
    schedule = schedule_of(policy, every_ms=every_s * 1_000, state=state)
    schedule = schedule.__class__(spec=schedule.spec.__class__(
        intervals=schedule.spec.intervals, jitter_ms=jitter_ms), action=schedule.action,
        policies=schedule.policies, state=schedule.state)
    world = World(schedule)
    last_tick: ScheduleTick | None = None
    due_seen: Counter[int] = Counter()  # nominal times the ticks handed to the policy
    for request, op in enumerate(ops):
        now = world.home.now_ms
        match op:
            case ("advance", int(ms)):
                world.at(now + ms)
                while (tick := plan_tick(world.record, now + ms, zoneinfo.ZoneInfo)) is not None:
                    assert world.home.run(tick).result == Ack()
                    last_tick = tick
                    due_seen.update(d.nominal_ms for d in tick.due)
            case ("carry", bool(twice)):
                _carry(world, twice)
            case ("finish", int(index), bool(failed)):
                open_ids = world.open_actions()
                if open_ids:
                    world.finish(open_ids[index % len(open_ids)], failed=failed)
            case ("pause", bool(pause)):
                world.home.run(PatchSchedule(now_ms=now, namespace=NAMESPACE, schedule_id="s1",
                                             request_id=f"r{request}", pause=pause))
            case ("trigger", OverlapPolicy() as overlap):
                world.home.run(PatchSchedule(now_ms=now, namespace=NAMESPACE, schedule_id="s1",
                                             request_id=f"r{request}", trigger=True,
                                             trigger_overlap=overlap))
            case ("backfill", int(span), OverlapPolicy() as overlap):
                world.home.run(PatchSchedule(
                    now_ms=now, namespace=NAMESPACE, schedule_id="s1",
                    request_id=f"r{request}", backfills=(ScheduleBackfill(
                        start_at_ms=T0 - 100_000, end_at_ms=T0 - 100_000 + span,
                        overlap=overlap),)))
            case ("update", OverlapPolicy() as overlap, int(every)):
                world.home.run(UpdateSchedule(
                    now_ms=now, namespace=NAMESPACE, schedule_id="s1",
                    request_id=f"r{request}",
                    schedule=schedule_of(overlap, every_ms=every * 1_000, state=state)))
            case ("stale",):
                if last_tick is not None:
                    world.home.run_unchanged(last_tick)
                fresh = plan_tick(world.record, world.home.now_ms, zoneinfo.ZoneInfo)
                assert fresh is None or fresh.from_cursor_ms == world.record.processed_through_ms
            case _:
                raise AssertionError(op)
    # The cursor hands each scheduled time to the overlap policy once, none before the create.
    assert all(n == 1 for n in due_seen.values()) and all(t > T0 for t in due_seen), due_seen
    for shard in (world.home, world.runs):
        replayed = ShardState.empty(0)
        for command in shard.log:
            apply(replayed, command)
        assert state_digest(replayed) == state_digest(shard.state)
    restored = snapshot.from_bytes(snapshot.to_bytes(world.home.state))
    assert restored.schedules == world.home.state.schedules
