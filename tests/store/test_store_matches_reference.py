"""Goal: a store-backed shard state and the in-memory reference reach identical digests over
random command sequences, deletion by retention included, across commits, reopenings of the
file (a restart) and installs of another store's image (a replica move).

Method: the seeded random walk of the core tests (`Walk`) drives the reference; its twin
replica is a `ShardStore`'s state (SQLite archive). Time jumps of hours to days make closed
runs and request ids expire, so `FireTimers` deletes rows in both. Every few steps the store
commits; now and then it is closed and reopened (uncommitted work is lost then, so it commits
first, as a replica's Raft snapshot does) or replaced by an image of itself taken into a second
file. Every few steps a new leader's effects (`pending_effects`) are compared too: with few
runs cached, the store reads only the rows that may hold a task to dispatch. Digests are compared at every checkpoint; the core's invariants run on the reference
after every step (inside `Walk.apply`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raftflow.protocol.codec import ENCODER
from raftflow.protocol.commands import FireTimers
from raftflow.shards.core import limits, run_history
from raftflow.shards.core.apply import pending_effects
from raftflow.shards.core.digest import state_digest
from raftflow.shards.store import limits as store_limits
from raftflow.shards.store.open_run_cache import OpenRunCache
from raftflow.shards.store.shard_store import ShardStore
from tests.core.test_core_random_walk import Walk
from tests.core.test_core_random_walk import spill_often as spill_often  # a fixture

SEEDS = range(6)
STEPS = 700
_HOUR_MS = 3_600_000


def assert_open_run_rows_match(store: ShardStore) -> None:
    """After a commit, the `open_runs` rows are exactly the open runs in memory, in their order
    (a run changed without being touched would keep a stale row: a lost write on restart)."""
    rows = store.archive._db.execute(  # noqa: SLF001 (what the file holds)
        "SELECT run_id, run FROM open_runs ORDER BY seq").fetchall()
    assert rows == [(run_id, ENCODER.encode(execution))
                    for run_id, execution in store.state.executions.items()]


@pytest.fixture(params=[1, store_limits.OPEN_RUNS_CACHED], ids=["evicting", "cached"])
def cached(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many open runs the store keeps decoded: 1 evicts at every commit and read, so a run
    changed without a touch reads back stale and the digests part."""
    monkeypatch.setattr(store_limits, "OPEN_RUNS_CACHED", request.param)
    return int(request.param)


class StoreWalk(Walk):
    def __init__(self, seed: int, directory: Path) -> None:
        super().__init__(seed)
        self.directory = directory
        self.store = ShardStore(str(directory / "a.db"), 1, fresh=True)
        self.replica = self.store.state
        self.index = 0
        self.expired_any = False
        self.evicted = 0  # commits after which some open run was only a row

    def apply(self, command):  # type: ignore[no-untyped-def]
        result = super().apply(command)
        self.index += 1
        if self.index % 7 == 0:
            self.store.commit(self.replica, self.index, durable=self.index % 21 == 0)
            assert_open_run_rows_match(self.store)
            runs = self.replica.executions
            assert isinstance(runs, OpenRunCache)
            assert runs.cached_count <= store_limits.OPEN_RUNS_CACHED, runs.cached_count
            self.evicted += runs.cached_count < len(runs)
        if self.index % 5 == 0:  # a new leader here dispatches what the reference's would
            assert pending_effects(self.replica) == pending_effects(self.state), self.index
        return result

    def step(self) -> None:
        if self.rng.random() < 0.03:
            self.jump()
        else:
            super().step()

    def jump(self) -> None:
        """Hours to days pass: retention and request-id expiry fall due."""
        before = self.state.archive.closed_count()
        self.now_ms += self.rng.choice([_HOUR_MS, 25 * _HOUR_MS, 80 * _HOUR_MS])
        self.apply(FireTimers(now_ms=self.now_ms))
        self.expired_any |= self.state.archive.closed_count() < before
        # The I5 model forgets what the shard may forget now (all due rows: the walk's
        # archive stays far below EXPIRIES_PER_FIRE_MAX).
        self.answers = {key: answer for key, answer in self.answers.items()
                        if answer[1] > self.now_ms}

    def reopen(self) -> None:
        self.store.commit(self.replica, self.index, durable=True)
        self.store.close()
        self.store = ShardStore(self.store.path, 1, fresh=False)
        assert self.store.log_index == self.index
        self.replica = self.store.state

    def move(self) -> None:
        """Install an image of this store into a fresh file, as a new replica would."""
        self.store.commit(self.replica, self.index, durable=False)
        image = self.store.image()
        self.store.close()
        target = self.directory / ("b.db" if self.store.path.endswith("a.db") else "a.db")
        self.store = ShardStore(str(target), 1, fresh=True)
        self.store.install(image)
        assert self.store.log_index == self.index
        self.replica = self.store.state


@pytest.mark.parametrize("seed", SEEDS)
def test_the_store_and_the_reference_agree(seed: int, tmp_path: Path, cached: int) -> None:
    walk = StoreWalk(seed, tmp_path)
    try:
        for index in range(STEPS):
            walk.step()
            if index % 50 == 49:
                assert state_digest(walk.replica) == state_digest(walk.state), index
                (walk.reopen if index % 100 == 49 else walk.move)()
                assert state_digest(walk.replica) == state_digest(walk.state), index
        assert state_digest(walk.replica) == state_digest(walk.state)
        assert walk.state.archive.closed_count() == walk.replica.archive.closed_count()
        if cached == 1:  # the walk did run with runs only as rows
            assert walk.evicted > 10, walk.evicted
    finally:
        walk.store.close()


@pytest.mark.parametrize("seed", range(3))
def test_the_store_and_the_reference_agree_with_spilled_histories(
        seed: int, tmp_path: Path, spill_often: None, cached: int) -> None:
    """The same with open runs spilling chunk after chunk (run_history.py): the chunks are
    rows of both archives, survive reopening and images, and join the run when it closes."""
    walk = StoreWalk(seed, tmp_path)
    checkpoints_with_spilled = 0
    try:
        for index in range(STEPS):
            walk.step()
            if index % 25 == 24:
                spilled = walk.state.archive.spilled_contents()
                assert walk.replica.archive.spilled_contents() == spilled, index
                checkpoints_with_spilled += bool(spilled)
                for execution in walk.state.executions.values():  # open runs read alike
                    ours = walk.replica.executions[execution.run_id]
                    assert (run_history.whole(walk.replica.archive, ours)
                            == run_history.whole(walk.state.archive, execution)), index
            if index % 50 == 49:
                assert state_digest(walk.replica) == state_digest(walk.state), index
                (walk.reopen if index % 100 == 49 else walk.move)()
                assert state_digest(walk.replica) == state_digest(walk.state), index
        assert state_digest(walk.replica) == state_digest(walk.state)
        assert checkpoints_with_spilled >= 3, checkpoints_with_spilled
    finally:
        walk.store.close()


def test_expiry_happens_in_some_walk(tmp_path: Path) -> None:
    """The check above is only worth something if closed runs really expire in the walks."""
    assert limits.DEFAULT_RETENTION_MS < 80 * _HOUR_MS  # the longest jump passes retention
    expired = False
    for seed in SEEDS:
        (tmp_path / str(seed)).mkdir()
        walk = StoreWalk(seed, tmp_path / str(seed))
        try:
            for _ in range(STEPS):
                walk.step()
            expired |= walk.expired_any
        finally:
            walk.store.close()
    assert expired
