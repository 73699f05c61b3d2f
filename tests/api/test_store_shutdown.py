"""Goal: a node that stops in order leaves every shard store it holds complete and closed
(`NodeRuntime.stop` → each replica's `StateMachine.close`): the file holds every applied
entry, not only those up to its last periodic commit, and no `-wal` file is left behind, so a
restart replays nothing and recovers no WAL.

Method: three in-process nodes (tests/api/gateway_harness.py) take a few starts, far fewer
than a store's commit interval (COMMIT_EVERY_ENTRIES), and stop once every replica applied
them. Each node's store files are
then opened directly: every replica's file must hold every run started on its shard. Without
the close on stop the files hold the state of their last commit, which predates the starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raftflow.cluster.ring import shard_for
from raftflow.shards.store.limits import COMMIT_EVERY_ENTRIES
from raftflow.shards.store.shard_store import ShardStore
from tests.api.gateway_harness import API, NS, Call, LiveCluster, _drive, _start_body, _wid

STARTS = 8
SHARDS = 4
APPLIED_WAIT_S = 10.0


def test_a_stopped_node_leaves_its_stores_complete_and_closed(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path_factory.mktemp("stop")
    cluster = LiveCluster(data_dir, 3, SHARDS)
    cluster.start()
    started: dict[str, int] = {}
    try:
        async def scenario(call: Call) -> None:
            for _ in range(STARTS):
                workflow_id = _wid("kept")
                status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                          json=_start_body(workflow_id))
                assert status == 201
                started[workflow_id] = shard_for(NS, workflow_id, SHARDS)

        _drive(cluster, cluster.url(cluster.nodes[0]), scenario)
        # A 201 means a majority has the start; the stop must keep what each replica
        # applied, so wait until every replica applied every start before stopping.
        cluster.run(cluster.wait_for(lambda: _applied_everywhere(cluster, started),
                                     APPLIED_WAIT_S), APPLIED_WAIT_S + 5)
    finally:
        cluster.stop()
    assert STARTS * 2 < COMMIT_EVERY_ENTRIES  # no periodic commit could have saved them

    for node in cluster.nodes:
        stores = data_dir / node.node_id / "stores"
        assert not list(stores.glob("*-wal")), sorted(p.name for p in stores.iterdir())
        for shard in range(SHARDS):
            path = stores / f"shard-{shard}.db"
            if not path.exists():
                continue  # this node holds no replica of the shard
            _check_store(path, shard, [w for w, s in started.items() if s == shard])


def _applied_everywhere(cluster: LiveCluster, started: dict[str, int]) -> bool:
    for node in cluster.nodes:
        for workflow_id, shard in started.items():
            actor = node.actor(shard)
            if actor is None or (NS, workflow_id) not in actor.state.open_runs:
                return False
    return True


def _check_store(path: Path, shard: int, workflow_ids: list[str]) -> None:
    store = ShardStore(str(path), shard, fresh=False)
    try:
        open_ids = {key[1] for key in store.state.open_runs}
        assert set(workflow_ids) <= open_ids, (path, workflow_ids, open_ids)
        assert store.log_index > 0
    finally:
        store.close()
