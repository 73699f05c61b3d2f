"""One workflow's page on a live 3-node cluster.

Goal: the page shows the run's summary, input, history (rows expand to their attributes) and
what it waits on — a pending activity with its attempt, last failure and heartbeat details, a
pending timer; a terminate from the page, once confirmed, terminates the run, and a dismissed
confirmation changes nothing.
Method: the test plays the worker over HTTP (scenario.py) so it knows the exact state, then
drives the page in headless Chromium and checks the outcome through the API.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By

from raftflow.cluster.launcher import LocalCluster
from tests.ui.pages import click, confirm, displayed, element, enabled, wait_text
from tests.ui.scenario import NS, charge_with_a_retry, ok

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")


def test_history_pending_activity_and_a_confirmed_terminate(
        cluster: LocalCluster, browser: Any, screenshot: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    workflow_id = f"ui-order-{uuid.uuid4().hex[:6]}"
    charge_with_a_retry(base, workflow_id, f"ui-q-{workflow_id}")
    browser.get(f"{cluster.address(cluster.node_ids[2])}/ui/#/ns/default/workflows/"
                f"{workflow_id}")

    wait_text(browser, "#summary", workflow_id, "Order", "RUNNING")
    assert '"quantity": 2' in element(browser, "#workflow-input").text
    activity = wait_text(browser, "#pending-activities", "charge", "ChargeCard", "STARTED",
                         "2 of 5", "CardDeclined: card declined", '"progress": 50')
    assert "ui-test-worker" in activity
    wait_text(browser, "#pending-timers", "reminder")
    history = wait_text(browser, "#history-table", "WorkflowExecutionStarted",
                        "ActivityTaskScheduled", "TimerStarted")
    assert history.count("\n") >= 6
    assert not displayed(browser, "#event-detail-5")
    click(browser, "#event-5")  # ActivityTaskScheduled
    wait_text(browser, "#event-detail-5", '"activity_id": "charge"', '"maximum_attempts": 5')
    assert "timer reminder" in element(browser, "#timeline").text
    screenshot("workflow")

    click(browser, "#action-cancel")
    confirm(browser, accept=False)
    assert ok(base, "GET", f"{NS}/workflows/{workflow_id}")["status"] == "RUNNING"

    click(browser, "#action-terminate")
    confirm(browser, accept=True)
    wait_text(browser, "#workflow-status", "TERMINATED")
    wait_text(browser, "#history-table", "WorkflowExecutionTerminated")
    described = ok(base, "GET", f"{NS}/workflows/{workflow_id}")
    assert described["status"] == "TERMINATED"
    assert described["reason"] == "terminated from the UI"
    assert described["pending_activities"] == [] and described["pending_timers"] == []
    assert not enabled(browser, "#action-terminate")


def test_user_data_is_shown_as_text_never_as_markup(cluster: LocalCluster,
                                                    browser: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    workflow_id = f"<img src=x id=injected>{uuid.uuid4().hex[:6]}"
    started = ok(base, "POST", f"{NS}/workflows", {
        "workflow_id": workflow_id, "workflow_type": "<b id=bold>T</b>", "task_queue": "q",
        "input": {"html": "<script id=evil>alert(1)</script>"}})
    browser.get(f"{base}/ui/#/ns/default/workflows?query=WorkflowId+%3D+%27"
                f"{quote(workflow_id, safe='')}%27")
    wait_text(browser, "#workflows-table", workflow_id, "<b id=bold>T</b>")
    click(browser, ".workflow-link")
    wait_text(browser, "#summary", started["run_id"], workflow_id)
    wait_text(browser, "#workflow-input", "<script id=evil>")
    assert browser.find_elements(By.CSS_SELECTOR, "#injected, #bold, #evil") == []
