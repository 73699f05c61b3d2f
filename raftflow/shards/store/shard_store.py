"""`ShardStore`: one shard replica's state in one SQLite file (WAL mode), and its transactions.

Theory of operation.
- The file holds the archive's tables (sqlite_archive.py), each open run as a row of
  `open_runs` (open_run_rows.py: rewritten when the core touched it), and one `meta` row: the
  log index of the last applied entry the file covers, and the rest of the open part of the
  shard state at that index (`open_run_rows.open_part_without_runs`). The store keeps one
  transaction open between commits; every archive write lands in it, and `commit` writes the
  touched runs' rows and the meta row and commits, so the file always holds the state exactly
  as of `log_index` (a crash rolls back to the last commit).
- Durability comes from the Raft log, which replays into the store: a commit does not sync
  (`synchronous=NORMAL` in WAL mode keeps the file consistent, not durable), except a `durable`
  one, which fsyncs the WAL file. The replica's Raft snapshot is then only a manifest naming that
  index, and the log before it may be compacted (raftlog) because the store holds it durably.
- A replica that needs a snapshot from a peer receives `image()`: a consistent copy of the
  whole file as of the last commit (SQLite's backup API reads through the WAL), and `install`s
  it in place of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3

from raftflow.raftlog.wal import fsync_directory
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.snapshot import open_part_from_bytes
from raftflow.shards.core.state import ShardState
from raftflow.shards.store import limits, open_run_cache, open_run_rows
from raftflow.shards.store.open_run_cache import OpenRunCache
from raftflow.shards.store.sqlite_archive import SCHEMA, SqliteArchive
from raftflow.shards.store.store_upgrade import upgrade

log = logging.getLogger(__name__)

# 2: `runs` and `history` became rowid tables (store_upgrade.py upgrades format 1 in place).
# 3: `history` also holds open runs' spilled chunks and the open part counts them
#    (`Execution.spilled_events`); a format-2 file has none, so only its number changes. An
#    older release must not read such a file: it would drop the count and the chunks.
# 4: open runs are rows of `open_runs`, no longer inside the meta row's open part.
# 5: the open part may hold an outbox (`ShardState.outbox`); a format-4 file has none, so only
#    its number changes. An older release must not read such a file: it would drop the outbox.
STORE_FORMAT = 5

_META = """CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0), format INTEGER NOT NULL, shard_id INTEGER NOT NULL,
    log_index INTEGER NOT NULL, open_part BLOB NOT NULL)"""


class StoreError(RuntimeError):
    """The file is not this shard's store of a format this release reads."""


