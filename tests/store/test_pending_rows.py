"""Goal: the store's batched writes (pending_rows.py) change when rows reach SQLite, never what
the archive answers: closed runs and remembered requests still waiting answer every lookup
exactly like the reference and like the rows they become, the store's commit and every
scanning read write them first, and no more than `PENDING_ROWS_MAX` wait.

Method: the same commands drive the in-memory reference (the core driver's `Shard`) and a real
store's state; the store's tables are counted directly to see when rows land.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from raftflow.protocol.commands import SignalWorkflow, TerminateWorkflow
from raftflow.shards.core import run_history
from raftflow.shards.core.apply import apply
from raftflow.shards.core.archive import Archive
from raftflow.shards.core.digest import state_digest
from raftflow.shards.store import limits as store_limits
from raftflow.shards.store.shard_store import ShardStore
from raftflow.shards.store.sqlite_archive import SqliteArchive
from tests.core.core_driver import Shard
from tests.core.test_core_random_walk import spill_often as spill_often  # a fixture

KEY = ("default", "wf")


def _rows(store: ShardStore, table: str) -> int:
    db: sqlite3.Connection = store.archive._db  # noqa: SLF001 (what reached the tables)
    return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


def _two_closed_runs(shard: Shard, signals: int) -> None:
    for run in ("a", "b"):
        shard.start("wf", run_id=f"run-{run}", request_id=f"start-{run}")
        for n in range(signals):
            shard.run(SignalWorkflow(now_ms=shard.now_ms, namespace="default", workflow_id="wf",
                                     signal_name="s", request_id=f"sig-{run}-{n}"))
        shard.run(TerminateWorkflow(now_ms=shard.now_ms, namespace="default", workflow_id="wf",
                                    request_id=f"term-{run}"))


def _answers(archive: SqliteArchive) -> tuple[object, ...]:
    return (archive.has_run("run-a"), archive.has_run("run-b"), archive.has_run("run-c"),
            archive.latest_closed(KEY), archive.latest_closed(("default", "other")),
            archive.recall(("start", "default", "wf", "start-a")),
            archive.recall(("terminate", "default", "wf", "term-b")),
            archive.recall(("start", "default", "wf", "never")),
            archive.closed_head("run-a"), archive.closed_head("run-b"))


def _check(shard: Shard, store: ShardStore) -> None:
    archive = store.archive
    assert _rows(store, "runs") == 0 and _rows(store, "requests") == 0  # still pending
    pending = _answers(archive)
    reference = shard.state.archive
    assert pending == (True, True, False, "run-b", None,
                       reference.recall(("start", "default", "wf", "start-a")),
                       reference.recall(("terminate", "default", "wf", "term-b")), None,
                       reference.closed_head("run-a"), reference.closed_head("run-b"))
    assert pending[5] is not None and pending[6] is not None
    store.commit(store.state, len(shard.log), durable=False)
    assert _rows(store, "runs") == 2 and _rows(store, "latest") == 1
    assert _rows(store, "requests") == len(shard.log)  # every command here is remembered
    assert _answers(archive) == pending
    assert state_digest(store.state) == state_digest(shard.state)
    for run_id in ("run-a", "run-b"):
        whole = run_history.whole(archive, store.state.find_run(run_id))  # type: ignore[arg-type]
        assert whole == run_history.whole(reference, shard.execution(run_id))


@contextlib.contextmanager
def _reference_and_store(directory: Path, signals: int, *,
                         replay: bool = True) -> Iterator[tuple[Shard, ShardStore]]:
    """Two closed runs of "wf" in the reference and, replayed unless told not to, in a store."""
    shard = Shard()
    _two_closed_runs(shard, signals)
    store = ShardStore(str(directory / "s.db"), 0, fresh=True)
    try:
        for command in shard.log if replay else ():
            apply(store.state, command)
        yield shard, store
    finally:
        store.close()


def test_pending_rows_answer_like_written_rows(tmp_path: Path) -> None:
    with _reference_and_store(tmp_path, signals=3) as (shard, store):
        _check(shard, store)


def test_pending_runs_with_spilled_chunks(tmp_path: Path, spill_often: None) -> None:
    # Every run spills chunks of 4 before it closes; those were written at once.
    with _reference_and_store(tmp_path, signals=20) as (shard, store):
        assert _rows(store, "history") > 0
        _check(shard, store)


_FAR_FUTURE_MS = 10**15  # every row is due by then


@pytest.mark.parametrize("read", [
    lambda archive: archive.closed_count(),
    lambda archive: archive.stored_events("run-a", 1, 1_000),
    lambda archive: archive.expire(_FAR_FUTURE_MS, 1_000),
    lambda archive: list(archive.canonical_rows()),
], ids=["closed_count", "stored_events", "expire", "canonical_rows"])
def test_scanning_reads_write_the_pending_rows_first(
        tmp_path: Path, read: Callable[[Archive], object]) -> None:
    """Each read that runs SQL over the tables answers like the reference with rows waiting."""
    with _reference_and_store(tmp_path, signals=2) as (shard, store):
        assert _rows(store, "runs") == 0
        assert read(store.archive) == read(shard.state.archive)
        assert len(store.archive._pending) == 0  # noqa: SLF001


def test_no_more_than_the_limit_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_limits, "PENDING_ROWS_MAX", 3)
    # 4 remembered requests and 2 closed runs
    with _reference_and_store(tmp_path, signals=0, replay=False) as (shard, store):
        archive = store.archive
        for command in shard.log:
            apply(store.state, command)
            assert len(archive._pending) < 3  # noqa: SLF001
        assert _rows(store, "runs") + _rows(store, "requests") >= 3  # written before a commit
