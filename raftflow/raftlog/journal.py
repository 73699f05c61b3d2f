"""A Raft group's journal for pysyncobj, kept in memory and made durable through the node WAL.

pysyncobj talks to its journal through a small duck-typed interface (add, clear, deleteEntriesFrom,
deleteEntriesTo, indexing and slicing, len, term/vote/commit getters and setters). We implement
it here so that every change is also a record of the node's shared write-ahead log (wal.py):
the in-memory list is what pysyncobj reads, the WAL is what survives a crash.

Positions vs indexes: pysyncobj passes list *positions* to deleteEntriesFrom/To; the WAL records
absolute Raft *indexes*, so a record means the same thing whatever was compacted before it.
"""

from __future__ import annotations

import os
from typing import overload

from raftflow.raftlog.wal import Entry, NodeWal, RecordKind, RecoveredGroup, fsync_directory


class GroupJournal:
    """pysyncobj `Journal` for one group. Every method runs on the node's event loop thread."""

    def __init__(self, wal: NodeWal, group: int, snapshot_path: str) -> None:
        self._wal = wal
        self._group = group
        self._snapshot_path = snapshot_path
        recovered = wal.recovered.pop(group, None) or RecoveredGroup()
        self._entries: list[Entry] = recovered.entries
        self._term = recovered.term
        self._voted_for = recovered.voted_for
        self._commit_index = recovered.commit_index
        self._synced_commit_index = recovered.commit_index
        if not self._entries:
            # pysyncobj starts every log with a no-op at index 1, term 0.
            self.add(b"\x01", 1, 0)  # _COMMAND_TYPE.NO_OP

    # -- read side (pysyncobj and the AppendEntries normaliser) --------------------------------

    @overload
    def __getitem__(self, item: int) -> Entry: ...

    @overload
    def __getitem__(self, item: slice) -> list[Entry]: ...

    def __getitem__(self, item: int | slice) -> Entry | list[Entry]:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def first_index(self) -> int:
        return self._entries[0][1]

    @property
    def last_index(self) -> int:
        return self._entries[-1][1]

    def term_at(self, index: int) -> int | None:
        """Term of the entry at `index`, or None if it is compacted away or beyond the end."""
        position = index - self._entries[0][1]
        if position < 0 or position >= len(self._entries):
            return None
        entry = self._entries[position]
        assert entry[1] == index, (entry[1], index)
        return entry[2]

    def getCurrentTerm(self) -> int:  # noqa: N802 (pysyncobj's interface)
        return self._term

    def getVotedForNodeId(self) -> str | None:  # noqa: N802
        return self._voted_for

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return self._commit_index

    # -- write side ----------------------------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        assert not self._entries or idx == self._entries[-1][1] + 1, (idx, self.last_index)
        assert not self._entries or term >= self._entries[-1][2], (term, self._entries[-1][2])
        self._entries.append((command, idx, term))
        self._wal.append([RecordKind.APPEND, self._group, command, idx, term])

    def clear(self) -> None:
        # Called when a snapshot replaces the log: the snapshot file must be durable before the
        # entries it replaces are forgotten, and pysyncobj renamed it without any fsync.
        self._sync_snapshot_file()
        self._entries = []
        self._wal.append([RecordKind.CLEAR, self._group])

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802
        if entryFrom >= len(self._entries):
            return
        index = self._entries[entryFrom][1]
        del self._entries[entryFrom:]
        self._wal.append([RecordKind.TRUNCATE_FROM, self._group, index])

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802
        if entryTo <= 0:
            return
        assert entryTo < len(self._entries), "compaction keeps at least the snapshot's entries"
        # Compaction follows a snapshot that pysyncobj renamed into place without fsync.
        self._sync_snapshot_file()
        index = self._entries[entryTo][1]
        del self._entries[:entryTo]
        self._wal.append([RecordKind.COMPACT_TO, self._group, index])

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:  # noqa: N802
        assert term >= self._term, (term, self._term)
        self._term, self._voted_for = term, votedForNodeId
        self._wal.append([RecordKind.TERM, self._group, term, votedForNodeId])

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802
        # Called on every AppendEntries: recorded lazily (see flush_commit_index), because the
        # commit index is only a restart hint; Raft re-learns it from the leader.
        self._commit_index = raftCommitIndex

    def flush_commit_index(self) -> None:
        """Record the commit index if it changed since the last record (once per WAL round)."""
        if self._commit_index != self._synced_commit_index:
            self._wal.append([RecordKind.COMMIT, self._group, self._commit_index])
            self._synced_commit_index = self._commit_index

    def checkpoint_records(self) -> list[list[object]]:
        """Records that rebuild this journal from nothing (for a WAL checkpoint)."""
        records = RecoveredGroup(entries=self._entries, term=self._term,
                                 voted_for=self._voted_for,
                                 commit_index=self._commit_index).checkpoint_records(self._group)
        self._synced_commit_index = self._commit_index
        return records

    def onOneSecondTimer(self) -> None:  # noqa: N802
        pass

    def flush(self) -> None:
        pass

    def _destroy(self) -> None:
        pass

    def _sync_snapshot_file(self) -> None:
        if os.path.exists(self._snapshot_path):
            fd = os.open(self._snapshot_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(os.path.dirname(self._snapshot_path) or ".")
