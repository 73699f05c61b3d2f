"""Goal: the Raft host reports its disk work to the node's metrics: every WAL round's write +
fdatasync (time and bytes, matching the host's own byte count), a WAL checkpoint when the WAL
outgrows its limit, and a group's snapshot.

Method: a one-node Raft group on loopback (tests/raftlog/harness.py) whose host is given the
node's `LogMetrics` as observer; entries are proposed and applied, log compaction is forced,
and the WAL checkpoint limit is lowered so that a round checkpoints. Samples are read back
from the registry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from raftflow.api.metrics_cluster import LogMetrics
from raftflow.raftlog import limits
from raftflow.raftlog.host import RaftHost
from raftflow.raftlog.interface import ShardId
from tests.raftlog.harness import ListConsumer, free_ports


def test_wal_rounds_checkpoints_and_snapshots_are_observed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    metrics = LogMetrics(registry)

    def value(name: str) -> float:
        return registry.get_sample_value(name) or 0.0

    async def main() -> None:
        (port,) = free_ports(1)
        host = RaftHost(node_id="n0", data_dir=str(tmp_path / "n0"), listen=("127.0.0.1", port),
                        peers={}, secret=b"s", observer=metrics)
        await host.start()
        consumer = ListConsumer()
        group = host.add_group(ShardId(0), ["n0"], consumer)
        try:
            for _ in range(500):
                if group.is_leader():
                    break
                await asyncio.sleep(0.01)
            for i in range(50):
                group.propose(b"e%d" % i, pytest.fail)
            for _ in range(500):
                if len(consumer.applied) >= 50:
                    break
                await asyncio.sleep(0.01)
            assert len(consumer.applied) >= 50
            assert value("raftflow_wal_fsync_duration_seconds_count") >= 1
            assert value("raftflow_wal_written_bytes_total") == host.stats.wal_bytes > 0

            group._sync.forceLogCompaction()
            for _ in range(500):
                if value("raftflow_snapshot_duration_seconds_count") >= 1:
                    break
                await asyncio.sleep(0.01)
            assert value("raftflow_snapshot_duration_seconds_count") >= 1

            monkeypatch.setattr(limits, "WAL_CHECKPOINT_BYTES", 1)  # the next round rewrites
            group.propose(b"after", pytest.fail)
            for _ in range(500):
                if value("raftflow_wal_checkpoint_duration_seconds_count") >= 1:
                    break
                await asyncio.sleep(0.01)
            assert value("raftflow_wal_checkpoint_duration_seconds_count") >= 1
        finally:
            await host.stop()

    asyncio.run(main())
