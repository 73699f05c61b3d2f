"""ShardActor over a simulated log: group commit, answers after sync, leadership, reads, timers.

Goal: pin down the shell duties of `raftflow.shards.actor.ShardActor` (the actor runtime of
`raftflow.actors.runtime` over the shard core) that the pure core cannot
check — one proposal per mailbox drain, no answer before the WAL is synced (I1), effects only
after the leader's own barrier (I4), reads behind a committed barrier (I6), durable timers fired
by the leader, and byte-identical replicas (I2).
Method: replicas of one `SimGroup` (tests/actors/sim_log.py) in one asyncio loop; the test
decides when entries commit (`commit()`), when the WAL syncs (`sync()`), who leads
(`set_leader`) and what time the actors' clock reads. Waits are condition waits on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from raftflow.actors import limits
from raftflow.actors.errors import NotLeaderError
from raftflow.protocol.codec import decode_proposal
from raftflow.protocol.commands import Barrier, FireTimers, StartWorkflow
from raftflow.protocol.effects import DispatchWorkflowTask, Effect
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.results import WorkflowStartedResult, WorkflowStatus
from raftflow.raftlog import limits as raftlog_limits
from raftflow.shards.actor import new_shard_actor
from raftflow.shards.core import queries
from raftflow.shards.core.digest import state_digest
from raftflow.shards.core.state import ShardState
from tests.actors.sim_log import SimGroup, SimLog

SHARD = 3


class RecordingSink:
    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self.leadership: list[bool] = []

    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        assert shard == SHARD
        self.effects.extend(effects)

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        assert shard == SHARD
        self.leadership.append(is_leader)


class FakeClock:
    """The test's wall clock: reads whatever the test last put in the shared cell."""

    def __init__(self, cell: list[int]) -> None:
        self._cell = cell

    def now_ms(self) -> int:
        return self._cell[0]


class Replica:
    def __init__(self, group: SimGroup, node_id: str, clock: list[int]) -> None:
        self.sink = RecordingSink()
        self.actor = new_shard_actor(shard=SHARD, node_id=node_id, incarnation=1,
                                     sink=self.sink, clock=FakeClock(clock))
        self.log: SimLog = group.replica(node_id, self.actor)
        self.actor.bind(self.log)


def _start(workflow_id: str, *, now_ms: int = 1_000, **fields: object) -> StartWorkflow:
    return StartWorkflow(now_ms=now_ms, namespace="default", workflow_id=workflow_id,
                         workflow_type="T", task_queue="q", request_id=f"req-{workflow_id}",
                         run_id=f"run-{workflow_id}", **fields)  # type: ignore[arg-type]


async def _until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


async def _ready_leader(group: SimGroup, replica: Replica) -> None:
    """Elect `replica` and let its barrier commit, so it acts on effects."""
    group.set_leader(replica.log.node_id)
    await _until(lambda: bool(replica.log.proposed))
    group.commit()
    replica.log.sync()
    assert replica.actor.is_ready_leader()


def _world(*node_ids: str) -> tuple[SimGroup, list[Replica], list[int]]:
    clock = [1_000]
    group = SimGroup(SHARD)
    return group, [Replica(group, n, clock) for n in node_ids], clock


def test_one_drain_is_one_proposal_and_answers_wait_for_the_sync() -> None:
    async def main() -> None:
        group, (a,), _ = _world("a")
        await _ready_leader(group, a)
        futures = [a.actor.submit(_start(f"wf{i}")) for i in range(3)]
        await _until(lambda: bool(a.log.proposed))
        assert len(a.log.proposed) == 1
        proposal = decode_proposal(a.log.proposed[0][0])
        assert [c.workflow_id for c in proposal.commands] == ["wf0", "wf1", "wf2"]  # type: ignore[union-attr]
        assert group.commit() == 1
        assert len(a.actor.state.executions) == 3  # applied ...
        await asyncio.sleep(0)
        assert not any(f.done() for f in futures)  # ... but not answered before the sync (I1)
        assert a.log.sync() == 1
        results = [await f for f in futures]
        assert results == [WorkflowStartedResult(run_id=f"run-wf{i}", created=True)
                           for i in range(3)]
        assert a.actor.stats.proposals == 2 and a.actor.stats.commands == 4  # barrier + batch

    asyncio.run(main())


def test_a_follower_refuses_at_once() -> None:
    async def main() -> None:
        group, (a, b), _ = _world("a", "b")
        await _ready_leader(group, a)
        with pytest.raises(NotLeaderError):
            b.actor.submit(_start("wf"))
        with pytest.raises(NotLeaderError):
            await b.actor.read(lambda s: 0)
        assert b.log.proposed == [] and b.actor.mailbox_depth == 0

    asyncio.run(main())


