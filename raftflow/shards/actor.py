"""The shard actor: the actor runtime bound to one shard's pure core.

`ShardMachine` adapts the core (`apply`, `pending_effects`, timers, snapshots) to the runtime's
`StateMachine` seam; `ShardActor` is the runtime running it, which is all the node and the
gateway see. The runtime (mailbox, group commit, answers after sync, read barriers, leader-only
effects, durable-timer wake-ups) lives in `raftflow.actors` and knows nothing of shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from raftflow.actors.clock import WallClock
from raftflow.actors.leader_effects import EffectSink
from raftflow.actors.runtime import ActorRuntime
from raftflow.actors.stats import ActorObserver
from raftflow.protocol.commands import Command
from raftflow.protocol.effects import Effect
from raftflow.shards.core import snapshot
from raftflow.shards.core.apply import Output, apply, pending_effects
from raftflow.shards.core.state import ShardState
from raftflow.shards.store import limits as store_limits
from raftflow.shards.store import store_snapshot
from raftflow.shards.store.shard_store import STORE_FORMAT, ShardStore, delete_store_files

ShardActor: TypeAlias = ActorRuntime[ShardState]


class ShardMachine:
    """One shard replica's state under the core's pure functions (a `StateMachine`).

    Without a store, the state lives in memory and a snapshot is the whole of it. With a store
    (`raftflow.shards.store`), closed runs and request ids live in its file, the store commits
    every COMMIT_EVERY_ENTRIES applied entries, and a snapshot is a durable commit plus a
    manifest naming its index; a restart loads the file and replays only the log after it.
    """

    __slots__ = ("_last_index", "_shard", "_since_commit", "_state", "_store")

    def __init__(self, shard: int, store: ShardStore | None = None) -> None:
        self._shard = shard
        self._store = store
        self._state = ShardState.empty(shard) if store is None else store.state
        self._last_index = 0 if store is None else store.log_index
        self._since_commit = 0

    @property
    def state(self) -> ShardState:
        return self._state

    @property
    def applied_index(self) -> int:
        return self._state.applied_index

    @property
    def stored_through_index(self) -> int:
        return 0 if self._store is None else self._store.log_index

    def apply(self, command: Command) -> Output:
        return apply(self._state, command)

    def entry_applied(self, index: int) -> None:
        assert index > self._last_index, (index, self._last_index)
        self._last_index = index
        self._since_commit += 1
        if self._store is not None and self._since_commit >= store_limits.COMMIT_EVERY_ENTRIES:
            self._commit(durable=False)

    def pending_effects(self) -> Sequence[Effect]:
        return pending_effects(self._state)

    def earliest_timer_ms(self) -> int | None:
        return self._state.next_wakeup_ms()

    def take_snapshot(self) -> bytes:
        if self._store is None:
            return snapshot.to_bytes(self._state)
        self._commit(durable=True)
        return store_snapshot.encode(store_snapshot.Manifest(
            store_format=STORE_FORMAT, log_index=self._store.log_index))

    def transfer_snapshot(self) -> bytes | None:
        if self._store is None:
            return None
        self._commit(durable=False)
        return store_snapshot.encode(store_snapshot.Image(
            store_format=STORE_FORMAT, log_index=self._store.log_index,
            image=self._store.image()))

    def restore_snapshot(self, data: bytes, index: int) -> None:
        stored = store_snapshot.decode(data)
        if self._store is None:
            assert stored is None, "a store snapshot for a replica without a store"
            restored = snapshot.from_bytes(data)
        elif isinstance(stored, store_snapshot.Manifest):
            # Our own snapshot: the store was committed durably at (or after) its index.
            assert self._store.log_index >= stored.log_index, (
                self._shard, self._store.log_index, stored.log_index)
            restored = self._store.state
        elif isinstance(stored, store_snapshot.Image):
            self._store.install(stored.image)
            assert self._store.log_index == stored.log_index, self._store.log_index
            restored = self._store.state
        else:
            # A full snapshot (an older release's): load it into the store.
            restored = snapshot.from_bytes(data)
            self._store.replace(restored, index)
        assert restored.shard_id == self._shard, (restored.shard_id, self._shard)
        self._state = restored
        self._since_commit = 0
        self._last_index = index if self._store is None else self._store.log_index

    def discard(self) -> None:
        if self._store is not None:
            self._store.close()
            delete_store_files(self._store.path)

    def close(self) -> None:
        if self._store is not None and not self._store.closed:
            # Durable, and a clean close lets SQLite fold its WAL into the file: a restart
            # then neither replays these entries nor recovers a WAL.
            self._commit(durable=True)
            self._store.close()

    def _commit(self, *, durable: bool) -> None:
        assert self._store is not None
        self._store.commit(self._state, self._last_index, durable=durable)
        self._since_commit = 0


def new_shard_actor(*, shard: int, node_id: str, incarnation: int, sink: EffectSink,
                    clock: WallClock, observer: ActorObserver | None = None,
                    store: ShardStore | None = None) -> ShardActor:
    """An actor for this node's replica of `shard`: from its store's contents if given (else
    empty), then filled from the group's snapshot and log."""
    return ActorRuntime(shard=shard, machine=ShardMachine(shard, store), node_id=node_id,
                        incarnation=incarnation, sink=sink, clock=clock, observer=observer)
