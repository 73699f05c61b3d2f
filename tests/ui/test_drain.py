"""Draining a node from the cluster page, on a live 4-node cluster of its own.

Goal: Drain asks first, then the node turns `draining` on the page, the replica moves in
progress are shown while they run, and the page ends with the node holding no replica and
leading no shard, as the cluster status API reports it.
Method: a 4-node cluster (so three others can hold every shard's replicas), headless Chromium
on another node's /ui/#/cluster, the outcome read from GET /api/v1/cluster/status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from raftflow.cluster.launcher import LocalCluster
from tests.live_cluster import running
from tests.ui.pages import click, confirm, wait_for, wait_text
from tests.ui.scenario import ok

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")

DRAIN_WAIT_S = 120.0
DRAINED = "node-4"


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # Not waited balanced: the drain moves leaders anyway, and the test waits for its own ends.
    with running(tmp_path_factory, "ui-drain", nodes=4, shards=4, balanced=False) as cluster:
        yield cluster


def test_drain_from_the_cluster_page(four: LocalCluster, browser: Any,
                                     screenshot: Any) -> None:
    base = four.address(four.node_ids[0])
    before = {n["id"]: n for n in ok(base, "GET", "/api/v1/cluster/status")["nodes"]}
    assert before[DRAINED]["replicas"] > 0, before
    browser.get(base + "/ui/#/cluster")
    wait_text(browser, f"#node-{DRAINED}", DRAINED, "active")
    click(browser, f"#node-{DRAINED} .drain-button")
    confirm(browser, accept=True)
    wait_text(browser, "#cluster-message", f"Draining {DRAINED}")
    wait_text(browser, f"#node-{DRAINED}", "draining")

    deadline = time.monotonic() + DRAIN_WAIT_S
    while True:
        status = ok(base, "GET", "/api/v1/cluster/status")
        node = next(n for n in status["nodes"] if n["id"] == DRAINED)
        if status["moves"] and not browser.find_elements(By.ID, "screenshot-taken"):
            # A move in progress: the page lists it (it may end before the page refreshes).
            shown = wait_text(browser, "#cluster-body", "Moves in progress")
            if "Learner" in shown:
                screenshot("cluster-drain", at="#shards-table")
                browser.execute_script("document.body.append(Object.assign("
                                       "document.createElement('i'), {id: 'screenshot-taken'}))")
        if node["replicas"] == 0 and node["leaders"] == 0 and not status["moves"]:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    # The page catches up: the node holds and leads nothing, no shard names it.
    wait_for(browser, lambda b: _cells(b, f"#node-{DRAINED}")[2:6] == [
        "draining", "up", "0", "0"], "the drained node's row")
    for shard in status["shards"]:
        wait_for(browser, lambda b, s=shard: _cells(b, f"#shard-{s['shard']}")[1] == s["leader"]
                 and DRAINED not in _cells(b, f"#shard-{s['shard']}")[4], "the shard's row")
        assert DRAINED not in shard["replicas"] and shard["leader"] != DRAINED
    wait_text(browser, "#no-moves", "None.")


def _cells(browser: Any, row: str) -> list[str]:
    return [c.text for c in browser.find_elements(By.CSS_SELECTOR, f"{row} td")]