def test_a_new_leader_acts_only_after_its_own_barrier_and_rebuilds_every_order() -> None:
    async def main() -> None:
        group, (a, b), _ = _world("a", "b")
        await _ready_leader(group, a)
        first = a.actor.submit(_start("wf1"))
        await _until(lambda: bool(a.log.proposed))
        group.commit()
        a.log.sync()
        await first
        second = a.actor.submit(_start("wf2"))  # proposed by a, committed under b's term
        await _until(lambda: bool(a.log.proposed))

        group.set_leader("b")
        with pytest.raises(NotLeaderError):
            await second  # leadership loss fails what a still had parked
        assert a.sink.leadership == [True, False]
        assert b.sink.effects == [] and not b.actor.is_ready_leader()
        await _until(lambda: bool(b.log.proposed))  # b's barrier, behind a's entry
        assert isinstance(decode_proposal(b.log.proposed[0][0]).commands[0], Barrier)

        a_entry = a.log.proposed.pop(0)
        b.log.proposed, pending_barrier = [], b.log.proposed
        a.log.proposed.append(a_entry)
        group.commit()  # only a's old entry: b applies it, still not ready, ignores its effects
        assert "run-wf2" in b.actor.state.executions
        assert b.sink.effects == [] and b.sink.leadership == []
        b.log.proposed = pending_barrier
        group.commit()  # now b's own barrier
        assert b.actor.is_ready_leader() and b.sink.leadership == [True]
        dispatched = {e.workflow_id for e in b.sink.effects if isinstance(e, DispatchWorkflowTask)}
        assert dispatched == {"wf1", "wf2"}  # pending_effects rebuilt from state, nothing lost

    asyncio.run(main())


def test_a_read_is_answered_only_after_a_barrier_commits() -> None:
    async def main() -> None:
        group, (a,), _ = _world("a")
        await _ready_leader(group, a)
        start = a.actor.submit(_start("wf"))
        read = asyncio.ensure_future(
            a.actor.read(lambda s: queries.describe(s, "default", "wf")))
        await _until(lambda: bool(a.log.proposed))
        await asyncio.sleep(0)
        assert not read.done()
        group.commit()
        await asyncio.sleep(0)
        assert not read.done()  # committed, not yet synced
        a.log.sync()
        await start
        described = await read
        assert described.status is WorkflowStatus.RUNNING  # type: ignore[union-attr]
        proposal = decode_proposal(group.entries[-1])
        assert isinstance(proposal.commands[-1], Barrier)

    asyncio.run(main())


def test_a_read_on_a_deposed_leader_fails_instead_of_answering_stale_state() -> None:
    async def main() -> None:
        group, (a, _b), _ = _world("a", "b")
        await _ready_leader(group, a)
        read = asyncio.ensure_future(a.actor.read(lambda s: len(s.executions)))
        await _until(lambda: bool(a.log.proposed))
        group.set_leader("b")
        a.log.fail_proposals("leader_changed")
        with pytest.raises(NotLeaderError):
            await read

    asyncio.run(main())


def test_a_read_whose_replica_is_dropped_while_its_barrier_answers_fails() -> None:
    """The barrier commits, and before the read's coroutine runs again the node drops the
    replica (a move took it away; a store-backed one's file is closed then): the read is
    a 503 to retry on the new leader, not an answer from state that is gone (a store-backed
    replica answered 500: its file was closed)."""
    async def main() -> None:
        group, (a,), _ = _world("a")
        await _ready_leader(group, a)
        read = asyncio.ensure_future(a.actor.read(lambda s: len(s.executions)))
        await _until(lambda: bool(a.log.proposed))
        group.commit()
        a.log.sync()  # the barrier's answer is set: the read resumes on the next turn
        a.actor.discard()
        with pytest.raises(NotLeaderError):
            await read

    asyncio.run(main())


def test_timers_lead_to_fire_timers_and_replicas_stay_identical() -> None:
    async def main() -> None:
        group, (a, b), clock = _world("a", "b")
        a.log.auto_sync = b.log.auto_sync = True
        await _ready_leader(group, a)
        started = a.actor.submit(_start("wf", now_ms=clock[0], execution_timeout_ms=20))
        await _until(lambda: bool(a.log.proposed))
        clock[0] += 20  # the fake clock says the timeout is due when the wake-up runs
        group.commit()
        await started
        await _until(lambda: bool(a.log.proposed))  # the wake-up proposed FireTimers
        fire = decode_proposal(a.log.proposed[0][0]).commands
        assert fire == (FireTimers(now_ms=1_020),)
        assert b.log.proposed == []  # followers never fire timers
        group.commit()
        described = queries.describe(a.actor.state, "default", "wf")
        assert described.status is WorkflowStatus.TIMED_OUT  # type: ignore[union-attr]
        assert a.actor.stats.timers_fired >= 1
        assert state_digest(a.actor.state) == state_digest(b.actor.state)
        assert a.actor.state.applied_index == b.actor.state.applied_index > 0

    asyncio.run(main())


