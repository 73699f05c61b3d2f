"""The node's Raft host: drives every group from the asyncio loop and owns the WAL round.

Theory of operation. One `RaftHost` per node process holds the shared WAL, the peer network and
the groups (one per shard replica on this node). Three things move it:
- a tick loop calls `doTick(0)` on every group each `TICK_PERIOD_S` (elections, heartbeats,
  commit advancement, applying committed entries, draining proposals);
- events (a proposal, an incoming message) ask for an extra tick of that group on the next loop
  iteration, so a commit does not wait for the timer;
- the WAL round loop: take the WAL bytes written so far, the Raft messages queued so far and the
  `after_durable` callbacks registered so far; write and fdatasync the bytes in a worker thread;
  only then send the messages and run the callbacks. Rounds never overlap, so a message or an
  answer never leaves before every WAL record written before it is on disk (sync-before-send).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from raftflow.raftlog import limits
from raftflow.raftlog.group import RaftGroup
from raftflow.raftlog.interface import LogConsumer, ShardId
from raftflow.raftlog.network import PeerNetwork
from raftflow.raftlog.wal import NodeWal

log = logging.getLogger(__name__)


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
                 on_fatal: Callable[[BaseException], None] | None = None) -> None:
        self.node_id = node_id
        self._on_fatal = on_fatal
        self._data_dir = data_dir
        self.wal = NodeWal(os.path.join(data_dir, "raft"))
        self.network = PeerNetwork(node_id=node_id, listen=listen, peers=peers, secret=secret,
                                   on_frame=self._on_frame, on_peer=self._on_peer)
        self.groups: dict[int, RaftGroup] = {}
        self.stats = HostStats()
        self._outbox: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._tick_requested: set[int] = set()
        self._tick_scheduled = False
        self._round_wanted = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-sync")
        self._tasks: list[asyncio.Task[None]] = []
        self.failed: BaseException | None = None

    async def start(self) -> None:
        await self.network.start()
        loop = asyncio.get_running_loop()
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
        self._executor.shutdown(wait=True)
        self.wal.close()

    def add_group(self, shard: ShardId, members: list[str], consumer: LogConsumer) -> RaftGroup:
        assert shard not in self.groups
        group = RaftGroup(host=self, shard=shard, node_id=self.node_id, members=members,
                          directory=os.path.join(self._data_dir, "snapshots"), consumer=consumer)
        self.groups[shard] = group
        return group

    def peer_is_up(self, peer: str) -> bool:
        return self.network.is_up(peer)

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
                         self.node_id, exc_info=True)
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
        loop = asyncio.get_running_loop()
        while True:
            await self._round_wanted.wait()
            self._round_wanted.clear()
            for group in self.groups.values():
                group.flush_commit_index()
            outbox, self._outbox = self._outbox, {}
            callbacks, self._callbacks = self._callbacks, []
            if self.wal.size_bytes > limits.WAL_CHECKPOINT_BYTES:
                self.wal.take_pending()  # the journals already hold these records
                records = [r for g in self.groups.values() for r in g.journal.checkpoint_records()]
                await loop.run_in_executor(self._executor, self.wal.checkpoint, records)
            elif self.wal.has_pending():
                data = self.wal.take_pending()
                await loop.run_in_executor(self._executor, self.wal.write_and_sync, data)
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
