"""A follower offered a snapshot its log already covers keeps its log (Raft §7).

Found by a loaded run of test_no_follower_drops_below_an_acknowledged_index: a leader whose next
index for a follower went back below its log start sent its snapshot, and pysyncobj cleared the
follower's whole journal on install, dropping entries the follower had acknowledged. Method:
compact every log, replicate more, then set the leader's next index for one follower back to 1,
which makes pysyncobj send that follower its (older) snapshot. The follower's log end is watched
after every message it handles: it must never go below where it stood, its state machine must
not be rolled back, and replication must go on afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pysyncobj.node import Node

from tests.raftlog.harness import Cluster


@pytest.mark.parametrize("stores", [False, True], ids=["snapshot-file", "consumer-store"])
def test_a_snapshot_behind_the_follower_log_is_refused(tmp_path: Any, stores: bool) -> None:
    async def main() -> None:
        cluster = Cluster(str(tmp_path), size=3, stores=stores)
        await cluster.start()
        try:
            leader = await cluster.wait_leader()
            for i in range(300):
                leader.groups[0].propose(b"a%d" % i, pytest.fail)
            await cluster.wait_for(lambda: all(len(c.applied) >= 300
                                               for c in cluster.consumers.values()))
            for host in cluster.hosts.values():
                host.groups[0]._sync.forceLogCompaction()
            await cluster.wait_for(lambda: all(h.groups[0].journal.first_index > 200
                                               for h in cluster.hosts.values()))
            snapshot_index = leader.groups[0].journal.first_index + 1
            for i in range(40):
                leader.groups[0].propose(b"b%d" % i, pytest.fail)
            await cluster.wait_for(lambda: all(len(c.applied) >= 340
                                               for c in cluster.consumers.values()))

            follower_id = next(n for n in cluster.hosts if n != leader.node_id)
            follower = cluster.hosts[follower_id].groups[0]
            consumer = cluster.consumers[(follower_id, 0)]
            standing = follower.journal.last_index
            assert standing > snapshot_index + 30
            ends: list[int] = []
            restores: list[int] = []
            deliver = follower.transport.deliver

            def watched(node_id: str, message: dict[str, Any]) -> None:
                deliver(node_id, message)
                ends.append(follower.journal.last_index)

            original_restore = consumer.restore_snapshot

            def restore(data: bytes, index: int) -> None:
                restores.append(index)
                original_restore(data, index)

            follower.transport.deliver = watched  # type: ignore[method-assign]
            consumer.restore_snapshot = restore  # type: ignore[method-assign]
            leader.groups[0]._sync._SyncObj__raftNextIndex[Node(follower_id)] = 1
            await cluster.wait_for(lambda: follower._serializer.refused
                                   or follower._serializer.received or restores)

            assert follower._serializer.refused == 1
            assert restores == []  # the state machine was not rolled back to the snapshot
            assert min(ends) >= standing  # no acknowledged entry was dropped
            applied_before = list(consumer.applied)
            for i in range(20):
                leader.groups[0].propose(b"c%d" % i, pytest.fail)
            await cluster.wait_for(lambda: all(len(c.applied) >= 360
                                               for c in cluster.consumers.values()))
            assert consumer.applied[:len(applied_before)] == applied_before
            logs = {tuple(h.groups[0].journal[-50:]) for h in cluster.hosts.values()}
            assert len(logs) == 1
        finally:
            await cluster.stop()

    asyncio.run(main())
