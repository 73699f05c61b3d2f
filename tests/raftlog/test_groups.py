"""Raft groups on real sockets and disks: safety under pipelined load with stale and duplicated
AppendEntries, durability across full restarts, snapshots, and peer authentication.

Method: three `RaftHost`s on loopback in one event loop (tests/raftlog/harness.py). Followers are
instrumented: every success reply they send records an acknowledged index for the current term,
and after every message they handle we check that their log still reaches that index.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import pytest

from raftflow.raftlog.group import RaftGroup
from tests.raftlog.harness import Cluster, StoreConsumer


class AckWatcher:
    """Wraps a follower's transport: replays stale AppendEntries and checks acknowledged ends."""

    def __init__(self, group: RaftGroup, rng: random.Random, replay_probability: float) -> None:
        self.group = group
        self.rng = rng
        self.replay_probability = replay_probability
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.acked: dict[int, int] = {}  # term -> highest index acknowledged in that term
        self.violations: list[str] = []
        self.replays = 0
        transport = group.transport
        original_deliver, original_send = transport.deliver, transport.send

        def send(node: Any, message: dict[str, Any]) -> bool:
            if message.get("type") == "next_node_idx" and message.get("success"):
                term = group.status().term
                self.acked[term] = max(self.acked.get(term, 0), message["next_node_idx"] - 1)
            return bool(original_send(node, message))

        def deliver(node_id: str, message: dict[str, Any]) -> None:
            original_deliver(node_id, message)
            self.check()
            if message.get("type") == "append_entries" and message.get("entries"):
                self.seen.append((node_id, message))
                self.seen = self.seen[-200:]
            if self.seen and self.rng.random() < self.replay_probability:
                self.replays += 1
                original_deliver(*self.rng.choice(self.seen))  # stale or duplicated resend
                self.check()

        transport.deliver = deliver  # type: ignore[method-assign]
        transport.send = send  # type: ignore[method-assign]

    def check(self) -> None:
        status = self.group.status()
        acked = self.acked.get(status.term, 0)
        if status.last_index < acked:
            self.violations.append(f"log ends at {status.last_index} below acked {acked}")


async def _pipelined_run(tmp_path: Any, normalize: bool, seed: int,
                         ) -> tuple[Cluster, list[AckWatcher], list[str]]:
    cluster = Cluster(str(tmp_path), size=3)
    await cluster.start()
    leader = await cluster.wait_leader()
    rng = random.Random(seed)
    watchers = []
    for host in cluster.hosts.values():
        if host is not leader:
            host.groups[0].transport.normalize = normalize
            watchers.append(AckWatcher(host.groups[0], rng, replay_probability=0.2))
    failures: list[str] = []
    for i in range(3000):
        leader.groups[0].propose(b"entry-%d" % i, failures.append)
        if i % 5 == 0:
            await asyncio.sleep(0.001)
    # A starved loop can cost the leader its term (proposals then fail): wait for quiet instead
    # of for a count, then check what every replica applied.
    # Replicas can agree for a moment while the last proposals are still in flight, so quiet
    # also needs every proposal accounted for: applied everywhere, or some proposal failed.
    await cluster.wait_for(lambda: _quiet(cluster, failures), timeout_s=30)
    return cluster, watchers, failures


def _quiet(cluster: Cluster, failures: list[str]) -> bool:
    if any(h.failed is not None for h in cluster.hosts.values()):
        # A host failed (fail-stop: its log broke an assertion) and dropped its groups.
        # Only the run without normalisation has been seen to get here (found by CI).
        return True
    return (len({(h.groups[0].status().commit_index, h.groups[0].status().applied_index)
                 for h in cluster.hosts.values()}) == 1
            and all(len(c.applied) > 0 for c in cluster.consumers.values())
            and (bool(failures) or all(len(c.applied) >= 3000
                                       for c in cluster.consumers.values())))


