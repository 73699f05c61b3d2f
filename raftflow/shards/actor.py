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

ShardActor: TypeAlias = ActorRuntime[ShardState]


class ShardMachine:
    """One shard replica's state under the core's pure functions (a `StateMachine`)."""

    __slots__ = ("_shard", "_state")

    def __init__(self, shard: int) -> None:
        self._shard = shard
        self._state = ShardState.empty(shard)

    @property
    def state(self) -> ShardState:
        return self._state

    @property
    def applied_index(self) -> int:
        return self._state.applied_index

    def apply(self, command: Command) -> Output:
        return apply(self._state, command)

    def pending_effects(self) -> Sequence[Effect]:
        return pending_effects(self._state)

    def earliest_timer_ms(self) -> int | None:
        earliest = self._state.earliest_timer()
        return None if earliest is None else earliest[0]

    def take_snapshot(self) -> bytes:
        return snapshot.to_bytes(self._state)

    def restore_snapshot(self, data: bytes) -> None:
        restored = snapshot.from_bytes(data)
        assert restored.shard_id == self._shard, (restored.shard_id, self._shard)
        self._state = restored


def new_shard_actor(*, shard: int, node_id: str, incarnation: int, sink: EffectSink,
                    clock: WallClock, observer: ActorObserver | None = None) -> ShardActor:
    """An actor for this node's replica of `shard`, starting from the empty state."""
    return ActorRuntime(shard=shard, machine=ShardMachine(shard), node_id=node_id,
                        incarnation=incarnation, sink=sink, clock=clock, observer=observer)
