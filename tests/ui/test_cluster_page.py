"""The cluster page on a live 3-node cluster.

Goal: the page shows every node (state, liveness, replicas, leaders) and every shard (leader,
term, commit index, replica lag) as the cluster status API reports them; drain asks first and
a dismissed confirmation drains nothing.
Method: headless Chromium on one node's /ui/, compared with GET /api/v1/cluster/status.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By

from raftflow.cluster.launcher import LocalCluster
from tests.ui.pages import click, confirm, wait_for, wait_text
from tests.ui.scenario import ok

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")


def test_the_cluster_page_shows_every_node_and_shard(cluster: LocalCluster, browser: Any,
                                                      screenshot: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    status = ok(base, "GET", "/api/v1/cluster/status")
    browser.get(base + "/ui/#/cluster")
    wait_for(browser, lambda b: len(b.find_elements(By.CSS_SELECTOR, "tr.shard-row"))
             == len(status["shards"]) and len(b.find_elements(By.CSS_SELECTOR, "tr.node-row"))
             == len(cluster.node_ids), "every node and shard")
    for node in status["nodes"]:
        row = wait_text(browser, f"#node-{node['id']}", node["id"], node["address"], "active",
                        "up")
        assert f" {node['replicas']} " in f" {row} "
    for shard in status["shards"]:
        assert shard["leader"] is not None
        row = wait_text(browser, f"#shard-{shard['shard']}", shard["leader"])
        cells = wait_for(browser, lambda b, s=shard["shard"]: [
            c.text for c in b.find_elements(By.CSS_SELECTOR, f"#shard-{s} td")], "cells")
        assert cells[0] == str(shard["shard"]) and cells[1] == shard["leader"], row
        assert int(cells[2]) >= shard["term"] and int(cells[3]) >= shard["commit_index"]
        assert sorted(cells[4].split(", ")) == sorted(shard["replicas"])
        assert all(f"{r}: " in cells[5] for r in shard["replicas"])
    wait_text(browser, "#no-moves", "None.")
    screenshot("cluster")

    click(browser, ".drain-button")
    confirm(browser, accept=False)
    after = ok(base, "GET", "/api/v1/cluster/status")
    assert [n["state"] for n in after["nodes"]] == ["active"] * len(cluster.node_ids)
