"""More of one workflow's page on a live 3-node cluster: a parent and its child link to each
other (the child listed open, then closed), a signal and a reset sent from the page, the history downloaded as JSON.

Method: the test plays the worker over HTTP (scenario.py), drives the page in headless
Chromium and checks every outcome through the API.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from raftflow.cluster.launcher import LocalCluster
from tests.ui.pages import click, confirm, element, wait_for, wait_text
from tests.ui.scenario import NS, complete_first_task, ok, wait_described

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")


def _fill(browser: Any, field: str, text: str) -> None:
    box = element(browser, f"#confirm-dialog[open] #confirm-field-{field}")
    box.clear()
    box.send_keys(text)


def _complete_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except ValueError:
        return False
    return True


def test_a_parent_and_its_child_link_to_each_other(cluster: LocalCluster,
                                                   browser: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    tag = uuid.uuid4().hex[:6]
    parent, kid = f"ui-parent-{tag}", f"ui-kid-{tag}"
    complete_first_task(base, parent, "UiParent", f"ui-family-{tag}", [
        {"type": "StartChildWorkflowExecution", "workflow_id": kid, "workflow_type": "UiKid",
         "parent_close_policy": "abandon"}])
    described = wait_described(base, parent, lambda d: d["pending_children"]
                               and d["pending_children"][0]["run_id"])
    kid_run = described["pending_children"][0]["run_id"]

    browser.get(f"{base}/ui/#/ns/default/workflows/{parent}")
    wait_text(browser, "#children", kid, "UiKid", kid_run, "RUNNING", "abandon")
    assert f"child UiKid {kid}" in wait_text(browser, "#timeline", "child")
    click(browser, "#children a")
    wait_text(browser, "#summary", kid, kid_run, "UiKid", f"{parent} / ")
    click(browser, "#summary dd a")  # the parent link
    wait_text(browser, "#summary", parent, "UiParent")
    # A closed child stays listed, with the outcome the parent's history recorded.
    ok(base, "POST", f"{NS}/workflows/{kid}/terminate", {"reason": "enough"})
    wait_text(browser, "#children", kid, "TERMINATED")
    assert "0 open" in wait_text(browser, "#workflow-body h3", "Children")


def test_signal_reset_and_download_from_the_page(cluster: LocalCluster, browser: Any) -> None:
    base = cluster.address(cluster.node_ids[0])
    workflow_id = f"ui-actions-{uuid.uuid4().hex[:6]}"
    first_run = complete_first_task(base, workflow_id, "UiActions", f"q-{workflow_id}", [])
    browser.get(f"{base}/ui/#/ns/default/workflows/{workflow_id}")
    wait_text(browser, "#summary", first_run)

    click(browser, "#action-signal")
    _fill(browser, "signal_name", "approve")
    _fill(browser, "input", '{"by": "ui"}')
    confirm(browser, accept=True)
    wait_text(browser, "#history-table", "WorkflowExecutionSignaled", "signal_name: approve")
    events = ok(base, "GET", f"{NS}/workflows/{workflow_id}/history")["events"]
    signaled = [e for e in events if e["event_type"] == "WorkflowExecutionSignaled"]
    assert [(s["attributes"]["signal_name"], s["attributes"]["input"]) for s in signaled] == [
        ("approve", {"by": "ui"})]

    # The download is the history as the API pages it: the file Chromium saved.
    click(browser, "#download-history")
    saved = browser.raftflow_downloads / f"{workflow_id}-{first_run}-history.json"
    wait_for(browser, lambda b: saved.exists(), f"{saved} to be saved")
    wait_for(browser, lambda b: _complete_json(saved), f"{saved} to be complete")
    shown = ok(base, "GET", f"{NS}/workflows/{workflow_id}/history?run_id={first_run}")
    assert json.loads(saved.read_text()) == {"events": shown["events"]}

    click(browser, "#action-reset")
    confirm(browser, accept=True)  # no event id: the last completed workflow task
    wait_for(browser, lambda b: b.find_element(By.ID, "run-id").text not in ("", first_run),
             "the new run's page")
    new_run = element(browser, "#run-id").text
    assert ok(base, "GET", f"{NS}/workflows/{workflow_id}")["run_id"] == new_run
    old = ok(base, "GET", f"{NS}/workflows/{workflow_id}?run_id={first_run}")
    assert old["status"] == "TERMINATED" and new_run in old["reason"]
    wait_text(browser, "#history-table", "WorkflowTaskFailed")
