"""An in-memory `ReplicatedLog` for shell tests: nothing commits until the test says so.

Not a test module. `SimLog` is one replica's view of a simulated Raft group: proposals from its
owner wait in `proposed` until `commit()` applies them (in log order) to every replica's
consumer; `after_durable` callbacks wait in `durable_waiting` until `sync()` runs them, so a
test can show that nothing is answered before the write-ahead log is synced (I1). Leadership
is set by the test with `set_leader`, which notifies the consumer as pysyncobj would.
"""

from __future__ import annotations

from collections.abc import Callable

from raftflow.raftlog import limits
from raftflow.raftlog.interface import LogConsumer, LogStatus, NodeId, ShardId


class SimGroup:
    """The committed log shared by the replicas of one simulated group."""

    def __init__(self, shard: int) -> None:
        self.shard = ShardId(shard)
        self.entries: list[bytes] = []
        self.replicas: list[SimLog] = []
        self.term = 0

    def replica(self, node_id: str, consumer: LogConsumer) -> SimLog:
        replica = SimLog(self, NodeId(node_id), consumer)
        self.replicas.append(replica)
        return replica

    def commit(self) -> int:
        """Commit everything proposed on any replica, applying it on every replica in order."""
        committed = 0
        for proposer in self.replicas:
            while proposer.proposed:
                data, _ = proposer.proposed.pop(0)
                self.entries.append(data)
                committed += 1
                for replica in self.replicas:
                    replica.consumer.apply_entry(len(self.entries), data)
        return committed

    def set_leader(self, node_id: str | None) -> None:
        """Elect `node_id` (or nobody) in a new term; each replica learns its role."""
        self.term += 1
        for replica in self.replicas:
            was = replica.leading
            replica.leading = replica.node_id == node_id
            if was or replica.leading:
                replica.consumer.on_leadership(replica.leading, self.term)


class SimLog:
    def __init__(self, group: SimGroup, node_id: NodeId, consumer: LogConsumer) -> None:
        self.group = group
        self.node_id = node_id
        self.consumer = consumer
        self.leading = False
        self.proposed: list[tuple[bytes, Callable[[str], None]]] = []
        self.durable_waiting: list[Callable[[], None]] = []
        self.auto_sync = False

    @property
    def shard(self) -> ShardId:
        return self.group.shard

    def propose(self, data: bytes, on_failed: Callable[[str], None]) -> None:
        assert len(data) <= limits.PROPOSAL_BYTES_MAX, len(data)  # as the real RaftGroup does
        if not self.leading:
            on_failed("not_leader")
            return
        self.proposed.append((data, on_failed))

    def fail_proposals(self, reason: str) -> None:
        proposed, self.proposed = self.proposed, []
        for _, on_failed in proposed:
            on_failed(reason)

    def after_durable(self, callback: Callable[[], None]) -> None:
        if self.auto_sync:
            callback()
        else:
            self.durable_waiting.append(callback)

    def sync(self) -> int:
        waiting, self.durable_waiting = self.durable_waiting, []
        for callback in waiting:
            callback()
        return len(waiting)

    def is_leader(self) -> bool:
        return self.leading

    def leader(self) -> NodeId | None:
        for replica in self.group.replicas:
            if replica.leading:
                return replica.node_id
        return None

    def status(self) -> LogStatus:
        index = len(self.group.entries)
        return LogStatus(shard=self.shard, is_leader=self.leading, leader=self.leader(),
                         term=self.group.term, commit_index=index, applied_index=index,
                         last_index=index + len(self.proposed),
                         members=tuple(r.node_id for r in self.group.replicas))
