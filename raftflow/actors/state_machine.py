"""What the actor runtime runs: a pure, deterministic state machine over protocol commands.

The runtime owns every piece of IO (mailbox, proposals, answers, timers, leader effects); the
machine owns the state and changes it only in `apply`, one committed command at a time, the
same on every replica (DESIGN §4 I2). The shard core is bound to this seam in
`raftflow.shards.actor`; the runtime never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from raftflow.protocol.commands import Command
from raftflow.protocol.effects import Effect
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Result

S_co = TypeVar("S_co", covariant=True)


class AppliedCommand(Protocol):
    """What applying one command produced (the shard core's `Output`)."""

    @property
    def result(self) -> Result:
        """The answer for the caller that proposed the command."""

    @property
    def events(self) -> Sequence[HistoryEvent]:
        """Events the command appended to histories (counted for metrics)."""

    @property
    def effects(self) -> Sequence[Effect]:
        """Orders for the leader's shell; followers drop them (effects are hints)."""


class StateMachine(Protocol[S_co]):
    """One replica's state and the pure functions over it that the runtime calls."""

    @property
    def state(self) -> S_co:
        """The current state, for queries run behind a read barrier. Never mutated by callers."""

    @property
    def applied_index(self) -> int:
        """How many commands have been applied to this state; each `apply` adds exactly one."""

    @property
    def stored_through_index(self) -> int:
        """The log index up to which the machine's own store already holds every entry's
        effect (0 without a store). The runtime does not apply those entries again when Raft
        replays them after a restart or a snapshot install."""

    def apply(self, command: Command) -> AppliedCommand:
        """Apply one committed command. Raises only on a broken invariant (a bug)."""

    def entry_applied(self, index: int) -> None:
        """Every command of the log entry at `index` is applied (a store may commit here)."""

    def pending_effects(self) -> Sequence[Effect]:
        """Every order a new leader must hold, rebuilt from state alone (I4)."""

    def earliest_timer_ms(self) -> int | None:
        """When the earliest durable timer is due, if any."""

    def take_snapshot(self) -> bytes:
        """The state as of the last applied command (msgpack, never pickle); with a store, a
        manifest of a durable commit at that index."""

    def transfer_snapshot(self) -> bytes | None:
        """What a replica that needs a snapshot receives instead of `take_snapshot`'s bytes
        (with a store: a copy of it); None to send the local snapshot as it is."""

    def restore_snapshot(self, data: bytes, index: int) -> None:
        """Replace the state with one written by `take_snapshot` or `transfer_snapshot` on some
        replica, covering the log up to `index` (or further: see `stored_through_index`)."""

    def discard(self) -> None:
        """The replica is gone for good: delete whatever the machine keeps on disk."""

    def close(self) -> None:
        """The node stops and nothing is applied after this: leave what the machine keeps on
        disk complete (a store commits up to the last applied entry), so a restart replays
        nothing that was already applied."""
