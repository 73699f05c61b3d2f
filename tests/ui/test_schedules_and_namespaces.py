"""The schedules pages (list, detail) and the namespaces page on a live 3-node cluster.

Goal: a schedule created over the API is listed with its spec and state, its page shows its
counters, the action it took (a link to the workflow it started) and its next times; the
namespaces page lists a namespace with its settings and search attributes.
Method: schedule and namespace created over HTTP, pages driven in headless Chromium.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from raftflow.cluster.launcher import LocalCluster
from tests.ui.pages import click, confirm, wait_text
from tests.ui.scenario import NS, ok

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")


def test_a_schedule_in_the_list_and_on_its_page(cluster: LocalCluster, browser: Any,
                                                screenshot: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    schedule_id = f"ui-report-{uuid.uuid4().hex[:6]}"
    ok(base, "POST", f"{NS}/schedules", {
        "schedule_id": schedule_id, "trigger_immediately": True, "schedule": {
            "spec": {"intervals": [{"every_ms": 3_600_000}]},
            "action": {"workflow_id": schedule_id, "workflow_type": "UiReport",
                       "task_queue": f"q-{schedule_id}"},
            "state": {"note": "made by the UI test"}}})
    browser.get(f"{cluster.address(cluster.node_ids[1])}/ui/#/ns/default/schedules")
    wait_text(browser, "#schedules-table", schedule_id, "UiReport", "every 1h 0m", "active")
    screenshot("schedules")

    click(browser, ".schedule-link")
    wait_text(browser, "#schedule-summary", "every 1h 0m", "UiReport", "made by the UI test")
    # The trigger's action: counted, and a link to the run it started.
    recent = wait_text(browser, "#recent-actions", f"{schedule_id}-")
    assert recent.count(schedule_id) == 1
    wait_text(browser, "#schedule-summary", "Actions\n1")
    assert len(wait_text(browser, "#next-times", "Z").splitlines()) == 10
    screenshot("schedule")

    click(browser, "#schedule-pause")
    confirm(browser, accept=True)
    wait_text(browser, "#schedule-summary", "paused", "paused from the UI")
    described = ok(base, "GET", f"{NS}/schedules/{schedule_id}")
    assert described["schedule"]["state"]["paused"] is True
    # A trigger is taken also while paused (docs/api.md); the first action still runs, so
    # the schedule's overlap policy (skip) skips it.
    click(browser, "#schedule-trigger")
    confirm(browser, accept=True)
    wait_text(browser, "#schedule-summary", "Skipped (overlap)\n1", "Actions\n1")
    click(browser, "#schedule-unpause")
    confirm(browser, accept=True)
    wait_text(browser, "#schedule-summary", "active")
    assert ok(base, "GET", f"{NS}/schedules/{schedule_id}")["schedule"]["state"].get(
        "paused") in (False, None)

    click(browser, "#recent-actions a")
    wait_text(browser, "#summary", "UiReport", f"{schedule_id}-")


def test_the_namespaces_page(cluster: LocalCluster, browser: Any, screenshot: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    name = f"ui-ns-{uuid.uuid4().hex[:6]}"
    ok(base, "POST", "/api/v1/namespaces", {"name": name, "retention_ms": 86_400_000,
                                            "description": "for the UI test",
                                            "start_rate_per_s": 50})
    ok(base, "POST", f"/api/v1/namespaces/{name}/search-attributes",
       {"name": "CustomerId", "type": "keyword"})
    browser.get(f"{base}/ui/#/namespaces")
    wait_text(browser, "#namespace-default", "default", "cluster default")
    wait_text(browser, f"#namespace-{name}", name, "for the UI test", "24h 0m", "50/s",
              "CustomerId (keyword)")
    screenshot("namespaces")
    click(browser, f"#namespace-{name} a")
    wait_text(browser, "main h2", f"Workflows in {name}")
