"""Goal: a store-backed replica of a schedule's shard and of its actions' shard reaches the
reference's digest: schedule records (in the open part), the schedule's outbox messages and the
actions' links to their schedule survive commits with runs evicted to rows, a reopening of the
file and the install of an image.

Method: a `World` (tests/core/schedule_world.py) runs a schedule through ticks, the courier
and closing actions; each shard's log is applied again to a `ShardStore`'s state that keeps one
open run decoded, committing every few commands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raftflow.protocol.schedule_commands import PatchSchedule
from raftflow.protocol.schedules import OverlapPolicy
from raftflow.shards.core import apply
from raftflow.shards.core.digest import state_digest
from raftflow.shards.store import limits as store_limits
from raftflow.shards.store.shard_store import ShardStore
from tests.core.core_driver import NAMESPACE, Shard
from tests.core.schedule_world import T0, World, schedule_of


def _world() -> World:
    world = World(schedule_of(OverlapPolicy.BUFFER_ALL))
    for second in range(1, 8):
        world.at(T0 + second * 1_000)
        world.tick()
        world.carry()
        if second % 2 == 0:
            for workflow_id in world.open_actions()[:1]:
                world.finish(workflow_id, failed=second == 4)
    world.home.run(PatchSchedule(now_ms=T0 + 8_000, namespace=NAMESPACE, schedule_id="s1",
                                 request_id="p", trigger=True, pause=True, note="n"))
    world.carry()
    return world


def _replay(shard: Shard, directory: Path) -> None:
    store = ShardStore(str(directory / "a.db"), 0, fresh=True)
    try:
        state = store.state
        for index, command in enumerate(shard.log, start=1):
            apply(state, command)
            if index % 3 == 0:
                store.commit(state, index, durable=index % 9 == 0)
        store.commit(state, len(shard.log), durable=True)
        assert state_digest(state) == state_digest(shard.state)
        store.close()
        store = ShardStore(str(directory / "a.db"), 0, fresh=False)
        assert state_digest(store.state) == state_digest(shard.state)
        image = store.image()
        store.close()
        store = ShardStore(str(directory / "b.db"), 0, fresh=True)
        store.install(image)
        assert state_digest(store.state) == state_digest(shard.state)
        assert store.state.schedules == shard.state.schedules
    finally:
        store.close()


def test_store_backed_replicas_of_a_schedule_agree(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_limits, "OPEN_RUNS_CACHED", 1)
    world = _world()
    assert world.record.num_actions >= 4 and world.runs.state.archive.closed_count() >= 3
    for name, shard in (("home", world.home), ("runs", world.runs)):
        (tmp_path / name).mkdir()
        _replay(shard, tmp_path / name)
