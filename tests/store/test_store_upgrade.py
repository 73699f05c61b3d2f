"""Goal: a store file of format 1 (an earlier release's: `runs` and `history` WITHOUT ROWID)
opens in the current format with the same rows, the same open part and the same log index, so
a node upgraded in place restarts exactly where it stopped; so do ones of formats 2 and 3
(format 3 kept the open runs inside the meta row's open part, format 4 keeps them as rows).

Method: a random walk fills a store; the file is then rewritten into format 1's layout with
format 1's DDL (kept here as the record of what that release wrote), reopened, and compared by
digest with the walk's in-memory reference.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from raftflow.protocol.codec import decoder
from raftflow.shards.core import snapshot
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.state import Execution
from raftflow.shards.store.shard_store import STORE_FORMAT, ShardStore
from tests.store.test_store_matches_reference import StoreWalk, assert_open_run_rows_match

_FORMAT_1_DDL = {
    "runs": """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, workflow_id TEXT NOT NULL,
        workflow_type TEXT NOT NULL, task_queue TEXT NOT NULL, status TEXT NOT NULL,
        start_time_ms INTEGER NOT NULL, close_time_ms INTEGER NOT NULL,
        delete_at_ms INTEGER NOT NULL, history_length INTEGER NOT NULL,
        close_event BLOB NOT NULL, run BLOB NOT NULL) WITHOUT ROWID""",
    "history": """CREATE TABLE history (
        run_id TEXT NOT NULL, first_event_id INTEGER NOT NULL, events BLOB NOT NULL,
        PRIMARY KEY (run_id, first_event_id)) WITHOUT ROWID""",
}
_FORMAT_1_INDEXES = (
    "CREATE INDEX runs_due ON runs (delete_at_ms, run_id)",
    "CREATE INDEX runs_started ON runs (namespace, start_time_ms, run_id)",
    "CREATE INDEX runs_closed ON runs (namespace, close_time_ms, run_id)",
)


def _fold_open_runs(db: sqlite3.Connection) -> None:
    """Format 4 to 3: the `open_runs` rows back inside the meta row's open part, in order."""
    state = snapshot.open_part_from_bytes(db.execute("SELECT open_part FROM meta").fetchone()[0])
    for (blob,) in db.execute("SELECT run FROM open_runs ORDER BY seq").fetchall():
        execution = decoder(Execution).decode(blob)
        state.executions[execution.run_id] = execution
    db.execute("UPDATE meta SET open_part = ?, format = 3", (snapshot.open_part_bytes(state),))
    db.execute("DROP TABLE open_runs")


def _rewrite_as_format(path: Path, found_format: int) -> None:
    assert found_format in (2, 3, 4), found_format
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        if found_format < 4:
            _fold_open_runs(db)
        db.execute("UPDATE meta SET format = ?", (found_format,))
        db.execute("COMMIT")
    finally:
        db.close()


