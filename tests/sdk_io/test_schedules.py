"""Schedules through the SDK on a real 3-node cluster (issue 15 item 6).

Goal: `client.create_schedule` / `ScheduleHandle` with temporalio's names: a 1 s interval
schedule starts runs with deterministic ids (`<id>-<nominal time>`) that a worker completes;
describe, list, pause, unpause, trigger, backfill, update and delete; and across `restart-all`
(every node SIGKILLed, then started again), a 1 s SKIP schedule runs no action twice and misses
none outside the downtime (times inside it within the catch-up window are handed to the overlap
policy together when a leader is back: with SKIP the first starts, the others are skipped).
Method: `raftflow node` processes on loopback (conftest.py); schedules through the public SDK,
runs read back with `list_workflows`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from raftflow.cluster.launcher import LocalCluster
from raftflow.sdk import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    Worker,
    workflow,
)

WAIT_S = 30.0


@workflow.defn
class Tick:
    @workflow.run
    async def run(self, n: int) -> int:
        return n + 1


def _addresses(cluster: LocalCluster) -> list[str]:
    return [cluster.address(n) for n in cluster.node_ids]


def _nominal(workflow_id: str, prefix: str) -> int:
    """The nominal time (whole seconds since the epoch) an action's workflow id names."""
    stamp = workflow_id.removeprefix(prefix + "-")
    return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


async def _until(check: object, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


def test_a_schedule_through_the_sdk(cluster: LocalCluster) -> None:
    async def main() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            queue, prefix = f"q-{uuid.uuid4().hex[:8]}", f"tick-{uuid.uuid4().hex[:6]}"
            sid = f"every-second-{prefix}"
            schedule = Schedule(
                action=ScheduleActionStartWorkflow(Tick.run, 41, id=prefix, task_queue=queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP))
            async with Worker(client, task_queue=queue, workflows=[Tick]):
                handle = await client.create_schedule(sid, schedule)
                try:
                    await client.create_schedule(sid, schedule)
                    raise AssertionError("a second create of the same id was accepted")
                except ScheduleAlreadyRunningError as error:
                    assert error.schedule_id == sid

                async def three_done() -> bool:
                    return len((await handle.describe()).info.recent_actions) >= 3
                await _until(three_done)
                described = await handle.describe()
                first = described.info.recent_actions[0].action
                assert first.workflow_id.startswith(prefix + "-")
                assert await client.get_workflow_handle(first.workflow_id).result() == 42
                assert described.schedule.action.args == [41]
                assert len(described.info.next_action_times) == 10
                listed = [s async for s in await client.list_schedules()]
                assert sid in [s.id for s in listed]

                await handle.pause(note="quiet")
                paused = await handle.describe()
                assert paused.schedule.state.paused and paused.schedule.state.note == "quiet"
                count = paused.info.num_actions
                await asyncio.sleep(1.5)
                assert (await handle.describe()).info.num_actions == count
                await handle.trigger()
                await handle.backfill(ScheduleBackfill(
                    start_at=datetime(2026, 1, 1, tzinfo=UTC),
                    end_at=datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC),
                    overlap=ScheduleOverlapPolicy.ALLOW_ALL))

                async def backfilled() -> bool:
                    return (await handle.describe()).info.num_actions >= count + 4
                await _until(backfilled)
                assert await client.get_workflow_handle(
                    f"{prefix}-2026-01-01T00:00:01Z").result() == 42
                await handle.unpause()

                def longer(given: ScheduleUpdateInput) -> ScheduleUpdate:
                    new = given.description.schedule
                    new.spec.intervals = [ScheduleIntervalSpec(every=timedelta(hours=1))]
                    return ScheduleUpdate(schedule=new)
                await handle.update(longer)
                updated = await handle.describe()
                assert updated.schedule.spec.intervals[0].every == timedelta(hours=1)
                await handle.delete()
                assert sid not in [s.id async for s in await client.list_schedules()]

    asyncio.run(main())


def test_restart_all_neither_doubles_nor_misses_an_action(cluster: LocalCluster) -> None:
    """Last in the module: every node is killed, then started again."""
    prefix = f"beat-{uuid.uuid4().hex[:6]}"
    sid = f"restart-{prefix}"
    marks: dict[str, float] = {}

    async def create_and_run() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            # No worker: each action times out after 100 ms by itself, well within its
            # second, so SKIP never finds one running at the next time.
            await client.create_schedule(sid, Schedule(
                action=ScheduleActionStartWorkflow("Beat", id=prefix, task_queue="nobody",
                                                   execution_timeout=timedelta(
                                                       milliseconds=100)),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                                      catchup_window=timedelta(seconds=10))))
            marks["created"] = time.time()
            await asyncio.sleep(4.5)

    asyncio.run(create_and_run())
    marks["killed"] = time.time()
    for node_id in cluster.node_ids:
        cluster.kill(node_id)
    time.sleep(2.0)
    cluster.start()
    cluster.wait_ready()
    marks["ready"] = time.time()

    async def check() -> None:
        async with await Client.connect(_addresses(cluster)) as client:
            await asyncio.sleep(4.5)
            handle = client.get_schedule_handle(sid)
            await handle.pause()
            marks["paused"] = time.time()
            await asyncio.sleep(1.0)  # the last actions close and tell the schedule
            info = (await handle.describe()).info
            runs = [w for w in await client.list_workflows("WorkflowType = 'Beat'")
                    if w.id.startswith(prefix + "-")]
            ids = [w.id for w in runs]
            assert len(ids) == len(set(ids)), "an action ran twice"
            assert info.num_actions == len(ids), (info, ids)
            taken = {_nominal(i, prefix) for i in ids}
            # Every second outside the downtime (a second of slack at each edge) has its run.
            before = range(int(marks["created"]) + 1, int(marks["killed"]) - 1)
            after = range(int(marks["ready"]) + 2, int(marks["paused"]) - 1)
            missing = [t for t in (*before, *after) if t not in taken]
            assert not missing, (missing, sorted(taken), marks)
            # Catch-up: the downtime was within the 10 s window, so nothing counts missed;
            # its times went to SKIP together (one taken, the others skipped).
            assert info.num_actions_missed_catchup_window == 0, info
            down = [t for t in taken if marks["killed"] + 1 < t < marks["ready"] - 1]
            assert len(down) <= 1, (down, marks)
            await handle.delete()

    asyncio.run(check())
