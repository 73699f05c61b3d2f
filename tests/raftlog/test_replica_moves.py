"""Replica moves on real pysyncobj groups: a learner joins, catches up, is promoted; an old voter
leaves and its replica is deleted; writes go on throughout.

Method: three voter `RaftHost`s on loopback (tests/raftlog/harness.py) under a steady stream of
proposals; a fourth host, unknown to the voters until `add_peer`, runs the group as a learner
and must catch up from a snapshot (the voters compact first) and then the log. Every group's
outgoing messages are watched, so a vote request tells who campaigned in which term, and a
sampler records every replica's term, so the voters' terms can be checked to move only through
the voters' own elections. At the end every proposal is either applied or failed with a reason,
and every remaining replica applied the same entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from raftflow.raftlog.group import RaftGroup
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import NodeId, ShardId
from tests.raftlog.harness import Cluster, ListConsumer, free_port

GROUP = ShardId(0)
LEARNER = NodeId("n3")
# "Caught up" for promotion: the leader's log is at most this many entries ahead of it.
CAUGHT_UP_LAG_MAX = 20


class SnapshotCountingConsumer(ListConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.restores = 0

    def restore_snapshot(self, data: bytes, index: int) -> None:
        self.restores += 1
        super().restore_snapshot(data, index)


class VoteWatcher:
    """Records every vote request a replica sends: (node, term, phase of the test)."""

    def __init__(self, phase: Callable[[], str]) -> None:
        self.phase = phase
        self.requests: list[tuple[str, int, str]] = []

    def watch(self, node_id: str, group: RaftGroup) -> None:
        original = group.transport.send

        def send(node: Any, message: dict[str, Any]) -> bool:
            if message.get("type") == "request_vote":
                self.requests.append((node_id, int(message["term"]), self.phase()))
            return bool(original(node, message))

        group.transport.send = send  # type: ignore[method-assign]


class Writer:
    """Proposes one entry every few milliseconds to whichever replica leads."""

    def __init__(self, hosts: dict[str, RaftHost]) -> None:
        self.hosts = hosts
        self.proposed = 0
        self.failed: dict[int, str] = {}

    def leader(self) -> RaftHost | None:
        return next((h for h in self.hosts.values()
                     if GROUP in h.groups and h.groups[GROUP].is_leader()), None)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            leader = self.leader()
            if leader is not None:
                number = self.proposed
                self.proposed += 1
                leader.groups[GROUP].propose(
                    b"w-%d" % number,
                    lambda reason, number=number: self.failed.setdefault(number, reason))
            await asyncio.sleep(0.005)


async def _until_done(start: Any, cluster: Cluster, writer: Writer) -> None:
    """Run a membership change on the leader until it succeeds (retrying refusals)."""
    while True:
        leader = writer.leader()
        if leader is not None:
            done: list[str | None] = []
            start(leader.groups[GROUP], done.append)
            await cluster.wait_for(lambda done=done: bool(done), timeout_s=10)
            if done == [None]:
                return
        await asyncio.sleep(0.05)


def test_a_learner_catches_up_from_a_snapshot_is_promoted_and_an_old_voter_leaves(
        tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=0)
        await cluster.start()
        voters = sorted(cluster.hosts)
        hosts = dict(cluster.hosts)
        consumers: dict[str, ListConsumer] = {}
        phase = "before"
        votes = VoteWatcher(lambda: phase)
        for name in voters:
            consumers[name] = ListConsumer()
            votes.watch(name, hosts[name].add_group(GROUP, voters, consumers[name]))
        writer = Writer(hosts)
        stop = asyncio.Event()
        learner_host: RaftHost | None = None
        samples: list[tuple[str, dict[str, int]]] = []  # (phase, node -> term)

        async def sample_terms() -> None:
            while True:
                samples.append((phase, {n: h.groups[GROUP].status().term
                                        for n, h in hosts.items() if GROUP in h.groups}))
                await asyncio.sleep(0.005)

        def applied_max() -> int:
            return max(len(c.applied) for n, c in consumers.items() if GROUP in hosts[n].groups)

        async def progresses(what: str) -> None:
            mark = applied_max()
            try:
                await cluster.wait_for(lambda: applied_max() >= mark + 50, timeout_s=15)
            except AssertionError:
                raise AssertionError(f"writes stopped committing {what}") from None

        sampler = asyncio.get_running_loop().create_task(sample_terms())
        writing = asyncio.get_running_loop().create_task(writer.run(stop))
        try:
            await cluster.wait_leader(GROUP)
            await cluster.wait_for(lambda: applied_max() >= 200, timeout_s=15)
            for name in voters:
                hosts[name].groups[GROUP]._sync.forceLogCompaction()
            await cluster.wait_for(lambda: all(hosts[n].groups[GROUP].journal.first_index > 100
                                               for n in voters), timeout_s=15)

            # The learner's host knows the voters; the voters learn of it at run time.
            phase = "learner"
            port = free_port()
            learner_host = RaftHost(node_id=LEARNER, data_dir=f"{tmp_path}/{LEARNER}",
                                    listen=("127.0.0.1", port), peers=dict(cluster.addresses),
                                    secret=cluster.secret)
            await learner_host.start()
            for name in voters:
                hosts[name].add_peer(LEARNER, "127.0.0.1", port)
            consumers[LEARNER] = learner_consumer = SnapshotCountingConsumer()
            learner_group = learner_host.add_group(GROUP, voters, learner_consumer, learner=True)
            votes.watch(LEARNER, learner_group)
            hosts[LEARNER] = learner_host
            await cluster.wait_for(lambda: all(learner_host.peer_is_up(n) for n in voters))
            # Connected but not replicated to yet, for longer than any election timeout: a
            # replica that could campaign would have by now.
            await asyncio.sleep(1.5)
            assert learner_group.status().term == 0
            assert learner_group.leader() is None

            for name in voters:
                hosts[name].groups[GROUP].set_learners([LEARNER])
            await cluster.wait_for(lambda: learner_consumer.restores >= 1, timeout_s=15)
            await cluster.wait_for(
                lambda: (lag := _leader_lag(writer)) is not None and lag <= CAUGHT_UP_LAG_MAX,
                timeout_s=15)
            await progresses("while the learner catches up")
            status = learner_group.status()
            assert status.members == tuple(voters) and status.learners == (LEARNER,)
            leader = writer.leader()
            assert leader is not None and leader.groups[GROUP].status().learners == (LEARNER,)
            assert [n for n, lag in leader.groups[GROUP].status().learner_lags if lag >= 0] \
                == [LEARNER]
            follower = next(hosts[n] for n in voters if hosts[n] is not leader)
            assert follower.groups[GROUP].replication_lag(LEARNER) is None  # leader only
            assert leader.groups[GROUP].replication_lag(NodeId("nobody")) is None

            # Promotion: the leader adds it; it may campaign once the leader lists it.
            phase = "promoted"
            await _until_done(lambda g, cb: g.add_member(LEARNER, cb), cluster, writer)
            await cluster.wait_for(lambda: (lead := writer.leader()) is not None
                                   and LEARNER in lead.groups[GROUP].status().members)
            lead = writer.leader()
            assert lead is not None and lead.groups[GROUP].status().learners == ()  # a voter now
            assert lead.groups[GROUP].status().learner_lags == ()
            # What the node runtime does next: every replica clears the learner set (on the
            # voters this must not touch the promoted node's replication state), then the new
            # voter may campaign.
            for name in [*voters, LEARNER]:
                hosts[name].groups[GROUP].set_learners([])
            assert learner_group.status().learners == ()
            assert LEARNER not in learner_group.status().members
            learner_group.set_campaigning(True)
            assert learner_group.status().members == tuple(sorted([*voters, LEARNER]))
            await progresses("after the promotion")

            # The old voter that does not lead leaves, then deletes its replica.
            phase = "after"
            leader = writer.leader()
            assert leader is not None
            leaving = next(n for n in voters if hosts[n] is not leader)
            await _until_done(lambda g, cb: g.remove_member(NodeId(leaving), cb), cluster, writer)
            await cluster.wait_for(lambda: (lead := writer.leader()) is not None
                                   and leaving not in lead.groups[GROUP].status().members)
            snapshot_files = hosts[leaving].groups[GROUP].snapshot_files
            assert os.path.exists(snapshot_files[0])
            await hosts[leaving].remove_group(GROUP)
            assert GROUP not in hosts[leaving].groups
            assert not any(os.path.exists(f) for f in snapshot_files)
            await progresses("after the old voter left")
        finally:
            stop.set()
            await writing
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler

        try:
            remaining = [n for n in hosts if GROUP in hosts[n].groups]
            assert sorted(remaining) == sorted(n for n in [*voters, LEARNER] if n != leaving)
            # Quiet: every proposal applied or failed, every remaining replica at the same point.
            await cluster.wait_for(
                lambda: len({(hosts[n].groups[GROUP].status().applied_index, len(consumers[n].applied))
                             for n in remaining}) == 1
                and _unresolved(writer, consumers, remaining) == [], timeout_s=20)
            applied = {n: consumers[n].applied for n in remaining}
            assert len({tuple(a) for a in applied.values()}) == 1, "replicas diverged"
            assert _unresolved(writer, consumers, remaining) == []
            data = [d for _, d in applied[remaining[0]]]
            assert len(data) == len(set(data))  # none applied twice
            assert all(h.failed is None for h in hosts.values())
            # The learner never campaigned before its promotion, and never led the voters'
            # terms; the voters' terms moved only through elections the voters started.
            assert [r for r in votes.requests if r[0] == LEARNER and r[2] == "learner"] == []
            voter_terms = {t for n, t, _ in votes.requests if n != LEARNER}
            before_promotion = [s for p, s in samples if p == "learner"]
            assert before_promotion
            assert all(s.get(LEARNER, 0) <= max(s[v] for v in voters) for s in before_promotion)
            first_term = before_promotion[0][voters[0]]
            for _, terms in [s for s in samples if s[0] in ("learner", "promoted")]:
                for voter in voters:
                    assert terms[voter] == first_term or terms[voter] in voter_terms, terms
        finally:
            await cluster.stop()
            if learner_host is not None:
                await learner_host.stop()

    asyncio.run(main())


def _leader_lag(writer: Writer) -> int | None:
    leader = writer.leader()
    return None if leader is None else leader.groups[GROUP].replication_lag(LEARNER)


def _unresolved(writer: Writer, consumers: dict[str, ListConsumer], remaining: list[str],
                ) -> list[int]:
    applied = {d for n in remaining for _, d in consumers[n].applied}
    return [i for i in range(writer.proposed)
            if i not in writer.failed and b"w-%d" % i not in applied]
