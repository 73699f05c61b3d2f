"""Goal: shard snapshots written by release 0.1 restore unchanged, and the state machine writes
the same snapshot bytes (hence the same digests) as 0.1 did for the same log.

Method: `tests/data/protocol-v0.1/` holds snapshots that 0.1 wrote of the state the seeded random
walk of `test_core_random_walk.py` (seed 2) reaches, and the sha256 of its snapshot every 25
steps. They are restored with the current code and re-snapshotted byte for byte; then the same
walk is replayed on the current code and every recorded digest must match (DESIGN §4 I2 across
releases: a replica upgraded mid-log agrees with one that was not).
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
def test_a_0_1_snapshot_restores_and_re_snapshots_byte_identical(step: int) -> None:
    old = _old_snapshot(step)
    state = snapshot.from_bytes(old)
    check_invariants(state)
    assert snapshot.to_bytes(state) == old
    assert state_digest(state) == hashlib.sha256(old).hexdigest() == META["sha256_by_step"][
        str(step)]
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


def test_the_same_walk_writes_the_snapshots_0_1_wrote() -> None:
    walk = Walk(META["seed"])
    expected: dict[str, str] = META["sha256_by_step"]
    for step in range(1, max(KEPT) + 1):
        walk.step()
        if str(step) in expected:
            assert state_digest(walk.state) == expected[str(step)], f"diverged at step {step}"
    assert snapshot.to_bytes(walk.state) == _old_snapshot(max(KEPT))


def test_the_timer_heap_is_neither_packed_nor_compared() -> None:
    state = snapshot.from_bytes(_old_snapshot(KEPT[0]))
    twin = snapshot.from_bytes(snapshot.to_bytes(state))
    twin.timer_heap.append((0, "stale", "user", 1))  # lazy deletion leaves such entries
    assert twin == state
    assert snapshot.to_bytes(twin) == snapshot.to_bytes(state)
    assert ShardState.empty(1).timer_heap == []
