"""Sending a replica in need something other than the local snapshot file, and noticing receipt.

pysyncobj streams its snapshot file (`fullDumpFile`) in chunks to a follower whose next index
was compacted away. A consumer that keeps its state in its own store (the shard store) writes
only a small manifest into that file, which is useless to another node; it sends a copy of its
store instead. `TransferSerializer` is pysyncobj's `Serializer` with that one change: at the
start of each transmission it asks `transfer_body()` for the bytes to send (None: the file as it
is, pysyncobj's own path) and streams them from a private, already unlinked temp file, one
`logCompactionBatchSize` chunk per AppendEntries, first and last chunk flagged as pysyncobj's
receiver expects (the last chunk is empty). A new local snapshot restarts every transmission,
as pysyncobj does, so a follower never gets a copy older than the leader's log start.

On the receiving side it writes the chunks itself (pysyncobj's receiver renames the file into
place without an fsync and installs whatever arrives) and asks `accept(path)` before the copy
replaces the local snapshot. Raft §7: a follower whose log already holds the snapshot's last
entry (same index and term) keeps its log and state; installing would drop entries it has
acknowledged (pysyncobj clears the whole journal on install), and a leader that counted that
acknowledgement towards a commit could then lose a committed entry with its next crash. A
leader sends such a stale snapshot when its next index for the follower went back below its log
start (a rejected duplicate resets it). A refused copy is deleted and no reply is sent: the
leader has already moved that follower's next index past the snapshot, and the AppendEntries
that follow are answered as usual. An accepted one is fsynced, renamed into place and recorded
(`received`), so the group can rewrite that file into its local form once the consumer
restored it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import IO, Any, Protocol

import msgpack
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.serializer import Serializer

from raftflow.raftlog import limits
from raftflow.raftlog.wal import fsync_directory

Chunk = tuple[bytes, bool, bool]  # (data, is_first, is_last), pysyncobj's transmission chunk


class TransferSerializer(Serializer):  # type: ignore[misc]
    def __init__(self, *, file_name: str, chunk_bytes: int,
                 write: Callable[[str, Any], None], read: Callable[[str], Any],
                 transfer_body: Callable[[], bytes | None],
                 accept: Callable[[str], bool]) -> None:
        super().__init__(file_name, chunk_bytes, False, write, read, None)
        self._file_name = file_name
        self._directory = os.path.dirname(file_name) or "."
        self._chunk_bytes = chunk_bytes
        self._transfer_body = transfer_body
        self._accept = accept
        self._outgoing: dict[object, tuple[IO[bytes], list[int]]] = {}
        self._incoming: IO[bytes] | None = None
        self.incoming_path = file_name + ".1.tmp"  # pysyncobj's name: snapshot_files lists it
        self.received = False
        self.refused = 0  # stale snapshots kept out (tests read it)

    # pysyncobj's method names follow (camelCase, its spelling of "Transmisstion" included).

    def getTransmissionData(self, transmissionID: object) -> Chunk | None | bool:  # noqa: N802,N803
        outgoing = self._outgoing.get(transmissionID)
        if outgoing is None:
            body = self._transfer_body()
            if body is None:
                return super().getTransmissionData(transmissionID)  # type: ignore[no-any-return]
            outgoing = (self._spool(body), [0])
            self._outgoing[transmissionID] = outgoing
        stream, sent = outgoing
        data = stream.read(self._chunk_bytes)
        first, last = sent[0] == 0, not data
        sent[0] += len(data)
        if last:
            self._close(transmissionID)
        return data, first, last

    def cancelTransmisstion(self, transmissionID: object) -> None:  # noqa: N802,N803
        self._close(transmissionID)
        super().cancelTransmisstion(transmissionID)

    def checkSerializing(self) -> tuple[int, object]:  # noqa: N802
        state, current = super().checkSerializing()
        if state == SERIALIZER_STATE.SUCCESS:
            for transmission in list(self._outgoing):
                self._close(transmission)  # restart from the new snapshot
        return state, current

    def setTransmissionData(self, data: object) -> bool:  # noqa: N802
        """Store one received chunk; True once a complete snapshot replaced the local one."""
        if data is None:
            return False
        assert isinstance(data, (tuple, list)), type(data)  # a list once it crossed msgpack
        chunk: bytes = data[0]
        first: bool = data[1]
        last: bool = data[2]
        if first:
            self._drop_incoming()
            self._incoming = open(self.incoming_path, "wb")  # noqa: SIM115 (spans messages)
        elif self._incoming is None:
            return False  # the start of this transmission was lost: wait for a new one
        self._incoming.write(chunk)
        if not last:
            return False
        incoming, self._incoming = self._incoming, None
        incoming.flush()
        os.fsync(incoming.fileno())
        incoming.close()
        if not self._accept(self.incoming_path):
            os.unlink(self.incoming_path)
            self.refused += 1
            return False
        os.replace(self.incoming_path, self._file_name)
        fsync_directory(self._directory)
        self.received = True
        return True

    def _drop_incoming(self) -> None:
        if self._incoming is not None:
            self._incoming.close()
            self._incoming = None

    def _spool(self, body: bytes) -> IO[bytes]:
        stream = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115 (kept open, closed by _close)
        stream.write(body)
        stream.seek(0)
        return stream

    def _close(self, transmission: object) -> None:
        outgoing = self._outgoing.pop(transmission, None)
        if outgoing is not None:
            outgoing[0].close()


def snapshot_body(last_entry: Any, previous_entry: Any, cluster: list[str],
                  state: bytes) -> bytes:
    """A snapshot file: the log entries it ends with, the voters, and the consumer's state.
    `last` is written before `state` so it can be read without reading the state."""
    body = msgpack.packb({"v": 1, "last": list(last_entry), "previous": list(previous_entry),
                          "cluster": cluster, "state": state}, use_bin_type=True)
    assert isinstance(body, bytes)
    return body


def snapshot_last_entry(path: str) -> tuple[int, int]:
    """(index, term) of the last entry a snapshot file covers, read without its state."""
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=limits.SNAPSHOT_CHUNK_BYTES)
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "last":
                entry = unpacker.unpack()
                return int(entry[1]), int(entry[2])
            unpacker.skip()
    raise ValueError(f"{path}: a snapshot without its last entry")


class LogView(Protocol):
    """What the decision below reads of a follower's journal."""

    @property
    def last_index(self) -> int: ...

    def term_at(self, index: int) -> int | None: ...

    def __len__(self) -> int: ...


def snapshot_supersedes_log(path: str, journal: LogView) -> bool:
    """Install the received snapshot only if this replica's log does not already hold its last
    entry: it ends before it, or holds a different (uncommitted) entry at that index. An entry
    compacted here (no term) lies under this replica's own snapshot, which covers it."""
    index, term = snapshot_last_entry(path)
    if len(journal) == 0 or index > journal.last_index:
        return True
    present = journal.term_at(index)
    return present is not None and present != term
