"""Goal: a store-backed replica keeps at most `OPEN_RUNS_CACHED` open runs decoded (plus the runs
touched since the last commit), reads the others back from their rows equal to what the
reference holds, never drops a run that may have changed before its row is written, and walks
every run without flushing the cache.

Method: the same starts drive the in-memory reference (the core driver's `Shard`) and a real
store's state, with the limit lowered to 2; runs are compared by encoding, object identity
tells a cached run from one read back, and counting row reads tells what a walk read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from raftflow.protocol.codec import ENCODER
from raftflow.shards.core.apply import apply, pending_effects
from raftflow.shards.store import limits as store_limits
from raftflow.shards.store.open_run_cache import OpenRunCache
from raftflow.shards.store.shard_store import ShardStore
from tests.core.core_driver import Shard, start_command

RUNS = [f"run-wf{n}" for n in range(6)]


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Shard, ShardStore]]:
    monkeypatch.setattr(store_limits, "OPEN_RUNS_CACHED", 2)
    shard = Shard()
    store = ShardStore(str(tmp_path / "s.db"), 0, fresh=True)
    try:
        for n in range(6):
            command = start_command(f"wf{n}")
            shard.run(command)
            apply(store.state, command)
        store.commit(store.state, 6, durable=False)
        yield shard, store
    finally:
        store.close()


def _cache(store: ShardStore) -> OpenRunCache:
    runs = store.state.executions
    assert isinstance(runs, OpenRunCache)
    return runs


def _same(store: ShardStore, shard: Shard, run_id: str) -> bool:
    return (ENCODER.encode(_cache(store)[run_id])
            == ENCODER.encode(shard.state.executions[run_id]))


def test_a_commit_leaves_at_most_the_limit_and_reads_stay_within_it(stores) -> None:  # type: ignore[no-untyped-def]
    shard, store = stores
    runs = _cache(store)
    assert runs.cached_count == 2 and len(runs) == 6
    for run_id in RUNS * 2:
        assert _same(store, shard, run_id)
        assert runs.cached_count <= 2, runs.cached_count


def test_touched_runs_stay_until_the_commit_writes_them(stores) -> None:  # type: ignore[no-untyped-def]
    _, store = stores
    state, runs = store.state, _cache(store)
    taken = {run_id: state.take_open_run(run_id) for run_id in RUNS[:4]}
    for run_id in RUNS[4:] * 3:
        runs.get(run_id)
    assert all(runs[run_id] is execution for run_id, execution in taken.items())
    assert runs.cached_count >= 4
    store.commit(state, 7, durable=False)
    assert runs.cached_count == 2


def test_the_run_just_read_stays_when_every_other_cached_run_is_touched(
        stores, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A read returns a run its caller may touch next (`find_run` touches after checking it
    is open): evicting it then would let the caller change a copy no commit writes."""
    _, store = stores
    monkeypatch.setattr(store_limits, "OPEN_RUNS_CACHED", 1)
    state, runs = store.state, _cache(store)
    state.take_open_run(RUNS[0])
    read = runs[RUNS[5]]
    state.touch(RUNS[5])
    assert runs[RUNS[5]] is read


def test_a_walk_reads_every_run_in_order_and_keeps_the_cache_as_it_was(stores) -> None:  # type: ignore[no-untyped-def]
    shard, store = stores
    state, runs = store.state, _cache(store)
    apply(state, start_command("wf-new"))  # opened after the commit: cached, not yet a row
    shard.run(start_command("wf-new"))
    del runs[RUNS[2]]  # as a close does, before the commit deletes its row
    del shard.state.executions[RUNS[2]]
    before = runs.cached_count
    walked = [(run_id, ENCODER.encode(execution)) for run_id, execution in runs.items()]
    assert walked == [(run_id, ENCODER.encode(execution))
                      for run_id, execution in shard.state.executions.items()]
    assert runs.cached_count == before


def test_a_reopened_store_decodes_no_run_until_one_is_read(stores) -> None:  # type: ignore[no-untyped-def]
    shard, store = stores
    path = store.path
    store.close()
    reopened = ShardStore(path, 0, fresh=False)
    try:
        runs = _cache(reopened)
        assert runs.cached_count == 0 and list(runs) == RUNS
        assert _same(reopened, shard, RUNS[3]) and runs.cached_count == 1
    finally:
        reopened.close()


def test_a_new_leader_reads_only_the_rows_that_may_have_a_task_to_dispatch(
        stores, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """After a restart every row may hold one; the first walk learns which do not."""
    shard, store = stores
    for run_id in RUNS[:4]:  # their first workflow tasks start: nothing left to dispatch
        shard.poll_workflow_task(run_id)
        apply(store.state, shard.log[-1])
    store.commit(store.state, 7, durable=False)
    path = store.path
    store.close()
    reopened = ShardStore(path, 0, fresh=False)
    reads: list[str] = []
    read = OpenRunCache._read  # noqa: SLF001 (counting row reads)
    monkeypatch.setattr(OpenRunCache, "_read",
                        lambda self, run_id: reads.append(run_id) or read(self, run_id))
    try:
        expected = pending_effects(shard.state)
        assert len(expected) == 3  # RUNS[4:]'s workflow tasks, then the wake-up
        assert pending_effects(reopened.state) == expected and reads == RUNS
        reads.clear()
        assert pending_effects(reopened.state) == expected and reads == RUNS[4:]
        assert _cache(reopened).cached_count == 0
    finally:
        reopened.close()