@pytest.mark.parametrize("seed", [1, 2])
def test_no_follower_drops_below_an_acknowledged_index(tmp_path: Any, seed: int) -> None:
    async def main() -> None:
        cluster, watchers, failures = await _pipelined_run(tmp_path, normalize=True, seed=seed)
        try:
            assert all(h.failed is None for h in cluster.hosts.values()), "a replica failed"
            assert sum(w.replays for w in watchers) > 50  # the stale path really ran
            assert [v for w in watchers for v in w.violations] == []
            # Quiet: every replica holds the same log and applied the same entries in order.
            logs = {tuple(h.groups[0].journal[:]) for h in cluster.hosts.values()}
            assert len(logs) == 1
            applied = {tuple(c.applied) for c in cluster.consumers.values()}
            assert len(applied) == 1
            data = [d for _, d in next(iter(applied))]
            proposed = [b"entry-%d" % i for i in range(3000)]
            index_of = {d: i for i, d in enumerate(proposed)}
            positions = [index_of[d] for d in data]
            assert positions == sorted(set(positions))  # in proposal order, none twice
            if not failures:  # no leader change: every proposal applied
                assert data == proposed
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_without_normalisation_the_same_run_drops_acknowledged_entries(tmp_path: Any) -> None:
    # Shows the check above can fail: pysyncobj's own handling truncates acknowledged entries.
    async def main() -> None:
        cluster, watchers, _ = await _pipelined_run(tmp_path, normalize=False, seed=1)
        try:
            assert [v for w in watchers for v in w.violations] != []
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_full_restart_keeps_every_committed_entry(tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=4)
        await cluster.start()
        for g in range(4):
            leader = await cluster.wait_leader(g)
            for i in range(200):
                leader.groups[g].propose(b"g%d-%d" % (g, i), pytest.fail)
        await cluster.wait_for(lambda: all(len(c.applied) >= 200 for c in cluster.consumers.values()))
        before = {k: list(c.applied) for k, c in cluster.consumers.items()}
        await cluster.stop()
        await cluster.start()
        for g in range(4):
            await cluster.wait_leader(g)
        await cluster.wait_for(lambda: all(len(c.applied) >= 200 for c in cluster.consumers.values()))
        for key, consumer in cluster.consumers.items():
            assert consumer.applied[:200] == before[key][:200]
        await cluster.stop()

    asyncio.run(main())


@pytest.mark.parametrize("stores", [False, True], ids=["snapshot-file", "consumer-store"])
def test_snapshot_compaction_restart_and_catch_up(tmp_path: Any, stores: bool) -> None:
    """With `stores`, the consumer keeps its own file: the lagging node must get the
    consumer's transfer snapshot (a copy of the leader's file), not the leader's manifest."""
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, stores=stores)
        await cluster.start()
        leader = await cluster.wait_leader()
        await cluster.stop_node(next(n for n in cluster.addresses if n != leader.node_id))
        for i in range(300):
            leader.groups[0].propose(b"a%d" % i, pytest.fail)
        await cluster.wait_for(lambda: all(len(cluster.consumers[(n, 0)].applied) >= 300
                                           for n in cluster.hosts))
        for host in cluster.hosts.values():
            host.groups[0]._sync.forceLogCompaction()
        await cluster.wait_for(lambda: all(h.groups[0].journal.first_index > 200
                                           for h in cluster.hosts.values()))
        # The stopped node comes back behind the compacted logs: it must catch up by snapshot.
        lagging = next(n for n in cluster.addresses if n not in cluster.hosts)
        await cluster.start_node(lagging)
        await cluster.wait_for(lambda: len(cluster.consumers[(lagging, 0)].applied) >= 300)
        expected = [b"a%d" % i for i in range(300)]
        assert [d for _, d in cluster.consumers[(lagging, 0)].applied][-300:] == expected
        receiver = cluster.consumers[(lagging, 0)]
        if stores:
            assert isinstance(receiver, StoreConsumer) and receiver.images_installed == 1
        # Everyone restarts from snapshot + WAL and still has all 300 entries.
        await cluster.stop()
        await cluster.start()
        await cluster.wait_leader()
        await cluster.wait_for(lambda: all(len(c.applied) >= 300 for c in cluster.consumers.values()))
        for consumer in cluster.consumers.values():
            assert [d for _, d in consumer.applied][-300:] == expected
        await cluster.stop()

    asyncio.run(main())


def test_peer_with_wrong_secret_is_never_connected(tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3)
        names = sorted(cluster.addresses)
        await cluster.start_node(names[0])
        await cluster.start_node(names[1])
        intruder = await cluster.start_node(names[2], secret=b"wrong")
        await cluster.wait_leader()
        await asyncio.sleep(0.5)
        for name in names[:2]:
            assert not cluster.hosts[name].peer_is_up(names[2])
            assert not intruder.peer_is_up(name)
        # Nobody accepts the intruder's connection, so it never learns of a leader.
        assert intruder.groups[0].leader() is None
        assert not intruder.groups[0].is_leader()
        await cluster.stop()

    asyncio.run(main())


