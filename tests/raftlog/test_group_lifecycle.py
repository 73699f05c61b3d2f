"""Groups and peers that come and go at run time: a removed group stays removed across a
restart, leftovers of an interrupted removal are cleaned up, a removed peer is refused, and a
learner that campaigns anyway cannot disrupt the voters.

Method: real `RaftHost`s on loopback (tests/raftlog/harness.py) and `NodeWal` files in temp
dirs; restarts build a new host on the same data dir.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from raftflow.raftlog.host import GroupRemovalPendingError, RaftHost
from raftflow.raftlog.interface import NodeId, ShardId
from raftflow.raftlog.journal import GroupJournal
from raftflow.raftlog.wal import NodeWal
from tests.raftlog.harness import Cluster, ListConsumer, free_port

GROUP = ShardId(0)


def test_a_dropped_group_is_not_recovered_and_later_records_start_it_afresh(
        tmp_path: Any) -> None:
    wal = NodeWal(str(tmp_path))
    old = GroupJournal(wal, 3, str(tmp_path / "s3"))
    old.add(b"x", 2, 4)
    old.setCurrentTerm(5, "n1")
    kept = GroupJournal(wal, 4, str(tmp_path / "s4"))
    kept.add(b"y", 2, 1)
    wal.drop_group(3)
    wal.write_and_sync(wal.take_pending())
    wal.close()

    again = NodeWal(str(tmp_path))
    assert sorted(again.recovered) == [4]
    fresh = GroupJournal(again, 3, str(tmp_path / "s3"))
    assert (fresh[:], fresh.getCurrentTerm(), fresh.getVotedForNodeId()) == ([(b"\x01", 1, 0)], 0, None)
    fresh.add(b"z", 2, 7)
    again.write_and_sync(again.take_pending())
    again.close()
    assert NodeWal(str(tmp_path)).recovered[3].entries == [(b"\x01", 1, 0), (b"z", 2, 7)]


def test_a_removed_group_stays_removed_across_a_restart(tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=1)
        await cluster.start()
        try:
            leader = await cluster.wait_leader(GROUP)
            for i in range(100):
                leader.groups[GROUP].propose(b"e-%d" % i, lambda reason: None)
            await cluster.wait_for(lambda: all(len(c.applied) >= 100
                                               for c in cluster.consumers.values()))
            leaving = next(h for h in cluster.hosts.values() if h is not leader)
            group = leaving.groups[GROUP]
            group._sync.forceLogCompaction()
            await cluster.wait_for(lambda: group.journal.first_index > 50)
            done: list[str | None] = []
            leader.groups[GROUP].remove_member(NodeId(leaving.node_id), done.append)
            await cluster.wait_for(lambda: bool(done))
            assert done == [None]
            snapshot_files = group.snapshot_files
            assert os.path.exists(snapshot_files[0])
            removal = leaving.remove_group(GROUP)
            try:
                leaving.add_group(GROUP, sorted(cluster.addresses), ListConsumer())
                raise AssertionError("re-added before the removal was durable")
            except GroupRemovalPendingError:
                pass
            await removal
            assert not any(os.path.exists(f) for f in snapshot_files)

            await cluster.stop_node(leaving.node_id)
            restarted = RaftHost(node_id=leaving.node_id, data_dir=f"{tmp_path}/{leaving.node_id}",
                                 listen=cluster.addresses[leaving.node_id],
                                 peers={n: a for n, a in cluster.addresses.items()
                                        if n != leaving.node_id},
                                 secret=cluster.secret)
            cluster.hosts[leaving.node_id] = restarted
            assert GROUP not in restarted.wal.recovered
            await restarted.start()
            # A later replica of the same group starts empty, as a learner would.
            consumer = ListConsumer()
            voters = sorted(n for n in cluster.addresses if n != leaving.node_id)
            again = restarted.add_group(GROUP, voters, consumer, learner=True)
            assert len(again.journal) == 1 and again.journal.last_index == 1
            assert again.status().term == 0 and consumer.applied == []
            assert again.status().learners == (leaving.node_id,)
            # The remaining pair still commits without it.
            leader = await cluster.wait_leader(GROUP)
            leader.groups[GROUP].propose(b"last", lambda reason: None)
            await cluster.wait_for(lambda: leader.groups[GROUP].status().commit_index
                                   >= leader.groups[GROUP].journal.last_index)
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_snapshot_files_without_journal_records_are_deleted_at_startup(tmp_path: Any) -> None:
    # A crash after the removal record became durable but before its snapshot was deleted.
    async def main() -> None:
        node_dir = tmp_path / "n0"
        wal = NodeWal(str(node_dir / "raft"))
        live = GroupJournal(wal, 1, str(node_dir / "snapshots" / "shard-1.snapshot"))
        live.add(b"a", 2, 1)
        wal.write_and_sync(wal.take_pending())
        wal.close()
        snapshots = node_dir / "snapshots"
        snapshots.mkdir()
        for name in ("shard-1.snapshot", "shard-2.snapshot", "shard--1.snapshot",
                     "shard-2.snapshot.1.tmp", "unrelated.txt"):
            (snapshots / name).write_bytes(b"x")
        host = RaftHost(node_id="n0", data_dir=str(node_dir), listen=("127.0.0.1", free_port()),
                        peers={}, secret=b"s")
        try:
            assert sorted(os.listdir(snapshots)) == ["shard-1.snapshot", "unrelated.txt"]
        finally:
            await host.stop()

    asyncio.run(main())


def test_a_removed_peer_is_disconnected_and_refused_then_can_be_added_back(
        tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=1)
        await cluster.start()
        try:
            first, _, third = sorted(cluster.hosts)
            host, removed = cluster.hosts[first], cluster.hosts[third]
            await cluster.wait_for(lambda: host.peer_is_up(third) and removed.peer_is_up(first))
            host.remove_peer(NodeId(third))
            assert not host.peer_is_up(third)
            # The removed node keeps dialing (every PEER_RECONNECT_S) and is refused each time.
            await asyncio.sleep(1.0)
            assert not removed.peer_is_up(first)
            assert not host.peer_is_up(third)
            assert third not in host.network.inbound_peers.values()
            # Nothing of it reaches the groups: it is down for them, not merely silent.
            assert third not in {n.id for n in host.groups[GROUP]._sync._SyncObj__connectedNodes}
            host.add_peer(NodeId(third), *cluster.addresses[third])
            await cluster.wait_for(lambda: host.peer_is_up(third) and removed.peer_is_up(first))
        finally:
            await cluster.stop()

    asyncio.run(main())


def test_a_learner_that_campaigns_anyway_cannot_raise_the_voters_term(tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=1)
        await cluster.start()
        voters = sorted(cluster.hosts)
        port = free_port()
        learner = RaftHost(node_id="n3", data_dir=f"{tmp_path}/n3", listen=("127.0.0.1", port),
                           peers=dict(cluster.addresses), secret=cluster.secret)
        await learner.start()
        try:
            await cluster.wait_leader(GROUP)
            for name in voters:
                cluster.hosts[name].add_peer(NodeId("n3"), "127.0.0.1", port)
                cluster.hosts[name].groups[GROUP].set_learners([NodeId("n3")])
            group = learner.add_group(GROUP, voters, ListConsumer(), learner=True)
            await cluster.wait_for(lambda: group.leader() is not None)
            terms = {n: cluster.hosts[n].groups[GROUP].status().term for n in voters}
            group.set_campaigning(True)  # a caller's mistake: it is not a voter yet
            sent_votes: list[int] = []
            original = group.transport.send

            def send(node: Any, message: dict[str, Any]) -> bool:
                if message.get("type") == "request_vote":
                    sent_votes.append(message["term"])
                return bool(original(node, message))

            group.transport.send = send  # type: ignore[method-assign]
            # Cut the learner off from the leader's heartbeats so it does campaign.
            group.transport.deliver = lambda *args: None  # type: ignore[method-assign]
            await cluster.wait_for(lambda: len(sent_votes) >= 3, timeout_s=10)
            await asyncio.sleep(0.3)  # its last requests arrive
            assert max(sent_votes) > max(terms.values())
            assert {n: cluster.hosts[n].groups[GROUP].status().term for n in voters} == terms
        finally:
            await learner.stop()
            await cluster.stop()

    asyncio.run(main())


def test_a_checkpoint_keeps_groups_recovered_but_not_opened_and_removal_forgets_them(
        tmp_path: Any, monkeypatch: Any) -> None:
    # After a restart a node may open its groups late, or never (the map moved them away):
    # a WAL checkpoint must not erase them; only remove_group does.
    from raftflow.raftlog import limits

    node_dir = tmp_path / "n0"
    wal = NodeWal(str(node_dir / "raft"))
    for group in (5, 6):
        journal = GroupJournal(wal, group, str(node_dir / "snapshots" / f"shard-{group}.snapshot"))
        journal.add(b"kept-%d" % group, 2, 1)
        journal.setCurrentTerm(3, "n9")
    wal.write_and_sync(wal.take_pending())
    wal.close()
    monkeypatch.setattr(limits, "WAL_CHECKPOINT_BYTES", 0)  # every round is a checkpoint

    async def main() -> None:
        host = RaftHost(node_id="n0", data_dir=str(node_dir), listen=("127.0.0.1", free_port()),
                        peers={}, secret=b"s")
        await host.start()
        try:
            own = host.add_group(ShardId(1), ["n0"], ListConsumer())
            await asyncio.sleep(1.5)  # elects itself and commits: several checkpoint rounds
            assert own.is_leader()
            await host.remove_group(ShardId(6))  # never opened since the restart
        finally:
            await host.stop()

    asyncio.run(main())
    recovered = NodeWal(str(node_dir / "raft")).recovered
    assert sorted(recovered) == [1, 5]
    assert recovered[5].entries[-1] == (b"kept-5", 2, 1) and recovered[5].term == 3
