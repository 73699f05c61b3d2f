"""The node's write-ahead log: one append-only file shared by every Raft group on the node.

Theory of operation. pysyncobj keeps a group's log, term, vote and commit index in a `Journal`
and never fsyncs it (DESIGN §8). We give every group a `GroupJournal` (journal.py) that keeps its
entries in memory and describes every change as a record appended to this shared file. Records
accumulate in `pending` on the event loop thread; the driver takes them in rounds, writes them
with one `os.write` and makes them durable with one `os.fdatasync`, and only then lets the Raft
messages and client answers of that round leave the node (sync-before-send group commit). So
whatever a peer or a client was told is on disk here first (I1).

File format: a sequence of frames `u32 length | u32 crc32 | msgpack record`. Recovery reads
frames until the first torn or corrupt one (a crash mid-write), cuts the file there and replays
the records into per-group `RecoveredGroup`s. When the file grows past a threshold the driver
rewrites it from the in-memory journals (a checkpoint) with write-tmp, fsync, rename, fsync-dir.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

import msgpack

_FRAME_HEADER = struct.Struct("<II")


class RecordKind(IntEnum):
    APPEND = 1  # group, idx, term, data
    TRUNCATE_FROM = 2  # group, idx: drop entries with index >= idx
    COMPACT_TO = 3  # group, idx: drop entries with index < idx
    CLEAR = 4  # group
    TERM = 5  # group, term, voted_for
    COMMIT = 6  # group, commit_index
    DROP = 7  # group: the replica was removed from this node; forget every earlier record


Entry = tuple[bytes, int, int]  # (data, index, term): pysyncobj's entry shape


@dataclass(slots=True)
class RecoveredGroup:
    """A group's journal as rebuilt from the file."""

    entries: list[Entry] = field(default_factory=list)
    term: int = 0
    voted_for: str | None = None
    commit_index: int = 0

    def apply_record(self, record: list[object]) -> None:
        kind = record[0]
        if kind == RecordKind.APPEND:
            data, idx, term = record[2], record[3], record[4]
            assert isinstance(data, bytes) and isinstance(idx, int) and isinstance(term, int)
            assert not self.entries or idx == self.entries[-1][1] + 1, (idx, self.entries[-1][1])
            self.entries.append((data, idx, term))
        elif kind == RecordKind.TRUNCATE_FROM:
            idx = record[2]
            assert isinstance(idx, int)
            self.entries = [e for e in self.entries if e[1] < idx]
        elif kind == RecordKind.COMPACT_TO:
            idx = record[2]
            assert isinstance(idx, int)
            self.entries = [e for e in self.entries if e[1] >= idx]
        elif kind == RecordKind.CLEAR:
            self.entries = []
        elif kind == RecordKind.TERM:
            term, voted_for = record[2], record[3]
            assert isinstance(term, int) and (voted_for is None or isinstance(voted_for, str))
            assert term >= self.term, (term, self.term)  # terms never go back (Raft §5.1)
            self.term, self.voted_for = term, voted_for
        elif kind == RecordKind.COMMIT:
            commit = record[2]
            assert isinstance(commit, int)
            self.commit_index = commit
        else:
            raise AssertionError(f"unknown WAL record kind {kind!r}")

    def checkpoint_records(self, group: int) -> list[list[object]]:
        """Records that rebuild this group from nothing (for a WAL checkpoint)."""
        records: list[list[object]] = [
            [RecordKind.CLEAR, group],
            [RecordKind.TERM, group, self.term, self.voted_for],
            [RecordKind.COMMIT, group, self.commit_index],
        ]
        records.extend([RecordKind.APPEND, group, *e] for e in self.entries)
        return records


def encode_record(record: list[object]) -> bytes:
    body: bytes = msgpack.packb(record, use_bin_type=True)
    return _FRAME_HEADER.pack(len(body), zlib.crc32(body)) + body


def read_records(path: str) -> tuple[list[list[object]], int]:
    """Return the intact records of the file and the byte length they cover."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        return [], 0
    records: list[list[object]] = []
    offset = 0
    while offset + _FRAME_HEADER.size <= len(blob):
        length, crc = _FRAME_HEADER.unpack_from(blob, offset)
        start = offset + _FRAME_HEADER.size
        body = blob[start : start + length]
        if len(body) < length or zlib.crc32(body) != crc:
            break  # torn tail of a crash mid-write: everything before it was synced whole
        records.append(msgpack.unpackb(body, raw=False))
        offset = start + length
    return records, offset


def fsync_directory(path: str) -> None:
    """Make a rename or a new file in `path` durable (rename alone is not, on ext4)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NodeWal:
    """The shared write-ahead log of one node. Not thread-safe: writes happen on the loop
    thread, and only `write_and_sync` (given bytes taken with `take_pending`) runs elsewhere."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._path = os.path.join(directory, "raft.wal")
        os.makedirs(directory, exist_ok=True)
        records, valid_bytes = read_records(self._path)
        self.recovered: dict[int, RecoveredGroup] = {}
        for record in records:
            group = record[1]
            assert isinstance(group, int)
            if record[0] == RecordKind.DROP:
                # A later group of the same id starts empty: no entries, term 0, no vote. Safe
                # because the replica was removed from the group's configuration first.
                self.recovered.pop(group, None)
                continue
            self.recovered.setdefault(group, RecoveredGroup()).apply_record(record)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, valid_bytes)  # drop a torn tail so new frames follow good ones
        os.lseek(self._fd, valid_bytes, os.SEEK_SET)
        os.fsync(self._fd)
        fsync_directory(directory)
        self._size_bytes = valid_bytes
        self._pending = bytearray()

    @property
    def size_bytes(self) -> int:
        return self._size_bytes + len(self._pending)

    def has_pending(self) -> bool:
        return bool(self._pending)

    def append(self, record: list[object]) -> None:
        self._pending += encode_record(record)

    def drop_group(self, group: int) -> None:
        """Forget every record of `group` (recovered or written since): recovery skips them,
        and a later journal of the same group starts empty. Durable after the next round."""
        self.recovered.pop(group, None)
        self.append([RecordKind.DROP, group])

    def take_pending(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data

    def write_and_sync(self, data: bytes) -> None:
        """Write and fdatasync; safe to run in a worker thread (the GIL is released)."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self._size_bytes += len(data)

    def checkpoint(self, records: list[list[object]]) -> None:
        """Replace the file by `records` (the complete current state), atomically and durably.

        The caller builds `records` from the in-memory journals on the loop thread at the moment
        it discards the pending bytes (which those journals already reflect); records appended
        after that moment stay pending and follow the checkpoint in the new file.
        """
        tmp = self._path + ".tmp"
        body = b"".join(encode_record(r) for r in records)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        fsync_directory(self._directory)
        os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)
        self._size_bytes = len(body)

    def close(self) -> None:
        os.close(self._fd)