def test_snapshot_round_trip_keeps_the_digest() -> None:
    async def main() -> None:
        group, (a,), _ = _world("a")
        a.log.auto_sync = True
        await _ready_leader(group, a)
        done = a.actor.submit(_start("wf"))
        await _until(lambda: bool(a.log.proposed))
        group.commit()
        await done
        other = new_shard_actor(shard=SHARD, node_id="c", incarnation=1, sink=RecordingSink(),
                                clock=FakeClock([0]))
        other.restore_snapshot(a.actor.take_snapshot(), len(group.entries))
        assert state_digest(other.state) == state_digest(a.actor.state)
        assert state_digest(ShardState.empty(SHARD)) != state_digest(a.actor.state)

    asyncio.run(main())


def test_commands_queued_behind_a_failed_proposal_are_still_proposed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A proposal that fails while this replica still leads (e.g. the Raft queue dropped it)
    frees its in-flight slot; commands that waited behind the cap must then be proposed,
    not left in the mailbox until some unrelated command arrives."""

    async def main() -> None:
        monkeypatch.setattr(limits, "PROPOSALS_IN_FLIGHT_MAX", 1)
        group, (a,), _ = _world("a")
        a.log.auto_sync = True
        await _ready_leader(group, a)
        first = a.actor.submit(_start("wf1"))
        await _until(lambda: bool(a.log.proposed))
        second = a.actor.submit(_start("wf2"))
        await asyncio.sleep(0)
        assert len(a.log.proposed) == 1 and a.actor.mailbox_depth == 1  # behind the cap
        a.log.fail_proposals("dropped")
        with pytest.raises(NotLeaderError):
            await first
        await _until(lambda: bool(a.log.proposed))
        group.commit()
        assert await second == WorkflowStartedResult(run_id="run-wf2", created=True)

    asyncio.run(main())


def test_a_command_that_cannot_be_encoded_fails_its_batch_at_once() -> None:
    """A value the log codec refuses (an integer beyond 64 bits that slipped past validation)
    must fail its own command promptly and leave the actor draining, not park its batch until
    the 10 s proposal timeout and stall the commands batched or queued with it."""

    async def main() -> None:
        group, (a,), _ = _world("a")
        a.log.auto_sync = True
        await _ready_leader(group, a)
        poisoned = a.actor.submit(_start("bad", task_timeout_ms=10**30))
        mate = a.actor.submit(_start("mate"))  # same drain, cut into its own batch
        with pytest.raises(RaftflowError) as raised:
            await asyncio.wait_for(poisoned, 1.0)
        assert raised.value.code == "internal"
        await _until(lambda: bool(a.log.proposed))
        group.commit()
        assert await mate == WorkflowStartedResult(run_id="run-mate", created=True)
        good = a.actor.submit(_start("good"))
        await _until(lambda: bool(a.log.proposed))
        group.commit()
        assert await good == WorkflowStartedResult(run_id="run-good", created=True)

    asyncio.run(main())


def test_large_payloads_are_cut_into_proposals_that_fit_the_log() -> None:
    """Five starts with ~1.9 MiB inputs each (every one within the 2 MiB payload limit) must
    not be packed into one entry above the log's PROPOSAL_BYTES_MAX (8 MiB): the real group
    refuses such an entry, and the whole batch would time out, again on every retry."""

    async def main() -> None:
        group, (a,), _ = _world("a")
        a.log.auto_sync = True
        await _ready_leader(group, a)
        payload = b'"' + b"x" * (1_900 * 1024) + b'"'
        futures = [a.actor.submit(_start(f"big{i}", input=payload)) for i in range(5)]
        await _until(lambda: bool(a.log.proposed))
        while a.log.proposed or a.actor.mailbox_depth:
            group.commit()
            await asyncio.sleep(0)
        results = [await asyncio.wait_for(f, 1.0) for f in futures]
        assert all(isinstance(r, WorkflowStartedResult) and r.created for r in results)
        assert 2 <= len(group.entries) - 1 <= 5  # several proposals, beside the leader barrier
        assert all(len(entry) <= raftlog_limits.PROPOSAL_BYTES_MAX for entry in group.entries)

    asyncio.run(main())


def test_a_new_leader_proposes_its_barrier_again_until_one_commits() -> None:
    """Issue 12 item 6: one failed barrier proposal left a leader that took writes but never
    dispatched a task or fired a timer (effects wait for the term's own barrier)."""
    async def main() -> None:
        group, (a,), _ = _world("a")
        group.set_leader("a")
        await _until(lambda: bool(a.log.proposed))
        a.log.fail_proposals("timeout")  # still the leader, the entry is gone
        assert not a.actor.is_ready_leader()
        await _until(lambda: bool(a.log.proposed), timeout_s=5.0)  # proposed again
        assert isinstance(decode_proposal(a.log.proposed[0][0]).commands[0], Barrier)
        group.commit()
        a.log.sync()
        assert a.actor.is_ready_leader() and a.sink.leadership == [True]

    asyncio.run(main())
