"""The shard actor: runs one shard's pure core over its replicated log. One event loop, no locks.

Theory of operation.
- Writes: `execute(command)` puts the command in a bounded mailbox; a drain takes everything
  waiting as one `Proposal` (group commit) and proposes it. When the entry is committed and
  applied here, each command's result answers its caller, but only through `after_durable`: no
  answer leaves before the node's WAL is fsynced past the entry (I1).
- Every replica applies every entry (`apply_entry`), so state is identical everywhere (I2).
  Only the leader acts on effects, and only after its own `Barrier` of the current term has
  applied: at that point it rebuilds all orders from state (`pending_effects`), so nothing that
  a previous leader scheduled is forgotten (I4), and later entries add effects incrementally.
- Reads (`read`) run after a barrier that was committed after the read began (I6): a deposed
  leader cannot commit it and so never answers from stale state.
- Durable timers: the actor keeps one wake-up, at the earliest `ArmTimer` it has seen, and then
  proposes `FireTimers` with its clock; each answer re-arms the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol, TypeVar

from raftflow.actors import limits, wall_clock
from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.actors.mailbox import Mailbox
from raftflow.protocol.codec import decode_proposal, encode_command, encode_proposal_parts
from raftflow.protocol.commands import Barrier, Command, FireTimers, Proposal
from raftflow.protocol.effects import ArmTimer, Effect
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.results import Result
from raftflow.raftlog import limits as raftlog_limits
from raftflow.raftlog.interface import ReplicatedLog
from raftflow.shards.core import snapshot
from raftflow.shards.core.apply import apply, pending_effects
from raftflow.shards.core.state import ShardState

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often parked proposals are checked against their deadline.
_EXPIRY_CHECK_S = 0.5
# How soon a timer wake-up is retried when the mailbox was full.
_TIMER_RETRY_S = 0.1


# Room in a log entry for the proposal's own fields (tag, proposer, incarnation, seq, list).
_PROPOSAL_OVERHEAD_BYTES = 4096


wall_clock_ms = wall_clock.now_ms


class EffectSink(Protocol):
    """The node-level receiver of a leader's orders (task matcher, result waiters)."""

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None: ...

    def on_leadership(self, shard: int, is_leader: bool) -> None: ...


class ActorObserver(Protocol):
    """Metrics hooks (the node's Metrics satisfies this structurally)."""

    def record_commit(self, shard: int, batch_commands: int) -> None: ...

    def record_leader_change(self, shard: int) -> None: ...

    def record_timers_fired(self, shard: int, count: int) -> None: ...


class _NoObserver:
    def record_commit(self, shard: int, batch_commands: int) -> None:
        pass

    def record_leader_change(self, shard: int) -> None:
        pass

    def record_timers_fired(self, shard: int, count: int) -> None:
        pass


class ActorStats:
    __slots__ = ("proposals", "commands", "applied_entries", "timers_fired", "leader_changes")

    def __init__(self) -> None:
        self.proposals = 0
        self.commands = 0
        self.applied_entries = 0
        self.timers_fired = 0
        self.leader_changes = 0