def _rewrite_as_format_1(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        _fold_open_runs(db)
        for table, ddl in _FORMAT_1_DDL.items():
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_now")
            db.execute(ddl)
            db.execute(f"INSERT INTO {table} SELECT * FROM {table}_now")
            db.execute(f"DROP TABLE {table}_now")
        for ddl in _FORMAT_1_INDEXES:
            db.execute(ddl)
        db.execute("UPDATE meta SET format = 1")
        db.execute("COMMIT")
    finally:
        db.close()


def _table_sql(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return {name: sql for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') "
            "AND sql IS NOT NULL")}
    finally:
        db.close()


def test_a_format_1_store_opens_upgraded_with_the_same_state(tmp_path: Path) -> None:
    walk = StoreWalk(3, tmp_path)
    for _ in range(400):
        walk.step()
    assert walk.state.archive.closed_count() > 0  # there are rows to carry over
    walk.store.commit(walk.replica, walk.index, durable=True)
    walk.store.close()
    path = tmp_path / "a.db"
    _rewrite_as_format_1(path)
    assert "WITHOUT ROWID" in _table_sql(path)["runs"]

    store = ShardStore(str(path), 1, fresh=False)
    try:
        assert store.log_index == walk.index
        assert state_digest(store.state) == state_digest(walk.state)
        # It is the current format on disk too, with every index, and keeps working after a reopen.
        store.commit(store.state, walk.index, durable=True)
    finally:
        store.close()
    tables = _table_sql(path)
    assert "WITHOUT ROWID" not in tables["runs"] and "WITHOUT ROWID" not in tables["history"]
    assert {"runs_due", "runs_started", "runs_closed", "requests_due"} <= set(tables)
    assert not any(name.endswith("_format_1") for name in tables)
    reopened = ShardStore(str(path), 1, fresh=False)
    try:
        assert state_digest(reopened.state) == state_digest(walk.state)
        assert sqlite3.connect(path).execute("SELECT format FROM meta").fetchone()[0] \
            == STORE_FORMAT
    finally:
        reopened.close()


def test_a_format_2_store_opens_as_format_3_with_the_same_state(tmp_path: Path) -> None:
    """Format 3 only adds spilled chunks of open runs, which a format-2 file never holds."""
    walk = StoreWalk(4, tmp_path)
    for _ in range(300):
        walk.step()
    walk.store.commit(walk.replica, walk.index, durable=True)
    walk.store.close()
    path = tmp_path / "a.db"
    _rewrite_as_format(path, 2)
    store = ShardStore(str(path), 1, fresh=False)
    try:
        assert store.log_index == walk.index
        assert state_digest(store.state) == state_digest(walk.state)
    finally:
        store.close()
    assert sqlite3.connect(path).execute("SELECT format FROM meta").fetchone()[0] == STORE_FORMAT


def test_a_format_4_store_opens_as_format_5_with_the_same_state(tmp_path: Path) -> None:
    """Format 5 only lets the open part hold an outbox, which a format-4 file never has."""
    walk = StoreWalk(6, tmp_path)
    for _ in range(200):
        walk.step()
    walk.store.commit(walk.replica, walk.index, durable=True)
    walk.store.close()
    path = tmp_path / "a.db"
    _rewrite_as_format(path, 4)
    assert sqlite3.connect(path).execute("SELECT format FROM meta").fetchone()[0] == 4
    store = ShardStore(str(path), 1, fresh=False)
    try:
        assert store.log_index == walk.index
        assert state_digest(store.state) == state_digest(walk.state)
    finally:
        store.close()
    assert sqlite3.connect(path).execute("SELECT format FROM meta").fetchone()[0] == 5 \
        == STORE_FORMAT


def test_a_format_3_store_opens_with_its_open_runs_as_rows(tmp_path: Path) -> None:
    walk = StoreWalk(5, tmp_path)
    for _ in range(300):
        walk.step()
    assert len(walk.state.executions) >= 3  # there are open runs to move, in an order to keep
    walk.store.commit(walk.replica, walk.index, durable=True)
    walk.store.close()
    path = tmp_path / "a.db"
    _rewrite_as_format(path, 3)
    store = ShardStore(str(path), 1, fresh=False)
    try:
        assert store.log_index == walk.index
        assert list(store.state.executions) == list(walk.state.executions)
        assert state_digest(store.state) == state_digest(walk.state)
        assert_open_run_rows_match(store)
        # The meta row no longer holds them.
        meta = store.archive._db.execute("SELECT open_part FROM meta").fetchone()[0]  # noqa: SLF001
        assert snapshot.open_part_from_bytes(meta).executions == {}
    finally:
        store.close()


def test_a_new_store_uses_the_configured_page_size(tmp_path: Path) -> None:
    from raftflow.shards.store.limits import PAGE_BYTES
    store = ShardStore(str(tmp_path / "p.db"), 1, fresh=True)
    try:
        assert store.image()[16:18] == (PAGE_BYTES if PAGE_BYTES < 65536 else 1).to_bytes(2, "big")
    finally:
        store.close()
