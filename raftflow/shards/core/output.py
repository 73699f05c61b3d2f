"""`Output`: what applying one command produced, and the caller's duties (etcd's `Ready`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from raftflow.protocol.effects import ArmTimer, Effect
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Result

if TYPE_CHECKING:
    from raftflow.shards.core.runs import Execution
    from raftflow.shards.core.writes import Changes


@dataclass(frozen=True, slots=True)
class Output:
    """What applying one command produced.

    result:  answer for the proposer (only the proposing node delivers it).
    events:  history events appended by this command, all runs, in order (metrics, tests).
    effects: orders for the leader's shell, in order; followers drop them. They are hints: a
             new leader rebuilds them from state with `pending_effects(state)`. An `ArmTimer`
             (at most one, last) gives the earliest timer this command armed.
    """

    result: Result
    events: tuple[HistoryEvent, ...] = ()
    effects: tuple[Effect, ...] = ()
    # Internal to the core: runs `apply` spills before it returns (writes.Changes.grown).
    grown: tuple[Execution, ...] = ()

    @staticmethod
    def of(result: Result, changes: Changes) -> Output:
        effects = list(changes.effects)
        if changes.armed_at_ms is not None:
            effects.append(ArmTimer(fire_at_ms=changes.armed_at_ms))
        return Output(result=result, events=tuple(changes.events), effects=tuple(effects),
                      grown=tuple(changes.grown) if changes.grown else ())