class ShardActor:
    def __init__(self, *, shard: int, node_id: str, incarnation: int, sink: EffectSink,
                 observer: ActorObserver | None = None,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self.shard = shard
        self._observer: ActorObserver = observer or _NoObserver()
        self._node_id = node_id
        self._incarnation = incarnation
        self._sink = sink
        self._clock = clock
        self._state = ShardState.empty(shard)
        self._log: ReplicatedLog | None = None
        # The mailbox holds commands already encoded for the log: each is encoded once, at
        # submit, and batches are cut by those exact sizes (entries above the log's limit are
        # refused by the Raft group).
        self._mailbox: Mailbox[bytes, Result] = Mailbox(
            shard=shard, commands_max=limits.MAILBOX_COMMANDS_MAX,
            batch_max=limits.BATCH_COMMANDS_MAX, in_flight_max=limits.PROPOSALS_IN_FLIGHT_MAX,
            timeout_s=limits.PROPOSAL_TIMEOUT_S, size_of=len,
            batch_bytes_max=raftlog_limits.PROPOSAL_BYTES_MAX - _PROPOSAL_OVERHEAD_BYTES)
        self._drain_scheduled = False
        self._leader_term: int | None = None  # set while this replica leads
        self._ready = False  # leader whose barrier applied: acts on effects
        self._timer_at_ms: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.stats = ActorStats()

    def bind(self, replicated_log: ReplicatedLog) -> None:
        assert self._log is None
        self._log = replicated_log

    @property
    def state(self) -> ShardState:
        return self._state

    @property
    def mailbox_depth(self) -> int:
        return len(self._mailbox)

    def is_ready_leader(self) -> bool:
        return self._ready

    def is_leader(self) -> bool:
        return self._log is not None and self._log.is_leader()

    # -- callers -------------------------------------------------------------------------------

    def submit(self, command: Command) -> asyncio.Future[Result]:
        """Queue a command on the leader. Raises NotLeaderError or MailboxFullError at once."""
        assert self._log is not None
        if not self._log.is_leader():
            raise NotLeaderError(self.shard)
        try:
            encoded = encode_command(command)
        except (TypeError, ValueError, OverflowError) as error:
            # A value the codec refuses slipped past validation (a bug upstream): fail this
            # command alone, at once; nothing batched with it is affected.
            log.exception("shard %d: cannot encode a command", self.shard)
            failed: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
            failed.set_exception(RaftflowError(
                ErrorCode.INTERNAL, f"shard {self.shard} could not encode a command: {error}"))
            return failed
        future = self._mailbox.put(encoded)
        self._schedule_drain()
        return future

    async def execute(self, command: Command) -> Result:
        return await self.submit(command)

    async def read(self, query: Callable[[ShardState], T]) -> T:
        """Run `query` on state that includes every write acknowledged before this call."""
        await self.execute(Barrier(now_ms=self._clock(), leader_node=self._node_id,
                                   term=self._leader_term or 0))
        return query(self._state)

    def now_ms(self) -> int:
        return self._clock()

    # -- proposing -----------------------------------------------------------------------------

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        assert self._log is not None
        while (batch := self._mailbox.take_batch()) is not None:
            seq, commands = batch
            data = encode_proposal_parts(proposer=self._node_id, incarnation=self._incarnation,
                                         seq=seq, encoded_commands=commands)
            self.stats.proposals += 1
            self.stats.commands += len(commands)
            self._log.propose(data, partial(self._proposal_failed, seq))
        self._ensure_expiry_check()

    def _proposal_failed(self, seq: int, reason: str) -> None:
        # The entry may still commit later (Raft cannot tell); its commands carry idempotency
        # keys, so the caller's retry with the same request id gets the first answer.
        self._mailbox.fail(seq, NotLeaderError(self.shard, reason))
        # The failed batch freed an in-flight slot: commands waiting behind the cap go now.
        self._schedule_drain()

    def _ensure_expiry_check(self) -> None:
        if self._expiry is None and self._mailbox.in_flight:
            self._expiry = asyncio.get_running_loop().call_later(_EXPIRY_CHECK_S, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        for seq in self._mailbox.expired(time.monotonic()):
            self._mailbox.fail(seq, ProposalTimeoutError(self.shard))
        if len(self._mailbox):
            self._schedule_drain()  # expired batches freed in-flight slots
        self._ensure_expiry_check()

    # -- LogConsumer ---------------------------------------------------------------------------

    def apply_entry(self, index: int, data: bytes) -> None:
        proposal = decode_proposal(data)
        outputs = [apply(self._state, command) for command in proposal.commands]
        self.stats.applied_entries += 1
        self._observer.record_commit(self.shard, len(outputs))
        fired = sum(len(o.events) for c, o in zip(proposal.commands, outputs, strict=True)
                    if isinstance(c, FireTimers))
        if fired:  # events written by durable timers (timer fired, timeouts, retries)
            self.stats.timers_fired += fired
            self._observer.record_timers_fired(self.shard, fired)
        mine = (proposal.proposer == self._node_id and proposal.incarnation == self._incarnation
                and self._mailbox.is_parked(proposal.seq))
        if mine:
            futures = self._mailbox.resolve(proposal.seq, [o.result for o in outputs])
            results = [o.result for o in outputs]
            assert self._log is not None
            self._log.after_durable(lambda: _answer(futures, results))
            self._schedule_drain()
        if self._leader_term is None:
            return
        if not self._ready and self._is_my_barrier(proposal):
            self._become_ready()
        elif self._ready:
            self._act([e for o in outputs for e in o.effects])
            earliest = self._state.earliest_timer()
            if earliest is not None:  # FireTimers may fire nothing yet (clocks differ): re-arm
                self._arm(earliest[0])

    def take_snapshot(self) -> bytes:
        return snapshot.to_bytes(self._state)

    def restore_snapshot(self, data: bytes) -> None:
        self._state = snapshot.from_bytes(data)
        assert self._state.shard_id == self.shard, (self._state.shard_id, self.shard)

    def on_leadership(self, is_leader: bool, term: int) -> None:
        self.stats.leader_changes += 1
        self._observer.record_leader_change(self.shard)
        self._ready = False
        self._cancel_timer()
        if not is_leader:
            self._leader_term = None
            self._mailbox.fail_everything(NotLeaderError(self.shard, "leadership lost"))
            self._sink.on_leadership(self.shard, False)
            return
        self._leader_term = term
        # Effects are acted on only once our own barrier of this term applies: by then every
        # entry of earlier terms has applied here and `pending_effects` sees all of it.
        asyncio.get_running_loop().call_soon(self._propose_leader_barrier, term)

    # -- leader effects ------------------------------------------------------------------------

    def _propose_leader_barrier(self, term: int) -> None:
        if self._leader_term != term or self._log is None or not self._log.is_leader():
            return
        barrier = Barrier(now_ms=self._clock(), leader_node=self._node_id, term=term)
        future = self._mailbox.put(encode_command(barrier))
        future.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        self._schedule_drain()

    def _is_my_barrier(self, proposal: Proposal) -> bool:
        return any(isinstance(c, Barrier) and c.leader_node == self._node_id
                   and c.term == self._leader_term for c in proposal.commands)

    def _become_ready(self) -> None:
        self._ready = True
        self._sink.on_leadership(self.shard, True)
        self._act(pending_effects(self._state))

    def _act(self, effects: list[Effect]) -> None:
        if not effects:
            return
        orders: list[Effect] = []
        for effect in effects:
            if isinstance(effect, ArmTimer):
                self._arm(effect.fire_at_ms)
            else:
                orders.append(effect)
        if orders:
            self._sink.on_effects(self.shard, orders)

    def _arm(self, fire_at_ms: int) -> None:
        if self._timer_at_ms is not None and self._timer_at_ms <= fire_at_ms:
            return
        self._cancel_timer()
        self._timer_at_ms = fire_at_ms
        delay_s = max(0.0, (fire_at_ms - self._clock()) / 1000)
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._fire_timers)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at_ms = None

    def _fire_timers(self) -> None:
        self._timer = None
        self._timer_at_ms = None
        if not self._ready:
            return
        try:
            future = self.submit(FireTimers(now_ms=self._clock()))
        except NotLeaderError:
            return
        except Exception:  # mailbox full: try again shortly, the timers stay in state
            self._arm(self._clock() + int(_TIMER_RETRY_S * 1000))
            return
        future.add_done_callback(self._after_fire)

    def _after_fire(self, future: asyncio.Future[Result]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        if self._ready:  # failed without losing leadership: wake up again soon
            self._arm(self._clock() + int(_TIMER_RETRY_S * 1000))


def _answer(futures: Sequence[asyncio.Future[Result]], results: Sequence[Result]) -> None:
    for future, result in zip(futures, results, strict=True):
        if not future.done():
            future.set_result(result)
