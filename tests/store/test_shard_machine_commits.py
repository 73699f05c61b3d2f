"""Goal: a store-backed shard replica commits its store every COMMIT_EVERY_ENTRIES applied
entries and on every snapshot, so a restart (the file reopened) resumes from the last commit
and Raft replays only the entries after it; a snapshot names exactly the applied index.

Method: a ShardMachine over a real ShardStore applies Barrier entries one log index at a time;
the file is reopened by a second ShardStore (what a restart does) at chosen points.
"""

from __future__ import annotations

from pathlib import Path

from raftflow.protocol.commands import Barrier
from raftflow.shards.actor import ShardMachine
from raftflow.shards.store import store_snapshot
from raftflow.shards.store.limits import COMMIT_EVERY_ENTRIES
from raftflow.shards.store.shard_store import STORE_FORMAT, ShardStore


def _apply(machine: ShardMachine, first: int, last: int) -> None:
    for index in range(first, last + 1):
        machine.apply(Barrier(now_ms=index, leader_node="n1", term=1))
        machine.entry_applied(index)


def _reopened_index(path: Path) -> int:
    store = ShardStore(str(path), 3, fresh=False)
    try:
        return store.log_index
    finally:
        store.close()


def test_the_store_commits_every_n_entries_and_on_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "shard-3.db"
    machine = ShardMachine(3, ShardStore(str(path), 3, fresh=True))
    _apply(machine, 1, COMMIT_EVERY_ENTRIES - 1)
    assert _reopened_index(path) == 0  # nothing committed yet: a restart replays it all
    _apply(machine, COMMIT_EVERY_ENTRIES, COMMIT_EVERY_ENTRIES + 7)
    assert _reopened_index(path) == COMMIT_EVERY_ENTRIES
    manifest = store_snapshot.decode(machine.take_snapshot())
    assert manifest == store_snapshot.Manifest(store_format=STORE_FORMAT,
                                               log_index=COMMIT_EVERY_ENTRIES + 7)
    assert _reopened_index(path) == COMMIT_EVERY_ENTRIES + 7
    assert machine.stored_through_index == COMMIT_EVERY_ENTRIES + 7

    restarted = ShardMachine(3, ShardStore(str(path), 3, fresh=False))
    assert restarted.stored_through_index == COMMIT_EVERY_ENTRIES + 7
    assert restarted.applied_index == machine.applied_index  # the open part came back too


def test_closing_commits_what_was_applied_and_folds_the_wal(tmp_path: Path) -> None:
    """A node that stops in order closes its replicas: the restart replays nothing already
    applied and SQLite recovers no WAL (the clean close checkpoints and removes it)."""
    path = tmp_path / "shard-3.db"
    machine = ShardMachine(3, ShardStore(str(path), 3, fresh=True))
    _apply(machine, 1, 10)  # far below COMMIT_EVERY_ENTRIES: nothing committed yet
    assert _reopened_index(path) == 0
    machine.close()
    machine.close()  # a second close (a replica discarded before the node stops) is harmless
    assert not (tmp_path / "shard-3.db-wal").exists()
    restarted = ShardMachine(3, ShardStore(str(path), 3, fresh=False))
    assert restarted.stored_through_index == 10
    assert restarted.applied_index == machine.applied_index
