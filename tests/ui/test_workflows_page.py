"""The workflows page on a live 3-node cluster.

Goal: a started workflow shows up in the list; the query box filters by the visibility query;
the status counts and pages follow the API's answers.
Method: workflows started over HTTP on task queues of each test's own, the page driven in
headless Chromium (conftest.py) with explicit waits; a screenshot for docs/ui.md.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from raftflow.cluster.launcher import LocalCluster
from tests.ui.pages import click, element, enabled, wait_for, wait_text
from tests.ui.scenario import NS, call, start

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")


def _base(cluster: LocalCluster) -> str:
    return cluster.address(cluster.node_ids[0])


def test_the_list_shows_a_started_workflow_and_the_query_box_filters(
        cluster: LocalCluster, browser: Any, screenshot: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    order, invoice = f"order-{tag}", f"invoice-{tag}"
    start(_base(cluster), order, "UiOrder", f"ui-list-{tag}", {"item": "book"})
    start(_base(cluster), invoice, f"UiInvoice{tag}", f"ui-list-{tag}")
    # Another node than the one started on: any node serves the UI and the whole list.
    browser.get(cluster.address(cluster.node_ids[1]) + "/ui/")
    wait_text(browser, "#workflows-table", order, invoice)
    assert "UiOrder" in element(browser, "#workflows-table").text
    screenshot("workflows")
    # Auto-refresh: a run started after the page loaded appears without a reload.
    late = f"late-{tag}"
    start(_base(cluster), late, "UiOrder", f"ui-list-{tag}")
    wait_text(browser, "#workflows-table", late, order, invoice)

    box = element(browser, "#query-input")
    box.clear()
    box.send_keys(f"WorkflowType = 'UiInvoice{tag}'")
    click(browser, "#query-apply")
    wait_for(browser, lambda b: order not in b.find_element(By.ID, "workflow-list").text
             and late not in b.find_element(By.ID, "workflow-list").text
             and invoice in b.find_element(By.ID, "workflow-list").text, "the filtered list")
    assert f"WorkflowType+%3D+%27UiInvoice{tag}%27" in browser.current_url  # bookmarkable
    wait_text(browser, "#count-all", "All 1")
    wait_text(browser, "#count-RUNNING", "RUNNING 1")
    wait_text(browser, "#count-COMPLETED", "COMPLETED 0")


def test_pages_and_the_status_filter(cluster: LocalCluster, browser: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    queue = f"ui-pages-{tag}"
    ids = [f"paged-{tag}-{i}" for i in range(3)]
    for workflow_id in ids:
        start(_base(cluster), workflow_id, "UiPaged", queue)
    browser.get(f"{_base(cluster)}/ui/#/ns/default/workflows?query=TaskQueue+%3D+%27{queue}%27"
                "&page_size=2")
    first = wait_text(browser, "#workflows-table", ids[2], ids[1])  # newest first
    assert ids[0] not in first
    wait_for(browser, lambda b: b.find_element(By.ID, "page-next").is_enabled(), "Next")
    click(browser, "#page-next")
    second = wait_text(browser, "#workflows-table", ids[0])
    assert ids[1] not in second and ids[2] not in second
    wait_text(browser, "#page-number", "page 2")
    assert not enabled(browser, "#page-next")
    click(browser, "#page-prev")
    wait_text(browser, "#workflows-table", ids[2], ids[1])

    click(browser, "#count-COMPLETED")  # a count is also the status filter
    wait_text(browser, "#no-workflows", "No workflows match.")
    assert "status=COMPLETED" in browser.current_url


def test_a_bad_query_shows_the_apis_message(cluster: LocalCluster, browser: Any) -> None:
    browser.get(f"{_base(cluster)}/ui/#/ns/default/workflows")
    box = element(browser, "#query-input")
    box.clear()
    box.send_keys("WorkflowType = ")
    click(browser, "#query-apply")
    shown = wait_text(browser, "#list-message", "position")
    status, answer = call(_base(cluster), "GET",
                          f"{NS}/workflows?query=WorkflowType%20%3D")  # the box is trimmed
    assert status == 400 and answer["error"]["message"] in shown
