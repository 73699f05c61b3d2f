"""Writes the data-dir upgrade fixture with the release checked out where this runs.

Run once, from a checkout of the release the fixture stands for (here: the last commit before
the msgspec vocabulary), with that checkout first on PYTHONPATH:

    PYTHONPATH=<old checkout> python tests/upgrade/make_upgrade_fixture.py OUT_DIR

It starts a 3-node, 4-shard dev cluster in OUT_DIR, runs the workflows of
`upgrade_workflows.py` into every state a run can be in (completed, failed, terminated,
canceled, running with signals, an activity scheduled for a queue nobody polls, a pending
timer), waits for every shard to write a snapshot, writes more after it (so a restart needs
both the snapshot and the log tail), records every run's description and history as the old
release renders them (`expected.json`), and stops the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import upgrade_workflows as uw  # noqa: E402

from raftflow.cluster.launcher import (  # noqa: E402
    LocalCluster,
    free_port_block,
    load_or_create_dev_config,
)
from raftflow.sdk import Client, Worker  # noqa: E402

SNAPSHOT_WAIT_S = 130.0  # raftlog snapshots every 120 s at the latest
SLEEPER_S = 45.0  # pending when the cluster stops, overdue when the test resumes it


def _get(address: str, path: str) -> Any:
    with urllib.request.urlopen(address + path, timeout=10) as answer:
        return json.loads(answer.read())


async def _before_snapshot(client: Client) -> None:
    assert await client.execute_workflow(uw.UpgradeEcho, "echo one", id="echo-1",
                                         task_queue=uw.TASK_QUEUE) == "ECHO ONE"
    fails = await client.start_workflow(uw.UpgradeFails, "x", id="fails-1",
                                        task_queue=uw.TASK_QUEUE)
    with contextlib.suppress(Exception):  # the workflow fails on purpose
        await fails.result()
    waiter = await client.start_workflow(uw.UpgradeWaiter, "first", id="waiter-1",
                                         task_queue=uw.TASK_QUEUE)
    await waiter.signal(uw.UpgradeWaiter.go, "a")
    doomed = await client.start_workflow(uw.UpgradeWaiter, "doomed", id="waiter-2",
                                         task_queue=uw.TASK_QUEUE)
    await doomed.terminate("fixture")
    done = await client.start_workflow(uw.UpgradeWaiter, "done", id="waiter-3",
                                       task_queue=uw.TASK_QUEUE)
    await done.signal(uw.UpgradeWaiter.go, "stop")
    assert await done.result() == ["done", "stop"]


async def _after_snapshot(client: Client) -> None:
    assert await client.execute_workflow(uw.UpgradeEcho, "echo two", id="echo-2",
                                         task_queue=uw.TASK_QUEUE) == "ECHO TWO"
    await client.get_workflow_handle("waiter-1").signal(uw.UpgradeWaiter.go, "b")
    await client.start_workflow(uw.UpgradeLateActivity, "late", id="late-1",
                                task_queue=uw.TASK_QUEUE)
    await client.start_workflow(uw.UpgradeSleeper, SLEEPER_S, id="sleeper-1",
                                task_queue=uw.TASK_QUEUE)
    canceled = await client.start_workflow(uw.UpgradeWaiter, "canceled", id="waiter-4",
                                           task_queue=uw.TASK_QUEUE)
    await canceled.cancel("fixture")
    await asyncio.sleep(2.0)  # let the worker answer the last workflow tasks


async def _drive(addresses: list[str]) -> None:
    async with await Client.connect(addresses) as client:
        worker = Worker(client, task_queue=uw.TASK_QUEUE, workflows=uw.WORKFLOWS,
                        activities=[uw.upper])
        async with worker:
            await _before_snapshot(client)
            await asyncio.sleep(SNAPSHOT_WAIT_S)
            await _after_snapshot(client)


def main(out_dir: Path) -> None:
    data_dir = out_dir / "data"
    config = load_or_create_dev_config(data_dir, nodes=3, shards=4,
                                       http_port=free_port_block(3, random.Random()))
    cluster = LocalCluster(config, data_dir)
    cluster.start()
    try:
        cluster.wait_ready()
        time.sleep(3.0)  # preferred leaders take over ~2 s after start
        addresses = [cluster.address(n) for n in cluster.node_ids]
        asyncio.run(_drive(addresses))
        expected: dict[str, Any] = {}
        for workflow_id in ("echo-1", "fails-1", "waiter-1", "waiter-2", "waiter-3",
                            "echo-2", "late-1", "sleeper-1", "waiter-4"):
            base = f"/api/v1/namespaces/default/workflows/{workflow_id}"
            expected[workflow_id] = {"describe": _get(addresses[0], base),
                                     "history": _get(addresses[0], base + "/history")}
        (out_dir / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
    finally:
        cluster.stop()
    for log in data_dir.glob("*.log"):
        log.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
