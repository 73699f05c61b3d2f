"""The courier: carries the outbox messages of the shards this node leads to their targets.

Theory of operation (protocol/messages.py tells the whole trip). The core queues a message in
its shard's outbox and emits `MessageQueued`; a new leader gets one per outbox entry when it
becomes ready (`pending_effects`). So the courier holds only hints: for each (source shard,
target shard) pair a queue of message ids, and at most one sender task that drains it in
batches of MESSAGES_PER_DELIVERY_MAX, in queue order. A send reads each entry from the source
replica's state (an entry already acknowledged is skipped), proposes `DeliverMessages` to the
target shard's leader (here, or through the internal route MESSAGES_PATH on its node) and then
`AckMessages` to the source shard with the outcomes.

Every failure is "in doubt" and retried with the same batch after a backoff: the target
applies a message id at most once and the source acts on the first outcome only, so a re-send
is always safe. Losing the source shard's leadership drops its queues and stops its senders:
the next leader, here or elsewhere, re-sends from its outbox. Pairs never wait on each other, so
one unreachable target holds back only its own messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

import aiohttp
import msgspec

from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.api.routing import FORWARDED_HEADER, ShardDirectory
from raftflow.cluster.ring import shard_for
from raftflow.protocol.effects import Effect, MessageQueued
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.http_answers import DeliverMessagesAnswer
from raftflow.protocol.http_bodies import DeliverMessagesRequest
from raftflow.protocol.messages import AckMessages, DeliverMessages, MessageOutcome, OutboxEntry
from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.results import MessagesDelivered, Rejected
from raftflow.shards.core.limits import (
    MESSAGES_PER_DELIVERY_MAX,
    OUTBOX_MESSAGES_PER_SHARD_MAX,
    PAYLOAD_BYTES_MAX,
)
from raftflow.shards.core.outbox_queue import entry_bytes

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/v1/shards/{shard}/messages"
# Pause before retrying a batch whose delivery or acknowledgement is in doubt, doubling up to
# the cap: an election takes about a second (DESIGN §8), a node restart a few.
RETRY_PAUSE_S = 0.1
RETRY_PAUSE_MAX_S = 5.0
# One attempt's bound (a commit on a healthy leader takes milliseconds).
ATTEMPT_TIMEOUT_S = 5.0

# Payload bytes one batch carries (a batch always takes its first message, up to
# PAYLOAD_BYTES_MAX): the JSON body of the internal route holds them base64-encoded (4/3), and
# must stay within DELIVER_BODY_BYTES_MAX, itself within the gateway's body bound.
BATCH_PAYLOAD_BYTES_MAX = 1024 * 1024
DELIVER_BODY_BYTES_MAX = 7 * 512 * 1024

assert RETRY_PAUSE_S < RETRY_PAUSE_MAX_S and ATTEMPT_TIMEOUT_S > 0
assert max(BATCH_PAYLOAD_BYTES_MAX, PAYLOAD_BYTES_MAX) * 4 // 3 + 256 * 1024 < DELIVER_BODY_BYTES_MAX


class _InDoubt(Exception):
    """This attempt settled nothing: no leader known, not leader any more, timed out."""


class MessageCourier:
    """Per node; every method runs on the node's event loop."""

    def __init__(self, directory: ShardDirectory, session: aiohttp.ClientSession) -> None:
        self._directory = directory
        self._session = session
        self._queues: dict[tuple[int, int], deque[str]] = {}
        self._queued: dict[int, set[str]] = {}  # per source shard: ids in its queues
        self._senders: dict[tuple[int, int], asyncio.Task[None]] = {}
        self.delivered = 0  # messages whose outcome this node acknowledged (tests, metrics)

    # -- EffectSink ------------------------------------------------------------------------------

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, MessageQueued):
                self._enqueue(shard, effect)

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        if is_leader:
            return  # becoming ready hands over the whole outbox as effects
        for pair in [p for p in self._queues if p[0] == shard]:
            del self._queues[pair]
            sender = self._senders.pop(pair, None)
            if sender is not None:
                sender.cancel()
        self._queued.pop(shard, None)

    def close(self) -> None:
        for sender in self._senders.values():
            sender.cancel()
        self._senders.clear()
        self._queues.clear()
        self._queued.clear()

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    # -- sending ---------------------------------------------------------------------------------

    def _enqueue(self, shard: int, effect: MessageQueued) -> None:
        queued = self._queued.setdefault(shard, set())
        if effect.message_id in queued:
            return  # already on its way (a leader's effects may repeat an entry)
        assert len(queued) < OUTBOX_MESSAGES_PER_SHARD_MAX + MESSAGES_PER_DELIVERY_MAX
        target = shard_for(effect.namespace, effect.workflow_id, self._directory.shard_count)
        pair = (shard, target)
        self._queues.setdefault(pair, deque()).append(effect.message_id)
        queued.add(effect.message_id)
        if pair not in self._senders:
            task = asyncio.get_running_loop().create_task(self._drain(pair))
            self._senders[pair] = task
            task.add_done_callback(lambda t, p=pair: self._sender_ended(p, t))  # type: ignore[misc]

    def _sender_ended(self, pair: tuple[int, int], task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("courier %s stopped", pair, exc_info=task.exception())

    async def _drain(self, pair: tuple[int, int]) -> None:
        try:
            await self._drain_queue(pair)
        finally:
            # Synchronously, before anything else runs: an id queued from now on must find no
            # sender and start one (a done callback would run a loop turn too late).
            if self._senders.get(pair) is asyncio.current_task():
                del self._senders[pair]

    async def _drain_queue(self, pair: tuple[int, int]) -> None:
        source, target = pair
        queue = self._queues.get(pair)
        pause_s = RETRY_PAUSE_S
        while queue:
            batch = [queue[i] for i in range(min(len(queue), MESSAGES_PER_DELIVERY_MAX))]
            try:
                batch = await self._send(source, target, batch)
            except NotLeaderError:
                self.on_leadership(source, False)  # the next leader re-sends
                return
            except _InDoubt as doubt:
                log.debug("courier %s: batch in doubt (%s), retrying in %.1f s", pair, doubt,
                          pause_s)
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, RETRY_PAUSE_MAX_S)
                continue
            except Exception:  # a bug: keep the messages and try again, loudly
                log.exception("courier %s: sending failed; retrying in %.1f s", pair, pause_s)
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, RETRY_PAUSE_MAX_S)
                continue
            pause_s = RETRY_PAUSE_S
            for _ in batch:
                self._queued.get(source, set()).discard(queue.popleft())
        if self._queues.get(pair) is queue:
            del self._queues[pair]

    async def _send(self, source: int, target: int, batch: list[str]) -> list[str]:
        """Deliver and acknowledge a prefix of `batch` (its payload bound); returns it."""
        actor = self._directory.actor(source)
        if actor is None or not actor.is_ready_leader():
            raise NotLeaderError(source, "the courier sends for a ready leader only")
        batch, entries = _batch(actor.state.outbox, batch)
        if not entries:
            return batch  # all acknowledged meanwhile
        outcomes = await self._deliver(target, entries)
        try:
            result = await asyncio.wait_for(actor.execute(AckMessages(
                now_ms=self._directory.now_ms(), outcomes=outcomes)), ATTEMPT_TIMEOUT_S)
        except (TimeoutError, ProposalTimeoutError) as error:
            raise _InDoubt(f"ack: {error!r}") from error
        except RaftflowError as error:  # overloaded: the entries stay, ask again
            raise _InDoubt(f"ack refused: {error}") from error
        assert not isinstance(result, Rejected), result
        self.delivered += len(outcomes)
        return batch

    async def _deliver(self, target: int, entries: tuple[OutboxEntry, ...],
                       ) -> tuple[MessageOutcome, ...]:
        leader = self._directory.leader_of(target)
        if leader is None:
            raise _InDoubt(f"no known leader of shard {target}")
        if leader == self._directory.node_id:
            return await self._deliver_here(target, entries)
        return await self._deliver_there(leader, target, entries)

    async def _deliver_here(self, target: int, entries: tuple[OutboxEntry, ...],
                            ) -> tuple[MessageOutcome, ...]:
        actor = self._directory.actor(target)
        if actor is None or not actor.is_leader():
            raise _InDoubt(f"shard {target} is not led here any more")
        try:
            result = await asyncio.wait_for(actor.execute(DeliverMessages(
                now_ms=self._directory.now_ms(), entries=entries)), ATTEMPT_TIMEOUT_S)
        except (TimeoutError, NotLeaderError, ProposalTimeoutError, RaftflowError) as error:
            raise _InDoubt(f"deliver here: {error!r}") from error
        assert isinstance(result, MessagesDelivered), result
        return result.outcomes

    async def _deliver_there(self, leader: str, target: int, entries: tuple[OutboxEntry, ...],
                             ) -> tuple[MessageOutcome, ...]:
        address = self._directory.http_address(leader)
        if address is None:
            raise _InDoubt(f"no address of {leader}")
        try:
            async with self._session.post(
                address + MESSAGES_PATH.format(shard=target),
                data=delivery_body(entries),
                headers={FORWARDED_HEADER: self._directory.node_id,
                         "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S),
            ) as answer:
                body = await answer.read()
                if answer.status != 200:  # 503 not_leader or overloaded, 504 timeout
                    raise _InDoubt(f"{leader} answered {answer.status}")
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _InDoubt(f"deliver on {leader}: {error!r}") from error
        try:
            outcomes = tuple(msgspec.json.decode(body, type=DeliverMessagesAnswer).outcomes)
        except msgspec.ValidationError as error:
            raise _InDoubt(f"bad answer from {leader}: {error}") from error
        if [o.message_id for o in outcomes] != [e.message_id for e in entries]:
            raise _InDoubt(f"{leader} answered for other messages")
        return outcomes


def _batch(outbox: dict[str, OutboxEntry], ids: list[str],
           ) -> tuple[list[str], tuple[OutboxEntry, ...]]:
    """The longest prefix of `ids` within BATCH_PAYLOAD_BYTES_MAX (at least one id), and the
    entries of those still in the outbox (the others were acknowledged meanwhile)."""
    taken: list[str] = []
    entries: list[OutboxEntry] = []
    size = 0
    for message_id in ids:
        entry = outbox.get(message_id)
        grown = size + (0 if entry is None else entry_bytes(entry.body))
        if taken and grown > BATCH_PAYLOAD_BYTES_MAX:
            break
        taken.append(message_id)
        size = grown
        if entry is not None:
            entries.append(entry)
    assert taken or not ids
    return taken, tuple(entries)


def delivery_body(entries: tuple[OutboxEntry, ...]) -> bytes:
    """The internal route's JSON body: Payload-typed fields (a failure's details) as their JSON
    value, as every HTTP body carries them; bytes fields (inputs, results) as base64."""
    return msgspec.json.encode(DeliverMessagesRequest(entries=entries), enc_hook=json_enc_hook)
