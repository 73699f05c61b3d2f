"""Goal: the courier keeps the promises its docstring makes: messages of one (source, target)
pair go out in queue order, a delivery in doubt is sent again with the same messages, an
outcome is acknowledged to the source, and losing the source's leadership drops its queues.

Method: a fake directory of two local actors (source shard 0, target shard 1, both led here)
that record the commands they are given; the target can be made to fail its first delivery.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from raftflow.actors.errors import ProposalTimeoutError
from raftflow.api import message_courier
from raftflow.api.message_courier import MessageCourier
from raftflow.cluster.ring import shard_for
from raftflow.protocol.effects import MessageQueued
from raftflow.protocol.messages import (
    AckMessages,
    DeliverMessages,
    MessageOutcome,
    OutboxEntry,
    SignalMessage,
)
from raftflow.protocol.results import Ack, MessagesDelivered

SHARDS = 2


def _target_id(shard: int) -> str:
    """A workflow id that lives on `shard`."""
    return next(f"w{i}" for i in range(1000) if shard_for("default", f"w{i}", SHARDS) == shard)


class _State:
    def __init__(self) -> None:
        self.outbox: dict[str, OutboxEntry] = {}


class _Actor:
    def __init__(self, *, fail_first: int = 0) -> None:
        self.state = _State()
        self.commands: list[Any] = []
        self.leader = True
        self._fail = fail_first

    def is_leader(self) -> bool:
        return self.leader

    def is_ready_leader(self) -> bool:
        return self.leader

    async def execute(self, command: Any) -> Any:
        self.commands.append(command)
        if self._fail:
            self._fail -= 1
            raise ProposalTimeoutError(1, "in doubt")
        if isinstance(command, DeliverMessages):
            return MessagesDelivered(outcomes=tuple(MessageOutcome(message_id=e.message_id)
                                                    for e in command.entries))
        assert isinstance(command, AckMessages)
        for outcome in command.outcomes:
            del self.state.outbox[outcome.message_id]
        return Ack()


class _Directory:
    node_id = "n1"
    shard_count = SHARDS

    def __init__(self, source: _Actor, target: _Actor) -> None:
        self.actors = {0: source, 1: target}

    def actor(self, shard: int) -> _Actor | None:
        return self.actors.get(shard)

    def leader_of(self, shard: int) -> str | None:
        return "n1"

    def now_ms(self) -> int:
        return 1

    def http_address(self, node_id: str) -> str | None:
        return None


def _queue(source: _Actor, n: int, workflow_id: str) -> list[MessageQueued]:
    effects = []
    for i in range(1, n + 1):
        entry = OutboxEntry(message_id=f"r/{i}", created_ms=1, source_namespace="default",
                            source_workflow_id="s", source_run_id="r", initiated_event_id=i,
                            body=SignalMessage(namespace="default", workflow_id=workflow_id,
                                               signal_name="s"))
        source.state.outbox[entry.message_id] = entry
        effects.append(MessageQueued(message_id=entry.message_id, namespace="default",
                                     workflow_id=workflow_id))
    return effects


def _run(body: Any) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await body(session)

    asyncio.run(main())


def test_one_pair_goes_out_in_queue_order_and_a_batch_in_doubt_is_sent_again(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(message_courier, "RETRY_PAUSE_S", 0.01)
    monkeypatch.setattr(message_courier, "MESSAGES_PER_DELIVERY_MAX", 3)
    source, target = _Actor(), _Actor(fail_first=1)

    async def body(session: aiohttp.ClientSession) -> None:
        courier = MessageCourier(_Directory(source, target), session)  # type: ignore[arg-type]
        effects = _queue(source, 7, _target_id(1))
        courier.on_effects(0, effects)
        courier.on_effects(0, effects)  # a repeated order adds nothing
        for _ in range(200):
            if not source.state.outbox:
                break
            await asyncio.sleep(0.01)
        assert not source.state.outbox and courier.pending() == 0

    _run(body)
    sent = [[e.message_id for e in c.entries] for c in target.commands]
    # The first batch failed in doubt and went again, whole; then the rest, in order.
    assert sent == [["r/1", "r/2", "r/3"], ["r/1", "r/2", "r/3"], ["r/4", "r/5", "r/6"],
                    ["r/7"]]
    acked = [o.message_id for c in source.commands for o in c.outcomes]
    assert acked == [f"r/{i}" for i in range(1, 8)]


def test_losing_the_source_leadership_drops_its_queues() -> None:
    source, target = _Actor(), _Actor(fail_first=10**6)  # every delivery stays in doubt

    async def body(session: aiohttp.ClientSession) -> None:
        courier = MessageCourier(_Directory(source, target), session)  # type: ignore[arg-type]
        courier.on_effects(0, _queue(source, 2, _target_id(1)))
        await asyncio.sleep(0.05)
        assert courier.pending() == 2
        courier.on_leadership(0, False)
        assert courier.pending() == 0
        sends = len(target.commands)
        await asyncio.sleep(0.3)
        assert len(target.commands) == sends  # its sender stopped
        courier.close()

    _run(body)
    assert len(source.state.outbox) == 2  # the next leader re-sends them from state
