"""The node's Raft host: drives every group from the asyncio loop and owns the WAL round.

Theory of operation. One `RaftHost` per node process holds the shared WAL, the peer network and
the groups (one per shard replica on this node). Three things move it:
- a tick loop calls `doTick(0)` on every group each `TICK_PERIOD_S` (elections, heartbeats,
  commit advancement, applying committed entries, draining proposals);
- events (a proposal, an incoming message) ask for an extra tick of that group on the next loop
  iteration, so a commit does not wait for the timer;
- the WAL round loop: take the WAL bytes written so far, the Raft messages queued so far and the
  `after_durable` callbacks registered so far; write and fdatasync the bytes in the node's WAL
  thread (sync_thread.py); only then send the messages and run the callbacks. Rounds never
  overlap, so a message or an answer never leaves before every WAL record written before it is
  on disk (sync-before-send).

Groups and peers come and go at run time (replica moves): `add_group(..., learner=True)`,
`remove_group`, `add_peer`, `remove_peer`. A removed group is forgotten in two steps, so that no
crash leaves a journal without the snapshot it was compacted against: a WAL record that drops
the group first, then, once that record is durable, its snapshot files. A snapshot file with
no journal records at startup is a leftover of the second step and is deleted then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from raftflow.observability.json_logs import shard_fields
from raftflow.raftlog import limits
from raftflow.raftlog.group import RaftGroup, snapshot_files, snapshot_path
from raftflow.raftlog.interface import LogConsumer, ShardId
from raftflow.raftlog.network import PeerNetwork, PeerTls
from raftflow.raftlog.observer import LogObserver, NoLogObserver
from raftflow.raftlog.sync_thread import SyncThread
from raftflow.raftlog.wal import NodeWal, fsync_directory

log = logging.getLogger(__name__)

_SNAPSHOT_FILE = re.compile(r"shard-(-?\d+)\.snapshot(\.1)?(\.tmp)?")


class GroupRemovalPendingError(Exception):
    """`add_group` of a shard whose removal is not durable yet: await `remove_group` first."""

    def __init__(self, shard: ShardId) -> None:
        super().__init__(f"group {shard} is still being removed from this node")
        self.shard = shard


class HostStats:
    """Counters read by /metrics (plain ints; the host is single-threaded)."""

    __slots__ = ("wal_rounds", "wal_bytes", "messages_sent", "leader_changes")

    def __init__(self) -> None:
        self.wal_rounds = 0
        self.wal_bytes = 0
        self.messages_sent = 0
        self.leader_changes = 0


class RaftHost:
    def __init__(self, *, node_id: str, data_dir: str, listen: tuple[str, int],
                 peers: dict[str, tuple[str, int]], secret: bytes,
                 on_fatal: Callable[[BaseException], None] | None = None,
                 tls: PeerTls | None = None, observer: LogObserver | None = None) -> None:
        self.node_id = node_id
        self.observer: LogObserver = observer or NoLogObserver()
        self._on_fatal = on_fatal
        self._data_dir = data_dir
        self.wal = NodeWal(os.path.join(data_dir, "raft"))
        self._snapshot_dir = os.path.join(data_dir, "snapshots")
        self._delete_orphan_snapshots()
        self.network = PeerNetwork(node_id=node_id, listen=listen, peers=peers, secret=secret,
                                   on_frame=self._on_frame, on_peer=self._on_peer, tls=tls)
        self.groups: dict[int, RaftGroup] = {}
        self.stats = HostStats()
        self._outbox: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._tick_requested: set[int] = set()
        self._tick_scheduled = False
        self._round_wanted = asyncio.Event()
        self._sync_thread = SyncThread(name=f"wal-sync-{node_id}")
        self._tasks: list[asyncio.Task[None]] = []
        self._removing: set[int] = set()  # groups dropped whose snapshot files still exist
        self.failed: BaseException | None = None

    async def start(self) -> None:
        await self.network.start()
        loop = asyncio.get_running_loop()
        self._sync_thread.start(loop)
        self._tasks = [loop.create_task(self._tick_loop()), loop.create_task(self._round_loop())]
        for task in self._tasks:
            task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The tick and round loops run for the host's whole life: one that ends with an error
        leaves a node that answers HTTP but never ticks, writes its WAL or sends (found by the
        chaos harness: a replica that silently fell behind for good). Fail-stop instead."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        log.critical("a raft host loop of node %s failed; stopping the node", self.node_id,
                     exc_info=error)
        self.failed = error
        if self._on_fatal is not None:
            self._on_fatal(error)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                continue  # already reported as fatal by _loop_ended
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.network.stop()
        for group in self.groups.values():
            group.destroy()
        self._sync_thread.stop()  # a round's write still running finishes first
        self.wal.close()

    def add_group(self, shard: ShardId, members: list[str], consumer: LogConsumer, *,
                  learner: bool = False) -> RaftGroup:
        """Run this node's replica of group `shard`.

        `members` are the group's voters. With `learner=True` this node is not among them: the
        replica follows the leader without voting or campaigning until `set_campaigning(True)`,
        once the leader has added it (`add_member`); the voters must `set_learners` it first.
        """
        assert shard not in self.groups, shard
        if shard in self._removing:
            raise GroupRemovalPendingError(shard)
        group = RaftGroup(host=self, shard=shard, node_id=self.node_id, members=members,
                          directory=self._snapshot_dir, consumer=consumer, learner=learner)
        self.groups[shard] = group
        return group

    def remove_group(self, shard: ShardId) -> asyncio.Future[None]:
        """Stop and forget this node's replica of group `shard`, journal and snapshot.

        At once: nothing ticks or delivers to it, and its queued messages are dropped. The
        returned future resolves once it is forgotten durably (a restart does not rebuild it
        from the WAL and its snapshot files are deleted); only then may `add_group` run the
        same shard again, empty. Call it only after the group's leader stopped counting this
        node (`remove_member` committed), or for a learner that was never promoted. A group
        recovered from the WAL at startup but not added again can be removed the same way.
        """
        group = self.groups.pop(shard, None)
        assert group is not None or shard in self.wal.recovered, f"no group {shard} here"
        if group is not None:
            group.destroy()
        discard = group.discard_consumer_files if group is not None else (lambda: None)
        self.wal.drop_group(shard)
        self._tick_requested.discard(shard)
        for peer, frames in self._outbox.items():
            self._outbox[peer] = [frame for frame in frames if frame[0] != shard]
        self._removing.add(shard)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def delete_snapshot() -> None:
            # The DROP record is durable: no restart can see a journal without this snapshot.
            self._removing.discard(shard)
            _delete_files(snapshot_files(snapshot_path(self._snapshot_dir, shard)))
            discard()  # the consumer's own files (a shard store) go with the snapshot
            fsync_directory(self._snapshot_dir)
            if not done.done():
                done.set_result(None)

        self.after_durable(delete_snapshot)
        return done

    def add_peer(self, node_id: str, host: str, port: int) -> None:
        """Know (or re-address) a peer: dial it, and accept its connections. Idempotent."""
        self.network.add_peer(node_id, (host, port))

    def remove_peer(self, node_id: str) -> None:
        """Forget a peer: its connections close and it is refused from now on. Groups see it
        down; remove it from groups first, or they lose that replica's votes."""
        self.network.remove_peer(node_id)

    def peer_is_up(self, peer: str) -> bool:
        return self.network.is_up(peer)

    def _delete_orphan_snapshots(self) -> None:
        """Delete snapshot files of groups the WAL holds nothing of (see the module docstring).

        Only a removal leaves them: a live group's snapshot is always followed by its
        compaction record. One whose journal never became durable is safe to lose too: this
        node sent nothing that depended on it (sync-before-send)."""
        if not os.path.isdir(self._snapshot_dir):
            return
        orphans = []
        for name in os.listdir(self._snapshot_dir):
            match = _SNAPSHOT_FILE.fullmatch(name)
            if match is not None and int(match.group(1)) not in self.wal.recovered:
                orphans.append(os.path.join(self._snapshot_dir, name))
        if orphans:
            log.info("node %s: deleting snapshots of removed groups: %s", self.node_id, orphans)
            _delete_files(orphans)
            fsync_directory(self._snapshot_dir)

    # -- GroupHost (group_host.py): called by groups -----------------------------------------------

    def enqueue(self, peer: str, group: int, message: dict[str, Any]) -> None:
        self._outbox.setdefault(peer, []).append((group, message))
        self._round_wanted.set()

    def after_durable(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)
        self._round_wanted.set()

    def request_tick(self, shard: ShardId) -> None:
        self._tick_requested.add(shard)
        if not self._tick_scheduled:
            self._tick_scheduled = True
            asyncio.get_running_loop().call_soon(self._tick_requested_groups)

    def note_leader_change(self, shard: ShardId) -> None:
        self.stats.leader_changes += 1

    def note_snapshot(self, shard: ShardId, duration_s: float) -> None:
        self.observer.observe_snapshot(shard, duration_s)

    # -- network callbacks ---------------------------------------------------------------------

    def _on_frame(self, peer: str, shard: int, message: dict[str, Any]) -> None:
        group = self.groups.get(shard)
        if group is None:
            return
        group.transport.deliver(peer, message)
        if self.wal.has_pending():
            self._round_wanted.set()
        self.request_tick(group.shard)

    def _on_peer(self, peer: str, up: bool) -> None:
        for group in self.groups.values():
            group.transport.peer_changed(peer, up)

    # -- loops ---------------------------------------------------------------------------------

    def _tick_requested_groups(self) -> None:
        self._tick_scheduled = False
        shards, self._tick_requested = self._tick_requested, set()
        for shard in shards:
            group = self.groups.get(shard)
            if group is not None:
                self._tick(group)
        self._after_ticks()

    def _tick(self, group: RaftGroup) -> None:
        """Tick one group; a failure while applying is fatal for the whole node (fail-stop).

        An exception out of apply leaves the entry half-applied and pysyncobj would apply it
        again on the next tick: the replica must stop and be rebuilt from snapshot + log.
        """
        try:
            group.tick()
        except Exception as error:
            log.critical("shard %s failed on node %s; stopping the node", group.shard,
                         self.node_id, exc_info=True, extra=shard_fields(group.shard))
            self.failed = error
            self.groups.clear()  # nothing ticks or applies any more
            if self._on_fatal is not None:
                self._on_fatal(error)

    def _after_ticks(self) -> None:
        if self.wal.has_pending() or self._outbox or self._callbacks:
            self._round_wanted.set()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(limits.TICK_PERIOD_S)
            for group in list(self.groups.values()):
                self._tick(group)
            self._after_ticks()

    async def _round_loop(self) -> None:
        while True:
            await self._round_wanted.wait()
            self._round_wanted.clear()
            for group in self.groups.values():
                group.flush_commit_index()
            outbox, self._outbox = self._outbox, {}
            callbacks, self._callbacks = self._callbacks, []
            # After a fail-stop the groups are gone: a checkpoint would erase their journals.
            if self.wal.size_bytes > limits.WAL_CHECKPOINT_BYTES and self.failed is None:
                self.wal.take_pending()  # the journals already hold these records
                records = [r for g in self.groups.values() for r in g.journal.checkpoint_records()]
                # Groups recovered at startup and not opened again (yet, or ever: the node may
                # no longer run them) keep their records: only remove_group forgets a group.
                records += [r for shard, recovered in self.wal.recovered.items()
                            for r in recovered.checkpoint_records(shard)]
                started_s = time.perf_counter()
                await self._sync_thread.run(partial(self.wal.checkpoint, records))
                self.observer.observe_wal_checkpoint(time.perf_counter() - started_s)
            elif self.wal.has_pending():
                data = self.wal.take_pending()
                # Timed as the round waits for it (thread hop included): that is the delay
                # every message and answer of the round sees.
                started_s = time.perf_counter()
                await self._sync_thread.run(partial(self.wal.write_and_sync, data))
                self.observer.observe_wal_sync(time.perf_counter() - started_s, len(data))
                self.stats.wal_bytes += len(data)
            self.stats.wal_rounds += 1
            for peer, frames in outbox.items():
                self.network.send_batch(peer, frames)
                self.stats.messages_sent += len(frames)
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("after_durable callback failed")
                    raise


def _delete_files(paths: Iterable[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