def test_peer_port_is_bound_to_the_configured_address_only(tmp_path: Any) -> None:
    # pysyncobj binds 0.0.0.0 by default; 127.0.0.2 is loopback too, so it reaches a wildcard
    # bind but not one on 127.0.0.1.
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3)
        await cluster.start()
        try:
            _, port = cluster.addresses["n0"]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.2", port)
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_an_isolated_leader_steps_down_within_the_fallback_timeout(tmp_path: Any) -> None:
    # pysyncobj's default leaderFallbackTimeout is 30 s: a cut-off leader would go on believing
    # in itself (and answering) that long. Ours is limits.LEADER_FALLBACK_TIMEOUT_S.
    from raftflow.raftlog import limits

    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            leader.network.send_batch = lambda *args: None  # type: ignore[method-assign]
            leader.network._on_frame = lambda *args: None  # drops everything it receives
            cut_at = asyncio.get_running_loop().time()
            await cluster.wait_for(lambda: not leader.groups[0].is_leader(), timeout_s=5)
            stepped_down_s = asyncio.get_running_loop().time() - cut_at
            assert stepped_down_s < limits.LEADER_FALLBACK_TIMEOUT_S + 0.5
            others = [h for h in cluster.hosts.values() if h is not leader]
            await cluster.wait_for(lambda: any(h.groups[0].is_leader() for h in others))
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_a_failing_apply_stops_the_node_instead_of_reapplying(tmp_path: Any) -> None:
    # pysyncobj would retry a half-applied entry on the next tick; the host must fail-stop.
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            victim = next(h for h in cluster.hosts.values() if h is not leader)
            fatal: list[BaseException] = []
            victim._on_fatal = fatal.append
            consumer = cluster.consumers[(victim.node_id, 0)]

            def broken_apply(index: int, data: bytes) -> None:
                raise AssertionError("invariant broken")

            consumer.apply_entry = broken_apply  # type: ignore[method-assign]
            leader.groups[0].propose(b"boom", pytest.fail)
            await cluster.wait_for(lambda: bool(fatal))
            assert isinstance(victim.failed, AssertionError) and victim.groups == {}
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_membership_change_adds_a_replica_that_catches_up_and_removes_one(tmp_path: Any) -> None:
    async def main() -> None:
        from raftflow.raftlog.interface import NodeId, ShardId
        from tests.raftlog.harness import ListConsumer

        cluster = Cluster(str(tmp_path), size=3, groups=0)
        await cluster.start()
        try:
            first, second, third = sorted(cluster.hosts)
            consumers = {n: ListConsumer() for n in (first, second, third)}
            for name in (first, second):
                cluster.hosts[name].add_group(ShardId(0), [first, second], consumers[name])
            await cluster.wait_for(lambda: any(cluster.hosts[n].groups[0].is_leader()
                                               for n in (first, second)))
            leader = next(cluster.hosts[n] for n in (first, second)
                          if cluster.hosts[n].groups[0].is_leader())
            for i in range(50):
                leader.groups[0].propose(b"before-%d" % i, pytest.fail)
            await cluster.wait_for(lambda: len(consumers[leader.node_id].applied) == 50)
            # The new replica starts with the target membership and an empty log.
            cluster.hosts[third].add_group(ShardId(0), [first, second, third], consumers[third])
            done: list[str | None] = []
            leader.groups[0].add_member(NodeId(third), done.append)
            await cluster.wait_for(lambda: bool(done))
            assert done == [None]
            for i in range(50):
                leader.groups[0].propose(b"after-%d" % i, pytest.fail)
            expected = [b"before-%d" % i for i in range(50)] + [b"after-%d" % i for i in range(50)]
            await cluster.wait_for(lambda: [d for _, d in consumers[third].applied] == expected)
            assert leader.groups[0].status().members == (first, second, third)
            # Removing the other old replica leaves a two-member group that still commits.
            other = second if leader.node_id == first else first
            removed: list[str | None] = []
            leader.groups[0].remove_member(NodeId(other), removed.append)
            await cluster.wait_for(lambda: bool(removed))
            assert removed == [None]
            assert set(leader.groups[0].status().members) == {leader.node_id, third}
            leader.groups[0].propose(b"last", pytest.fail)
            await cluster.wait_for(lambda: consumers[third].applied[-1][1] == b"last")
            refused: list[str | None] = []
            leader.groups[0].remove_member(NodeId(leader.node_id), refused.append)
            assert refused == ["request_denied"]
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_a_replica_whose_store_is_behind_its_snapshot_stops_instead_of_diverging(
        tmp_path: Any) -> None:
    """pysyncobj swallows an error of a snapshot load and goes on applying the log to what is
    left; a consumer whose own store is lost must stop the node instead (fail-stop)."""
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, stores=True)
        await cluster.start()
        leader = await cluster.wait_leader()
        for i in range(50):
            leader.groups[0].propose(b"s%d" % i, pytest.fail)
        await cluster.wait_for(lambda: all(len(cluster.consumers[(n, 0)].applied) >= 50
                                           for n in cluster.hosts))
        for host in cluster.hosts.values():
            host.groups[0]._sync.forceLogCompaction()
        await cluster.wait_for(lambda: all(h.groups[0].journal.first_index > 40
                                           for h in cluster.hosts.values()))
        victim = next(n for n in cluster.addresses if n != leader.node_id)
        await cluster.stop_node(victim)
        os.unlink(f"{tmp_path}/{victim}/store-0")  # the store is gone, the snapshot is not
        host = await cluster.start_node(victim)
        await cluster.wait_for(lambda: host.failed is not None)
        assert "could not be restored" in str(host.failed)
        # Never a state that lost history: nothing applied on top of the missing store, or (a
        # leader's image may reach the replica while it fails) the whole log from the start.
        applied = [data for _, data in cluster.consumers[(victim, 0)].applied]
        assert applied in ([], [b"s%d" % i for i in range(50)]), applied[:5]
        await cluster.stop()

    asyncio.run(main())
