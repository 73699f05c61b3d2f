"""What an actor counts: plain counters for tests and status, hooks for the node's metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from raftflow.actors.state_machine import AppliedCommand
from raftflow.protocol.commands import Command


class ActorObserver(Protocol):
    """Metrics hooks (the node's Metrics satisfies this structurally)."""

    def record_commit(self, shard: int, batch_commands: int) -> None: ...

    def record_leader_change(self, shard: int) -> None: ...

    def record_timers_fired(self, shard: int, count: int) -> None: ...

    def record_applied(self, shard: int, commands: Sequence[Command],
                       outputs: Sequence[AppliedCommand]) -> None:
        """An entry this node (this incarnation) proposed applied here: its facts are counted
        once per cluster by counting them only here (every other replica applies it too)."""

    def record_timer_delay(self, shard: int, delay_s: float) -> None:
        """A FireTimers this leader proposed applied `delay_s` after its wake-up was due."""


class NoObserver:
    """For actors nobody watches (tests, tools)."""

    def record_commit(self, shard: int, batch_commands: int) -> None:
        pass

    def record_leader_change(self, shard: int) -> None:
        pass

    def record_timers_fired(self, shard: int, count: int) -> None:
        pass

    def record_applied(self, shard: int, commands: Sequence[Command],
                       outputs: Sequence[AppliedCommand]) -> None:
        pass

    def record_timer_delay(self, shard: int, delay_s: float) -> None:
        pass


class ActorStats:
    """Counters of one actor (plain ints: the actor runs on one event loop thread)."""

    __slots__ = ("proposals", "commands", "applied_entries", "timers_fired", "leader_changes")

    def __init__(self) -> None:
        self.proposals = 0
        self.commands = 0
        self.applied_entries = 0
        self.timers_fired = 0
        self.leader_changes = 0