class ShardStore:
    """The store of one shard replica. Every method runs on the node's event loop thread."""

    def __init__(self, path: str, shard: int, *, fresh: bool) -> None:
        """Open (or create) the store at `path`. `fresh`: the replica starts from nothing (no
        Raft journal or snapshot of it here), so whatever an earlier replica of the same shard
        left in the file is deleted first."""
        self.path = path
        self.shard = shard
        if fresh:
            delete_store_files(path)
        self._attach()

    def _attach(self) -> None:
        """Open the file, read the state it holds, and start the open transaction."""
        self._closed = False
        self._db = self._open()
        self.log_index, self.state = self._load()
        self._db.execute("BEGIN")
        self.state.archive = SqliteArchive(self._db)

    def _open(self) -> sqlite3.Connection:
        existed = os.path.exists(self.path)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if not existed:
            db.execute(f"PRAGMA page_size={int(limits.PAGE_BYTES)}")  # before WAL fixes it
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA cache_size=-{int(limits.PAGE_CACHE_KIB)}")
        page_bytes = int(db.execute("PRAGMA page_size").fetchone()[0])
        db.execute(f"PRAGMA wal_autocheckpoint={max(1, limits.WAL_AUTOCHECKPOINT_BYTES // page_bytes)}")
        if not existed:
            db.execute("BEGIN")
            for statement in (_META, open_run_rows.TABLE, *SCHEMA):
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES (0, ?, ?, 0, ?)",
                       (STORE_FORMAT, self.shard,
                        open_run_rows.open_part_without_runs(ShardState.empty(self.shard))))
            db.execute("COMMIT")
            fsync_directory(os.path.dirname(self.path) or ".")
        return db

    def _load(self) -> tuple[int, ShardState]:
        row = self._db.execute("SELECT format, shard_id, log_index, open_part FROM meta").fetchone()
        if row is not None and 1 <= row[0] < STORE_FORMAT and row[1] == self.shard:
            log.info("%s: upgrading store format %d to %d", self.path, row[0], STORE_FORMAT)
            upgrade(self._db, row[0], STORE_FORMAT)
            return self._load()
        if row is None or row[0] != STORE_FORMAT or row[1] != self.shard:
            raise StoreError(f"{self.path}: not a format-{STORE_FORMAT} store of shard {self.shard}")
        state = open_part_from_bytes(row[3])
        assert state.shard_id == self.shard, (state.shard_id, self.shard)
        self._next_seq = open_run_rows.read_into(self._db, state)
        return int(row[2]), state

    @property
    def archive(self) -> SqliteArchive:
        archive = self.state.archive
        assert isinstance(archive, SqliteArchive)
        return archive

    # -- transactions --------------------------------------------------------------------------

    def commit(self, state: ShardState, log_index: int, *, durable: bool) -> None:
        """Make the file hold `state` as of `log_index` (and sync it if `durable`)."""
        assert log_index >= self.log_index, (log_index, self.log_index)
        assert state.archive is self.state.archive, "a state of another store"
        self.state = state
        self.archive.flush()
        self._next_seq = open_run_rows.write_touched(self._db, state, self._next_seq)
        assert isinstance(state.executions, OpenRunCache), type(state.executions)
        state.executions.make_room()  # every run is written now: any may leave the cache
        self._db.execute("UPDATE meta SET log_index = ?, open_part = ? WHERE id = 0",
                         (log_index, open_run_rows.open_part_without_runs(state)))
        self._db.execute("COMMIT")
        self.log_index = log_index
        if durable:
            _fsync_file(self.path + "-wal")
        self._db.execute("BEGIN")

    def image(self) -> bytes:
        """A consistent copy of the whole file as of the last commit (call `commit` first)."""
        copy = sqlite3.connect(":memory:")
        try:
            # The backup reads committed pages only (through the WAL): the open transaction's
            # changes are not in it, and the meta row it copies names exactly its index.
            self._db.backup(copy)
            return copy.serialize()
        finally:
            copy.close()

    def install(self, image: bytes) -> None:
        """Replace the file with `image` (another replica's `image()`), then load it."""
        self._db.execute("ROLLBACK")
        self._db.close()
        delete_store_files(self.path)
        tmp = self.path + ".incoming"
        with open(tmp, "wb") as f:
            f.write(image)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_directory(os.path.dirname(self.path) or ".")
        self._attach()

    def replace(self, state: ShardState, log_index: int) -> None:
        """Make the store hold `state` (a pure state with the reference archive, restored from a
        full snapshot of an older release) as of `log_index`, durably."""
        old = state.archive
        assert isinstance(old, MemoryArchive), type(old)
        archive = SqliteArchive(self._db)
        archive.load(*old.contents(), old.spilled_contents())
        state.archive = archive
        self._db.execute("DELETE FROM open_runs")
        runs = state.executions
        state.touched_runs = dict.fromkeys(runs)  # every run, in opening order
        cache = open_run_cache.attach(state, self._db, ())
        for run_id, execution in runs.items():
            cache[run_id] = execution
        self.state = state
        self.log_index = 0
        self.commit(state, log_index, durable=True)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the file (what was not committed is dropped); closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        try:
            self._db.execute("ROLLBACK")
        finally:
            self._db.close()


def delete_store_files(path: str) -> None:
    for name in (path, path + "-wal", path + "-shm", path + "-journal", path + ".incoming"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

