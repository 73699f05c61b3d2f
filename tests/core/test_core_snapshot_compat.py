"""Goal: shard snapshots written by release 0.1 (format 1, arrays) restore unchanged, and a
replica restored from one agrees with a replica that applied the same log on the current code.

Method: `tests/data/protocol-v0.1/` holds snapshots that 0.1 wrote of the state the seeded random
walk of `test_core_random_walk.py` (seed 2) reaches, and the sha256 of its snapshot every 25
steps. They are restored with the current code, which writes format 2 (maps) from then on; the
same walk is replayed on the current code, and at each kept step the restored state must equal
the walked one and re-snapshot to the same bytes, hence the same digest (DESIGN §4 I2 across
releases: a replica upgraded mid-log agrees with one that was not). Digests are sha256 of the
snapshot bytes, so they differ from 0.1's by design: the recorded ones now only pin the fixture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from raftflow.shards.core import snapshot
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.invariants import check_invariants
from raftflow.shards.core.state import ShardState
from tests.core.test_core_random_walk import Walk

DATA = Path(__file__).parent.parent / "data" / "protocol-v0.1"
META = json.loads((DATA / "walk-snapshots.json").read_text())
KEPT: list[int] = META["kept_steps"]


def _old_snapshot(step: int) -> bytes:
    return (DATA / f"walk-seed{META['seed']}-step{step}.snapshot").read_bytes()


@pytest.mark.parametrize("step", KEPT)
def test_a_0_1_snapshot_restores_and_round_trips_in_the_current_format(step: int) -> None:
    old = _old_snapshot(step)
    assert hashlib.sha256(old).hexdigest() == META["sha256_by_step"][str(step)]  # fixture intact
    state = snapshot.from_bytes(old)
    check_invariants(state)
    data = snapshot.to_bytes(state)
    assert data[:2] == bytes((0x92, snapshot.SNAPSHOT_FORMAT_VERSION)) != old[:2]
    again = snapshot.from_bytes(data)
    assert again == state and snapshot.to_bytes(again) == data
    # The derived heap is rebuilt on decode, not read from the snapshot.
    assert sorted(state.timer_heap) == sorted((at, *key) for key, at in state.timers.items())


def test_the_fixture_holds_the_shapes_worth_checking() -> None:
    state = snapshot.from_bytes(_old_snapshot(KEPT[0]))
    executions = state.executions.values()
    assert any(e.buffered for e in executions)
    assert any(e.task_started() for e in executions)
    assert len({a.phase for e in executions for a in e.activities.values()}) >= 2
    assert state.timers and state.request_results and state.closed_runs
    assert len({e.status for e in executions}) >= 5


def test_a_replica_restored_from_0_1_agrees_with_the_same_walk_on_the_current_code() -> None:
    walk = Walk(META["seed"])
    for step in range(1, max(KEPT) + 1):
        walk.step()
        if step in KEPT:
            restored = snapshot.from_bytes(_old_snapshot(step))
            assert restored == walk.state, f"diverged at step {step}"
            assert state_digest(restored) == state_digest(walk.state), f"step {step}"


def test_the_timer_heap_is_neither_packed_nor_compared() -> None:
    state = snapshot.from_bytes(_old_snapshot(KEPT[0]))
    twin = snapshot.from_bytes(snapshot.to_bytes(state))
    twin.timer_heap.append((0, "stale", "user", 1))  # lazy deletion leaves such entries
    assert twin == state
    assert snapshot.to_bytes(twin) == snapshot.to_bytes(state)
    assert ShardState.empty(1).timer_heap == []
