"""The three candidate shard stores behind one set of workload operations, for store_choice.py.

Each store offers what a shard replica needs of its on-disk state: write a flush of closed
workflows in one transaction (lazy sync, or durable), request-id lookups, run and history
reads, the visibility count and list page, expiry-ordered deletion, and the ops side: settle
(flush WAL or memtable), a consistent copy of the live store, compaction, close. SQLite uses
SQL indexes; LMDB and RocksDB share one key layout whose indexes are keys written in the same
batch (`kv_puts`, `kv_deletes`). lmdb and rocksdict are imported lazily: they are NOT project
dependencies. Nothing in `raftflow/` imports this module.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import msgspec

EVENTS_PER_RUN = 17
PAGE_RUNS = 100
NAMESPACE = "default"
LMDB_MAP_SIZE_BYTES = 16 << 30  # address space only; the file grows with use
BE64 = struct.Struct(">Q")
ENCODE, DECODE = msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode
RequestKey = tuple[str, str, str, str]  # kind, namespace, workflow_id, request_id
PageRow = tuple[str, bytes, str, str, int, int]  # workflow_id, run_id, type, status, start, close
Copies = dict[str, tuple[float, Path]]  # checkpoint method -> (seconds, copy)


@dataclass(frozen=True, slots=True)
class Workflow:
    """One closed workflow as a shard writes it at close. run_id: 16 raw bytes everywhere."""

    run_id: bytes
    workflow_id: str
    workflow_type: str
    status: str
    start_time_ms: int
    close_time_ms: int
    delete_at_ms: int
    state: bytes
    events: tuple[bytes, ...]
    requests: tuple[RequestKey, ...]
    request_value: bytes


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id BLOB PRIMARY KEY, namespace TEXT, workflow_id TEXT,
  workflow_type TEXT, status TEXT, start_time_ms INT, close_time_ms INT, task_queue TEXT,
  delete_at_ms INT, state BLOB);
CREATE INDEX IF NOT EXISTS runs_type_status ON runs(namespace, workflow_type, status);
CREATE INDEX IF NOT EXISTS runs_start ON runs(namespace, start_time_ms, run_id);
CREATE INDEX IF NOT EXISTS runs_delete_at ON runs(delete_at_ms);
CREATE TABLE IF NOT EXISTS events (run_id BLOB, event_id INT, data BLOB,
  PRIMARY KEY (run_id, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS histories (run_id BLOB PRIMARY KEY, data BLOB);
CREATE TABLE IF NOT EXISTS requests (kind TEXT, namespace TEXT, workflow_id TEXT,
  request_id TEXT, result BLOB, expires_at_ms INT,
  PRIMARY KEY (kind, namespace, workflow_id, request_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_expiry ON requests(expires_at_ms);"""
SQLITE_LIST = """SELECT workflow_id, run_id, workflow_type, status, start_time_ms, close_time_ms
FROM runs WHERE namespace = ? AND (start_time_ms, run_id) < (?, ?)
ORDER BY start_time_ms DESC, run_id DESC LIMIT ?"""


