"""The node write-ahead log: recovery after a torn write, checkpoints, and sync-before-send.

Method: write records through `NodeWal` and `GroupJournal`, damage or reopen the file, and
compare what recovery rebuilds; for ordering, instrument a live 3-host cluster so every message
and every after_durable callback checks that the WAL bytes written before it were fsynced.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from raftflow.raftlog.journal import GroupJournal
from raftflow.raftlog.wal import NodeWal
from tests.raftlog.harness import Cluster


def _journal(directory: str, group: int = 7) -> tuple[NodeWal, GroupJournal]:
    wal = NodeWal(directory)
    return wal, GroupJournal(wal, group, os.path.join(directory, "none.snapshot"))


def test_recovery_replays_appends_truncations_terms_and_commit(tmp_path: Any) -> None:
    wal, journal = _journal(str(tmp_path))
    for i in range(2, 10):
        journal.add(b"x%d" % i, i, 1)
    journal.setCurrentTerm(2, "n1")
    journal.deleteEntriesFrom(6)  # positions: drops indexes 7..9
    journal.add(b"y7", 7, 2)
    journal.setRaftCommitIndex(5)
    journal.flush_commit_index()
    wal.write_and_sync(wal.take_pending())
    wal.close()

    wal2, again = _journal(str(tmp_path))
    assert again[:] == journal[:]
    assert (again.getCurrentTerm(), again.getVotedForNodeId(), again.getRaftCommitIndex()) == (2, "n1", 5)
    wal2.close()


def test_torn_tail_is_cut_and_later_records_follow_good_ones(tmp_path: Any) -> None:
    wal, journal = _journal(str(tmp_path))
    journal.add(b"a", 2, 1)
    wal.write_and_sync(wal.take_pending())
    wal.close()
    path = os.path.join(str(tmp_path), "raft.wal")
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")  # a frame header promising more than was written
    wal2, again = _journal(str(tmp_path))
    assert [e[1] for e in again[:]] == [1, 2]
    again.add(b"b", 3, 1)
    wal2.write_and_sync(wal2.take_pending())
    wal2.close()
    wal3, third = _journal(str(tmp_path))
    assert [e[1] for e in third[:]] == [1, 2, 3]
    wal3.close()


def test_checkpoint_rewrites_the_file_from_the_journals(tmp_path: Any) -> None:
    wal, journal = _journal(str(tmp_path))
    for i in range(2, 200):
        journal.add(b"z" * 100, i, 1)
    journal.deleteEntriesTo(150)
    wal.write_and_sync(wal.take_pending())
    before = wal.size_bytes
    wal.take_pending()
    wal.checkpoint(journal.checkpoint_records())
    assert wal.size_bytes < before
    journal.add(b"after", 200, 1)
    wal.write_and_sync(wal.take_pending())
    wal.close()
    wal2, again = _journal(str(tmp_path))
    assert again[:] == journal[:]
    assert again.first_index == 151 and again.last_index == 200
    wal2.close()


class SyncWatch:
    """Tracks, for one host, how far its WAL is synced and where each record ended."""

    def __init__(self, host: Any, violations: list[str]) -> None:
        self.synced = host.wal.size_bytes
        self.entry_marks: dict[tuple[int, int], int] = {}  # (group, index) -> WAL end after it
        self.sent = 0
        message_marks: dict[int, int] = {}
        write_and_sync, enqueue, send_batch = (host.wal.write_and_sync, host.enqueue,
                                               host.network.send_batch)

        def write_and_sync_(data: bytes) -> None:
            write_and_sync(data)
            self.synced = host.wal._size_bytes

        def enqueue_(peer: str, group: int, message: dict[str, Any]) -> None:
            message_marks[id(message)] = host.wal.size_bytes
            enqueue(peer, group, message)

        def send_batch_(peer: str, frames: list[Any]) -> None:
            for _, message in frames:
                self.sent += 1
                if message_marks.pop(id(message), 0) > self.synced:
                    violations.append(f"sent before its WAL bytes were synced: {message}")
            send_batch(peer, frames)

        host.wal.write_and_sync = write_and_sync_
        host.enqueue = enqueue_
        host.network.send_batch = send_batch_
        for shard, group in host.groups.items():
            add = group.journal.add

            def add_(command: bytes, idx: int, term: int, _add: Any = add, _g: int = shard) -> None:
                _add(command, idx, term)
                self.entry_marks[(_g, idx)] = host.wal.size_bytes

            group.journal.add = add_


@pytest.mark.parametrize("size", [1, 3])
def test_no_message_or_answer_leaves_before_its_wal_bytes_are_synced(tmp_path: Any,
                                                                     size: int) -> None:
    """Messages leave a node only after the WAL bytes written before them are synced; an
    answer (after_durable at apply time) only once a majority has synced the entry."""
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=size, groups=2)
        await cluster.start()
        violations: list[str] = []
        watches = {n: SyncWatch(h, violations) for n, h in cluster.hosts.items()}
        answered = [0]
        for g in range(2):
            leader = await cluster.wait_leader(g)
            group = leader.groups[g]
            consumer = cluster.consumers[(leader.node_id, g)]
            apply_entry = consumer.apply_entry

            def apply_and_answer(index: int, data: bytes, _g: int = g, _a: Any = apply_entry,
                                 _group: Any = group) -> None:
                _a(index, data)

                def answer() -> None:
                    durable = sum(w.synced >= w.entry_marks.get((_g, index), 1 << 62)
                                  for w in watches.values())
                    if durable <= size // 2:
                        violations.append(f"answered entry {index} durable on {durable}/{size}")
                    answered[0] += 1
                _group.after_durable(answer)

            consumer.apply_entry = apply_and_answer  # type: ignore[method-assign]
            for i in range(300):
                group.propose(b"%d" % i, violations.append)
                if i % 10 == 0:
                    await asyncio.sleep(0)
        await cluster.wait_for(lambda: answered[0] >= 600)
        await cluster.stop()
        assert size == 1 or sum(w.sent for w in watches.values()) > 100
        assert violations == []

    asyncio.run(main())


def test_snapshot_file_and_directory_are_synced_before_entries_are_dropped(
        tmp_path: Any, monkeypatch: Any) -> None:
    # pysyncobj renames the snapshot into place without fsync; the journal must make file and
    # directory durable before compaction or a snapshot install forgets the entries it covers.
    from raftflow.raftlog import journal as journal_module

    snapshot = tmp_path / "shard-7.snapshot"
    snapshot.write_bytes(b"state")
    wal = NodeWal(str(tmp_path / "wal"))
    journal = GroupJournal(wal, 7, str(snapshot))
    for i in range(2, 10):
        journal.add(b"x", i, 1)
    calls: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(journal_module.os, "fsync",
                        lambda fd: (calls.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}"),
                                    real_fsync(fd))[1])
    monkeypatch.setattr(journal_module, "fsync_directory", lambda d: calls.append(f"dir {d}"))
    pending_before = len(wal.take_pending())
    journal.deleteEntriesTo(4)
    assert calls == [f"fsync {snapshot}", f"dir {tmp_path}"]
    assert wal.has_pending() and pending_before > 0  # the COMPACT record follows the syncs
    calls.clear()
    journal.clear()
    assert calls == [f"fsync {snapshot}", f"dir {tmp_path}"]
    wal.close()
