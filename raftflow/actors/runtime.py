"""The actor runtime: runs one pure state machine over its replicated log. One event loop, no locks.

Theory of operation.
- Writes: `execute(command)` puts the command in a bounded mailbox; a drain takes everything
  waiting as one `Proposal` (group commit) and proposes it. When the entry is committed and
  applied here, each command's result answers its caller, but only through `after_durable`: no
  answer leaves before the node's WAL is fsynced past the entry (I1).
- Every replica applies every entry (`apply_entry`), so state is identical everywhere (I2).
  The log index and the machine's `applied_index` move together: each entry has a greater log
  index than the one before (or than the restored snapshot's) and advances the machine by
  exactly its commands; both are asserted on every entry.
- Only the leader acts on effects, and only after its own `Barrier` of the current term has
  applied (`LeaderEffects`, leader_effects.py).
- Reads (`read`) run after a barrier that was committed after the read began (I6): a deposed
  leader cannot commit it and so never answers from stale state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

from raftflow.actors import limits
from raftflow.actors.clock import WallClock
from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.actors.leader_effects import EffectSink, LeaderEffects
from raftflow.actors.mailbox import Mailbox
from raftflow.actors.state_machine import StateMachine
from raftflow.actors.stats import ActorObserver, ActorStats, NoObserver
from raftflow.observability.json_logs import shard_fields
from raftflow.protocol.codec import decode_proposal, encode_command, encode_proposal_parts
from raftflow.protocol.commands import Barrier, Command, FireTimers, Proposal
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.results import Result
from raftflow.raftlog import limits as raftlog_limits
from raftflow.raftlog.interface import ReplicatedLog

log = logging.getLogger(__name__)

S = TypeVar("S")
T = TypeVar("T")

# How often parked proposals are checked against their deadline.
_EXPIRY_CHECK_S = 0.5

# Room in a log entry for the proposal's own fields (tag, proposer, incarnation, seq, list).
_PROPOSAL_OVERHEAD_BYTES = 4096


class ActorRuntime(Generic[S]):
    """The IO shell of one replica of one state machine; also the log's `LogConsumer`.

    Guarantees: a command's future resolves only after its batch is committed on a majority,
    applied here and synced in this node's WAL; commands of one batch apply in submission order.
    """

    def __init__(self, *, shard: int, machine: StateMachine[S], node_id: str, incarnation: int,
                 sink: EffectSink, clock: WallClock,
                 observer: ActorObserver | None = None) -> None:
        self.shard = shard
        self._machine = machine
        self._observer: ActorObserver = observer or NoObserver()
        self._node_id = node_id
        self._incarnation = incarnation
        self._clock = clock
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
        self._gone = False  # discarded (the node dropped the replica) or closed (the node stops)
        self._effects = LeaderEffects(shard=shard, sink=sink, clock=clock, submit=self.submit,
                                      observer=self._observer)
        self._expiry: asyncio.TimerHandle | None = None
        # Last log index applied (or covered by the restored snapshot), and how many commands
        # the machine has applied by then: checked against each other on every entry.
        self._applied_log_index = machine.stored_through_index
        self._applied_commands = machine.applied_index
        # Entries up to here are in the machine's store already (0 without one): skipped.
        self._stored_through = machine.stored_through_index
        self.stats = ActorStats()

    def bind(self, replicated_log: ReplicatedLog) -> None:
        assert self._log is None
        self._log = replicated_log

    @property
    def state(self) -> S:
        return self._machine.state

    @property
    def mailbox_depth(self) -> int:
        return len(self._mailbox)

    def is_ready_leader(self) -> bool:
        return self._effects.ready

    def is_leader(self) -> bool:
        return self._log is not None and self._log.is_leader()

    @property
    def leader_term(self) -> int | None:
        """The Raft term this replica leads in (None while it follows): for log lines."""
        return self._leader_term

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
            log.exception("shard %d: cannot encode a command", self.shard,
                          extra=shard_fields(self.shard, self._leader_term))
            failed: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
            failed.set_exception(RaftflowError(
                ErrorCode.INTERNAL, f"shard {self.shard} could not encode a command: {error}"))
            return failed
        future = self._mailbox.put(encoded)
        self._schedule_drain()
        return future

    async def execute(self, command: Command) -> Result:
        return await self.submit(command)

    async def read(self, query: Callable[[S], T]) -> T:
        """Run `query` on state that includes every write acknowledged before this call."""
        await self.execute(Barrier(now_ms=self._clock.now_ms(), leader_node=self._node_id,
                                   term=self._leader_term or 0))
        if self._gone:
            # Dropped or closed between the barrier's answer and now (a store-backed state's
            # file is closed then): the caller retries on the shard's leader.
            raise NotLeaderError(self.shard, "the replica left this node during the read")
        return query(self._machine.state)

    def now_ms(self) -> int:
        return self._clock.now_ms()

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
        # Exactly once, in log order (interface.py): an index at or below the last one applied
        # would apply an entry twice. Indexes may skip: Raft's own entries never reach here.
        if index <= self._stored_through:
            return  # the machine's store already holds it (a replay after restart or install)
        assert index > self._applied_log_index, (self.shard, index, self._applied_log_index)
        proposal = decode_proposal(data)
        machine = self._machine
        outputs = [machine.apply(command) for command in proposal.commands]
        machine.entry_applied(index)
        self._applied_log_index = index
        self._applied_commands += len(outputs)
        assert machine.applied_index == self._applied_commands, (
            self.shard, index, machine.applied_index, self._applied_commands)
        self.stats.applied_entries += 1
        self._observer.record_commit(self.shard, len(outputs))
        fired = sum(len(o.events) for c, o in zip(proposal.commands, outputs, strict=True)
                    if isinstance(c, FireTimers))
        if fired:  # events written by durable timers (timer fired, timeouts, retries)
            self.stats.timers_fired += fired
            self._observer.record_timers_fired(self.shard, fired)
        proposed_here = (proposal.proposer == self._node_id
                         and proposal.incarnation == self._incarnation)
        if proposed_here:  # one replica per entry counts what it did (stats.ActorObserver)
            try:
                self._observer.record_applied(self.shard, proposal.commands, outputs)
            except Exception:  # a metrics bug must never stop a replica applying its log
                log.exception("shard %d: counting applied entry %d failed", self.shard, index)
        mine = proposed_here and self._mailbox.is_parked(proposal.seq)
        if mine:
            results = [o.result for o in outputs]
            futures = self._mailbox.resolve(proposal.seq, results)
            assert self._log is not None
            self._log.after_durable(lambda: _answer(futures, results))
            self._schedule_drain()
        if self._leader_term is None:
            return
        effects = self._effects
        if not effects.ready and self._is_my_barrier(proposal):
            effects.become_ready(machine.pending_effects())
        elif effects.ready:
            effects.act([e for o in outputs for e in o.effects])
            earliest_ms = machine.earliest_timer_ms()
            if earliest_ms is not None:  # FireTimers may fire nothing yet (clocks differ): re-arm
                effects.arm(earliest_ms)

    def take_snapshot(self) -> bytes:
        assert self._machine.applied_index == self._applied_commands
        return self._machine.take_snapshot()

    def transfer_snapshot(self) -> bytes | None:
        assert self._machine.applied_index == self._applied_commands
        return self._machine.transfer_snapshot()

    def restore_snapshot(self, data: bytes, index: int) -> None:
        self._machine.restore_snapshot(data, index)
        applied = self._machine.applied_index
        # A state that has applied commands was produced by log entries: it covers some index.
        assert applied >= 0 and (index > 0 or applied == 0), (self.shard, index, applied)
        self._stored_through = self._machine.stored_through_index
        self._applied_log_index = max(index, self._stored_through)
        self._applied_commands = applied

    def discard(self) -> None:
        self._gone = True
        self._machine.discard()

    def close(self) -> None:
        """The node stops (its log host has stopped: nothing is applied after this)."""
        self._gone = True
        self._machine.close()

    def on_leadership(self, is_leader: bool, term: int) -> None:
        self.stats.leader_changes += 1
        self._observer.record_leader_change(self.shard)
        self._effects.stand_down()
        # Rare (elections, hand-offs), and what an operator reads first after an incident.
        log.info("shard %d: %s at term %d", self.shard, "leader" if is_leader else "follower",
                 term, extra=shard_fields(self.shard, term))
        if not is_leader:
            self._leader_term = None
            self._mailbox.fail_everything(NotLeaderError(self.shard, "leadership lost"))
            self._effects.report_follower()
            return
        self._leader_term = term
        # Effects are acted on only once our own barrier of this term applies: by then every
        # entry of earlier terms has applied here and `pending_effects` sees all of it.
        asyncio.get_running_loop().call_soon(self._propose_leader_barrier, term)

    # -- leadership ----------------------------------------------------------------------------

    def _propose_leader_barrier(self, term: int) -> None:
        if (self._leader_term != term or self._log is None or not self._log.is_leader()
                or self._effects.ready):
            return
        barrier = Barrier(now_ms=self._clock.now_ms(), leader_node=self._node_id, term=term)
        future = self._mailbox.put(encode_command(barrier))
        future.add_done_callback(partial(self._on_leader_barrier_done, term))
        self._schedule_drain()

    def _on_leader_barrier_done(self, term: int, future: asyncio.Future[Result]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        # The barrier did not commit (dropped, timed out, mailbox full) while this node may
        # still lead: until a barrier of this term applies, the shard takes writes but
        # dispatches no task and fires no timer, so it is proposed again, for as long as this
        # term lasts (`_propose_leader_barrier` stops once it applied or the term ended).
        asyncio.get_running_loop().call_later(
            limits.LEADER_BARRIER_RETRY_S, self._propose_leader_barrier, term)

    def _is_my_barrier(self, proposal: Proposal) -> bool:
        return any(isinstance(c, Barrier) and c.leader_node == self._node_id
                   and c.term == self._leader_term for c in proposal.commands)


def _answer(futures: Sequence[asyncio.Future[Result]], results: Sequence[Result]) -> None:
    for future, result in zip(futures, results, strict=True):
        if not future.done():
            future.set_result(result)