class SqliteStore:
    def __init__(self, path: Path, layout: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path, self._per_event = path, layout == "events"
        self._db = sqlite3.connect(path / "shard.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # the WAL is fsynced at checkpoints only
        self._db.executescript(SQLITE_SCHEMA)

    def write(self, batch: Sequence[Workflow], *, durable: bool) -> None:
        db = self._db
        # In WAL mode FULL fsyncs the WAL at this commit, making every earlier commit durable.
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        db.execute("BEGIN")
        db.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)", [
            (w.run_id, NAMESPACE, w.workflow_id, w.workflow_type, w.status, w.start_time_ms,
             w.close_time_ms, "orders", w.delete_at_ms, w.state) for w in batch])
        if self._per_event:
            db.executemany("INSERT INTO events VALUES (?,?,?)", [
                (w.run_id, n, e) for w in batch for n, e in enumerate(w.events, 1)])
        else:
            db.executemany("INSERT INTO histories VALUES (?,?)",
                           [(w.run_id, ENCODE(w.events)) for w in batch])
        db.executemany("INSERT INTO requests VALUES (?,?,?,?,?,?)", [
            (*r, w.request_value, w.delete_at_ms) for w in batch for r in w.requests])
        db.execute("COMMIT")

    def lookup_request(self, key: RequestKey) -> bytes | None:
        row = self._db.execute("SELECT result FROM requests WHERE kind=? AND namespace=? AND "
                               "workflow_id=? AND request_id=?", key).fetchone()
        return None if row is None else bytes(row[0])

    def read_run(self, run_id: bytes) -> bytes | None:
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else bytes(row[-1])

    def history_page(self, run_id: bytes, first: int, last: int) -> list[bytes]:
        if self._per_event:
            return [r[0] for r in self._db.execute(
                "SELECT data FROM events WHERE run_id=? AND event_id BETWEEN ? AND ? "
                "ORDER BY event_id", (run_id, first, last))]
        row = self._db.execute("SELECT data FROM histories WHERE run_id=?", (run_id,)).fetchone()
        return list(DECODE(row[0])[first - 1:last])

    def count(self, workflow_type: str, status: str) -> int:
        return int(self._db.execute(
            "SELECT count(*) FROM runs WHERE namespace=? AND workflow_type=? AND status=?",
            (NAMESPACE, workflow_type, status)).fetchone()[0])

    def list_page(self, token: bytes | None) -> tuple[list[PageRow], bytes | None]:
        start_ms, run_id = (2**62, b"\xff" * 17) if token is None else (
            BE64.unpack(token[:8])[0], token[8:])
        rows = self._db.execute(SQLITE_LIST, (NAMESPACE, start_ms, run_id, PAGE_RUNS)).fetchall()
        return rows, BE64.pack(rows[-1][4]) + rows[-1][1] if len(rows) == PAGE_RUNS else None

    def earliest_delete_at(self) -> int | None:
        value = self._db.execute("SELECT min(delete_at_ms) FROM runs").fetchone()[0]
        return None if value is None else int(value)

    def delete_expired(self, runs_max: int) -> int:
        db = self._db
        db.execute("BEGIN")
        rows = db.execute("SELECT run_id, delete_at_ms FROM runs ORDER BY delete_at_ms LIMIT ?",
                          (runs_max,)).fetchall()
        ids = [(r[0],) for r in rows]
        db.executemany(f"DELETE FROM {'events' if self._per_event else 'histories'} "
                       "WHERE run_id=?", ids)
        db.executemany("DELETE FROM runs WHERE run_id=?", ids)
        if rows:  # request ids expire with their run (expires_at_ms = delete_at_ms)
            db.execute("DELETE FROM requests WHERE expires_at_ms <= ?", (rows[-1][1],))
        db.execute("COMMIT")
        return len(rows)

    def settle(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def checkpoint(self, dest: Path) -> Copies:
        for method in ("backup", "serialize"):
            (dest / method).mkdir(parents=True)

        def backup() -> None:  # online backup API: one read transaction; writers go on (WAL)
            with closing(sqlite3.connect(dest / "backup" / "shard.db")) as target:
                self._db.backup(target)

        def serialize() -> None:  # the whole database as bytes, read in one transaction
            (dest / "serialize" / "shard.db").write_bytes(self._db.serialize())

        return {"backup": (seconds(backup), dest / "backup"),
                "serialize": (seconds(serialize), dest / "serialize")}

    def compact(self, scratch: Path) -> Path:
        self._db.execute("VACUUM")  # deleted pages stay on the freelist until this
        self.settle()
        return self._path

    def close(self) -> None:
        self._db.close()


# Key layout of the sorted key-value stores (all in one keyspace, one write batch per flush):
# r<run>: run record | h<run>[<be32 event>]: history | q<kind,ns,wf,req>: be64 expiry + answer
# e<be64 delete_at><run>: the request keys expiring with the run (expiry index)
# t<ns,type,status,run>: visibility count index | s<ns,be64 ~start,run>: list by start DESC
def request_key(key: RequestKey) -> bytes:
    return b"q" + "\0".join(key).encode()


def type_status_key(workflow_type: str, status: str) -> bytes:
    return f"t{NAMESPACE}\0{workflow_type}\0{status}\0".encode()


def by_start_key(start_ms: int) -> bytes:
    return f"s{NAMESPACE}\0".encode() + BE64.pack(2**63 - start_ms)


def prefix_end(prefix: bytes) -> bytes:
    assert prefix[-1] < 0xFF
    return prefix[:-1] + bytes([prefix[-1] + 1])


def kv_puts(w: Workflow, per_event: bool) -> Iterator[tuple[bytes, bytes]]:
    yield b"r" + w.run_id, ENCODE((w.workflow_id, w.workflow_type, w.status, w.start_time_ms,
                                   w.close_time_ms, "orders", w.delete_at_ms, w.state))
    if per_event:
        yield from ((b"h" + w.run_id + n.to_bytes(4, "big"), e) for n, e in enumerate(w.events, 1))
    else:
        yield b"h" + w.run_id, ENCODE(w.events)
    requests = [request_key(r) for r in w.requests]
    yield from ((k, BE64.pack(w.delete_at_ms) + w.request_value) for k in requests)
    yield b"e" + BE64.pack(w.delete_at_ms) + w.run_id, ENCODE(requests)
    yield type_status_key(w.workflow_type, w.status) + w.run_id, b""
    yield by_start_key(w.start_time_ms) + w.run_id, b""


def kv_deletes(expiry_key: bytes, expiry_value: bytes, record: bytes,
               per_event: bool) -> list[bytes]:
    run_id = expiry_key[9:]
    _, wtype, status, start_ms, *_ = DECODE(record)
    history = [b"h" + run_id + n.to_bytes(4, "big") for n in range(1, EVENTS_PER_RUN + 1)]
    return [b"r" + run_id, expiry_key, type_status_key(wtype, status) + run_id,
            by_start_key(start_ms) + run_id, *(history if per_event else [b"h" + run_id]),
            *DECODE(expiry_value)]


class KvStore:
    """The shard workload over a sorted key-value backend, with hand-kept indexes."""

    def __init__(self, backend: LmdbBackend | RocksBackend, layout: str) -> None:
        self._kv, self._per_event = backend, layout == "events"
        self.settle, self.checkpoint = backend.settle, backend.checkpoint
        self.compact, self.close = backend.compact, backend.close

    def write(self, batch: Sequence[Workflow], *, durable: bool) -> None:
        self._kv.apply([kv for w in batch for kv in kv_puts(w, self._per_event)], [], durable)

    def lookup_request(self, key: RequestKey) -> bytes | None:
        value = self._kv.get(request_key(key))
        return None if value is None else value[8:]

    def read_run(self, run_id: bytes) -> bytes | None:
        record = self._kv.get(b"r" + run_id)
        return None if record is None else bytes(DECODE(record)[-1])

    def history_page(self, run_id: bytes, first: int, last: int) -> list[bytes]:
        if self._per_event:
            start, end = (b"h" + run_id + n.to_bytes(4, "big") for n in (first, last + 1))
            return [v for _, v in self._kv.scan(start, end, last)]
        return list(DECODE(self._kv.get(b"h" + run_id) or b"\x90")[first - 1:last])

    def count(self, workflow_type: str, status: str) -> int:
        prefix = type_status_key(workflow_type, status)
        return len(self._kv.scan(prefix, prefix_end(prefix), 2**31))

    def list_page(self, token: bytes | None) -> tuple[list[PageRow], bytes | None]:
        prefix = by_start_key(0)[:-8]
        start = prefix if token is None else token + b"\0"  # the first key after the token
        keys = [k for k, _ in self._kv.scan(start, prefix_end(prefix), PAGE_RUNS)]
        rows: list[PageRow] = []
        for run_id in (key[-16:] for key in keys):  # the index holds keys: fetch the columns
            wid, wtype, status, start_ms, close_ms, *_ = DECODE(self._kv.get(b"r" + run_id) or b"")
            rows.append((wid, run_id, wtype, status, start_ms, close_ms))
        return rows, keys[-1] if len(keys) == PAGE_RUNS else None

    def earliest_delete_at(self) -> int | None:
        first = self._kv.scan(b"e", b"f", 1)
        return BE64.unpack(first[0][0][1:9])[0] if first else None

    def delete_expired(self, runs_max: int) -> int:
        expired = self._kv.scan(b"e", b"f", runs_max)
        self._kv.apply([], [k for key, value in expired for k in kv_deletes(
            key, value, self._kv.get(b"r" + key[9:]) or b"", self._per_event)], False)
        return len(expired)


class LmdbBackend:
    def __init__(self, path: Path) -> None:
        import lmdb  # not a project dependency: pip install lmdb

        path.mkdir(parents=True, exist_ok=True)
        # sync=False: commits are not fsynced (lazy sync); env.sync(True) makes them durable.
        self._env = lmdb.open(str(path), map_size=LMDB_MAP_SIZE_BYTES, sync=False,
                              metasync=False, readahead=False)

    def apply(self, puts: list[tuple[bytes, bytes]], deletes: list[bytes], durable: bool) -> None:
        with self._env.begin(write=True) as txn:
            txn.cursor().putmulti(puts)
            for key in deletes:
                txn.delete(key)
        if durable:
            self._env.sync(True)

    def get(self, key: bytes) -> bytes | None:
        with self._env.begin() as txn:
            return txn.get(key)  # type: ignore[no-any-return]

    def scan(self, start: bytes, end: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = []
        with self._env.begin() as txn, txn.cursor() as cursor:
            for key, value in (cursor if cursor.set_range(start) else ()):
                if key >= end or len(found) == limit:
                    break
                found.append((key, value))
        return found

    def settle(self) -> None:
        self._env.sync(True)

    def checkpoint(self, dest: Path) -> Copies:
        copies: Copies = {}
        for compact in (False, True):  # one read transaction: consistent; writers go on
            target = dest / f"compact-{compact}"
            target.mkdir(parents=True)
            started = time.perf_counter()
            self._env.copy(str(target), compact=compact)
            copies[f"env.copy(compact={compact})"] = (time.perf_counter() - started, target)
        return copies

    def compact(self, scratch: Path) -> Path:
        scratch.mkdir(parents=True)  # freed pages are reused, but the file never shrinks
        self._env.copy(str(scratch), compact=True)
        return scratch

    def close(self) -> None:
        self._env.close()


class RocksBackend:
    def __init__(self, path: Path) -> None:
        import rocksdict  # not a project dependency: pip install rocksdict

        self._rocks = rocksdict
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(10, False)  # 90 % of request-id lookups are misses
        options.set_block_based_table_factory(table)
        self._db = rocksdict.Rdict(str(path), options)  # WAL on, not synced per write

    def apply(self, puts: list[tuple[bytes, bytes]], deletes: list[bytes], durable: bool) -> None:
        batch = self._rocks.WriteBatch(raw_mode=True)
        for key, value in puts:
            batch.put(key, value)
        for key in deletes:
            batch.delete(key)
        self._db.write(batch)
        if durable:
            self._db.flush_wal(True)

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)  # type: ignore[no-any-return]

    def scan(self, start: bytes, end: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = []
        cursor = self._db.iter()
        cursor.seek(start)
        while cursor.valid() and len(found) < limit and (key := cursor.key()) < end:
            found.append((key, cursor.value()))
            cursor.next()
        return found

    def settle(self) -> None:
        self._db.flush(True)  # memtable to SST files, so the WAL no longer holds the data

    def checkpoint(self, dest: Path) -> Copies:
        dest.mkdir(parents=True)  # hard links to the SST files plus a copy of WAL and manifest
        checkpoint = self._rocks.Checkpoint(self._db)
        return {"Checkpoint": (seconds(lambda: checkpoint.create_checkpoint(str(dest / "c"))),
                               dest / "c")}

    def compact(self, scratch: Path) -> Path:
        self._db.compact_range(None, None)  # drops tombstones and the values they hide
        return Path(self._db.path())

    def close(self) -> None:
        self._db.close()


def open_store(name: str, layout: str, path: Path) -> SqliteStore | KvStore:
    if name == "sqlite":
        return SqliteStore(path, layout)
    return KvStore(LmdbBackend(path) if name == "lmdb" else RocksBackend(path), layout)
