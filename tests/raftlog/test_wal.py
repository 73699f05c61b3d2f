"""The node write-ahead log: recovery after a torn write, checkpoints, and sync-before-send.

Method: write records through `NodeWal` and `GroupJournal`, damage or reopen the file, and
compare what recovery rebuilds; for ordering, instrument a live 3-host cluster so every message
and every after_durable callback checks that the WAL bytes written before it were fsynced.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

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


def test_no_message_or_answer_leaves_before_its_wal_bytes_are_synced(tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=2)
        await cluster.start()
        violations: list[str] = []
        checked = [0]
        for host in cluster.hosts.values():
            synced = [host.wal.size_bytes]
            pending_marks: dict[int, int] = {}
            wal_write, enqueue, send_batch = host.wal.write_and_sync, host.enqueue, host.network.send_batch
            after = host.after_durable

            def write_and_sync(data: bytes, _w: Any = wal_write, _s: list[int] = synced,
                               _h: Any = host) -> None:
                _w(data)
                _s[0] = _h.wal._size_bytes

            def mark(_h: Any = host) -> int:
                return int(_h.wal.size_bytes)

            def enqueue_(peer: str, group: int, message: dict[str, Any], _e: Any = enqueue,
                         _m: dict[int, int] = pending_marks, _mark: Any = mark) -> None:
                _m[id(message)] = _mark()
                _e(peer, group, message)

            def send_batch_(peer: str, frames: list[Any], _b: Any = send_batch,
                            _m: dict[int, int] = pending_marks, _s: list[int] = synced) -> None:
                for _, message in frames:
                    checked[0] += 1
                    if _m.pop(id(message), 0) > _s[0]:
                        violations.append(f"sent before its WAL bytes were synced: {message}")
                _b(peer, frames)

            def after_durable(callback: Any, _a: Any = after, _s: list[int] = synced,
                              _mark: Any = mark) -> None:
                needed = _mark()

                def check() -> None:
                    if needed > _s[0]:
                        violations.append("after_durable ran before the WAL was synced")
                    callback()
                _a(check)

            host.wal.write_and_sync = write_and_sync  # type: ignore[method-assign]
            host.enqueue = enqueue_  # type: ignore[method-assign]
            host.network.send_batch = send_batch_  # type: ignore[method-assign]
            host.after_durable = after_durable  # type: ignore[method-assign]
        answered = [0]
        for g in range(2):
            leader = await cluster.wait_leader(g)
            for i in range(300):
                leader.groups[g].propose(b"%d" % i, violations.append)
                leader.groups[g].after_durable(lambda: answered.__setitem__(0, answered[0] + 1))
                if i % 10 == 0:
                    await asyncio.sleep(0)
        await cluster.wait_for(lambda: all(len(c.applied) >= 300 for c in cluster.consumers.values()))
        await cluster.stop()
        assert checked[0] > 100 and answered[0] == 600
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
