"""A learner created from an older map still catches up from a leader it was not told about.

Found by a chaos run: a node joined, and the map it had when it started its learner replica
listed the group's voters of a moment before; the group's leader by then was a voter added
since. The learner dropped every message of that leader (not a member it knew) and never caught
up, so the move never finished. Raft accepts a leader's entries by term alone.
Method: three voters on loopback (tests/raftlog/harness.py) commit entries; a fourth host runs
the group as a learner told only of the two voters that do not lead; the leader replicates to
it once it is set as a learner; the learner must apply every committed entry. A vote request
of an unknown node must still be dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import NodeId, ShardId
from tests.raftlog.harness import Cluster, ListConsumer, free_port

GROUP = ShardId(0)
LEARNER = NodeId("n3")
ENTRIES = 30


def test_a_learner_accepts_entries_from_a_leader_it_was_not_told_about(tmp_path: Any) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, groups=1)
        await cluster.start()
        learner_host: RaftHost | None = None
        try:
            leader = await cluster.wait_leader(0)
            for number in range(ENTRIES):
                leader.groups[GROUP].propose(b"e-%d" % number, lambda reason: None)
            await cluster.wait_for(lambda: len(cluster.consumers[(leader.node_id, 0)].applied)
                                   >= ENTRIES, timeout_s=15)
            port = free_port()
            learner_host = RaftHost(node_id=LEARNER, data_dir=f"{tmp_path}/{LEARNER}",
                                    listen=("127.0.0.1", port), peers=dict(cluster.addresses),
                                    secret=cluster.secret)
            await learner_host.start()
            for host in cluster.hosts.values():
                host.add_peer(LEARNER, "127.0.0.1", port)
            stale_voters = sorted(n for n in cluster.addresses if n != leader.node_id)
            consumer = ListConsumer()
            group = learner_host.add_group(GROUP, stale_voters, consumer, learner=True)
            # A vote request from a node the replica does not know is still dropped.
            group.transport.deliver("n9", {"type": "request_vote", "term": 99,
                                           "last_log_index": 10**6, "last_log_term": 99})
            assert group.status().term == 0
            for host in cluster.hosts.values():
                host.groups[GROUP].set_learners([LEARNER])
            expected = cluster.consumers[(leader.node_id, 0)].applied
            await cluster.wait_for(lambda: consumer.applied[:ENTRIES] == expected[:ENTRIES],
                                   timeout_s=15)
            assert group.leader() == leader.node_id
        finally:
            if learner_host is not None:
                await learner_host.stop()
            await cluster.stop()

    asyncio.run(main())
