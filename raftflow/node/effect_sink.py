"""The node's receiver of its leaders' orders (`actors.leader_effects.EffectSink`): every order
goes to the task matcher (dispatches, closes) and to the message courier (outbox messages);
each acts on its own kinds and ignores the rest, and both hear of every leadership change."""

from __future__ import annotations

from collections.abc import Sequence

from raftflow.actors.leader_effects import EffectSink
from raftflow.protocol.effects import Effect


class NodeEffects:
    def __init__(self, *sinks: EffectSink) -> None:
        assert sinks
        self._sinks = sinks

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        for sink in self._sinks:
            sink.on_effects(shard, effects)

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        for sink in self._sinks:
            sink.on_leadership(shard, is_leader)
