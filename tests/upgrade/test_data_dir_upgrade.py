"""A data dir written by an earlier release starts on the current code with every workflow intact.

Goal: an operator who upgrades keeps every workflow: closed runs read back as they were, running
runs go on from where they stopped, and overdue durable timers fire.

Method: `tests/data/upgrade-v0.1/` was written by the release before the msgspec vocabulary
(`make_upgrade_fixture.py`, run from that release): a 3-node, 4-shard dev cluster's data dir,
with per-shard snapshots plus a log tail after them, and `expected.json`, every run's
description and history as that release rendered them over HTTP. The test copies the data dir
into a temp dir, starts a cluster on it with the current code, compares every run's HTTP
description and history with the recorded ones, then runs a worker and finishes the running
workflows (a signal, an activity on a queue nobody polled before, an overdue timer).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config
from raftflow.sdk import Client, Worker
from tests.protocol.recorded_histories import with_added_fields
from tests.upgrade import upgrade_workflows as uw

FIXTURE = Path(__file__).parent.parent / "data" / "upgrade-v0.1"
CLOSED = ("echo-1", "fails-1", "waiter-2", "waiter-3", "echo-2", "waiter-4")
RUNNING = ("waiter-1", "late-1", "sleeper-1")
RESULT_WAIT_S = 60.0
READ_RETRY_S = 30.0


def _get(address: str, path: str) -> Any:
    """GET as a client does: a 503 (a shard's leader changing, as it may just after the cluster
    came up on a loaded machine) is retried after its Retry-After, for up to READ_RETRY_S."""
    deadline = time.monotonic() + READ_RETRY_S
    while True:
        try:
            with urllib.request.urlopen(address + path, timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(float(error.headers.get("Retry-After") or 1))


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return dict(json.loads((FIXTURE / "expected.json").read_text()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    data_dir = tmp_path_factory.mktemp("upgrade") / "data"
    shutil.copytree(FIXTURE / "data", data_dir)
    stored = json.loads((data_dir / "dev-cluster.json").read_text())
    config = load_or_create_dev_config(data_dir, nodes=3, shards=4,
                                       http_port=free_port_block(3, random.Random()))
    assert (config.cluster_id, config.secret) == (stored["cluster_id"], stored["secret"])
    _move_ports(data_dir, config.to_dict()["nodes"])
    local = LocalCluster(config, data_dir)
    local.start()
    try:
        local.wait_ready()
        yield local
    finally:
        local.stop()


def _move_ports(data_dir: Path, nodes: list[dict[str, Any]]) -> None:
    """Give the copied cluster this run's free ports. A node keeps its membership in its own
    data dir (`cluster.json`), so the fixture's recorded ports would be used otherwise and
    could be taken on this machine; the rewrite stands for an operator who kept the ports."""
    ports = {node["id"]: (node["http_port"], node["raft_port"]) for node in nodes}
    for path in data_dir.glob("node-*/cluster.json"):
        membership = json.loads(path.read_text())
        for node in membership["nodes"]:
            node["http_port"], node["raft_port"] = ports[node["id"]]
        path.write_text(json.dumps(membership, indent=2, sort_keys=True))


def _workflow(cluster: LocalCluster, workflow_id: str, suffix: str = "") -> Any:
    address = cluster.address(cluster.node_ids[0])
    return _get(address, f"/api/v1/namespaces/default/workflows/{workflow_id}{suffix}")


def test_fixture_has_snapshots_and_a_log_tail() -> None:
    # Both restart paths must be exercised: state from a snapshot, then the log after it.
    data = FIXTURE / "data"
    for node in ("node-1", "node-2", "node-3"):
        assert len(list((data / node / "snapshots").glob("shard-*.snapshot"))) == 4
        assert (data / node / "raft" / "raft.wal").stat().st_size > 0


# Fields the describe answer gained after the fixture was recorded, with the value every run
# of the old release reads back with. Anything else added or changed still fails the test.
ADDED_SINCE_RECORDING: dict[str, Any] = {
    "search_attributes": {}, "pending_activities": [], "pending_timers": [],
    "pending_children": [], "parent": None}


@pytest.mark.parametrize("workflow_id", CLOSED)
def test_closed_runs_read_back_unchanged(cluster: LocalCluster, expected: dict[str, Any],
                                         workflow_id: str) -> None:
    described = _workflow(cluster, workflow_id)
    added = {name: described.pop(name) for name in ADDED_SINCE_RECORDING if name in described}
    assert added == ADDED_SINCE_RECORDING
    assert described == expected[workflow_id]["describe"]
    assert _workflow(cluster, workflow_id, "/history") == _as_rendered_now(
        expected[workflow_id]["history"])


def _as_rendered_now(history: dict[str, Any]) -> dict[str, Any]:
    """A recorded history with the event fields added since (recorded_histories.py)."""
    return {**history, "events": [with_added_fields(e) for e in history["events"]]}


def test_running_runs_go_on(cluster: LocalCluster, expected: dict[str, Any]) -> None:
    for workflow_id in RUNNING:
        described = _workflow(cluster, workflow_id)
        assert described["run_id"] == expected[workflow_id]["describe"]["run_id"]
        # Histories only grow: the overdue timer may have fired since the start.
        recorded = _as_rendered_now(expected[workflow_id]["history"])["events"]
        now = _workflow(cluster, workflow_id, "/history")["events"]
        assert now[:len(recorded)] == recorded
    results = asyncio.run(_finish_running([cluster.address(n) for n in cluster.node_ids]))
    assert results == {"waiter-1": ["first", "a", "b", "stop"], "late-1": "LATE",
                       "sleeper-1": "woke", "fresh-1": "FRESH"}


async def _finish_running(addresses: list[str]) -> dict[str, Any]:
    async with await Client.connect(addresses) as client:
        main = Worker(client, task_queue=uw.TASK_QUEUE, workflows=uw.WORKFLOWS,
                      activities=[uw.upper])
        late = Worker(client, task_queue=uw.LATE_QUEUE, activities=[uw.upper])
        async with main, late:
            await client.get_workflow_handle("waiter-1").signal(uw.UpgradeWaiter.go, "stop")
            fresh = await client.start_workflow(uw.UpgradeEcho, "fresh", id="fresh-1",
                                                task_queue=uw.TASK_QUEUE)
            handles = {workflow_id: client.get_workflow_handle(workflow_id)
                       for workflow_id in RUNNING}
            handles["fresh-1"] = fresh
            return {workflow_id: await asyncio.wait_for(handle.result(), RESULT_WAIT_S)
                    for workflow_id, handle in handles.items()}
