"""The UI on a cluster with auth on (`raftflow node --auth-tokens`, docs/security.md).

Goal: the UI asks for a token when the API answers 401, keeps it for the tab and sends it; a
wrong token is asked again with the API's message; what the token may not do is refused with
the API's message and changes nothing (a reader's terminate); signing out forgets the token.
Method: a second live 3-node cluster whose nodes take a TOML tokens file (an admin key and a
reader of `default`), headless Chromium, the outcome checked through the API as the admin.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from raftflow.cluster.launcher import LocalCluster, free_port_block, load_or_create_dev_config
from tests.ui.pages import click, confirm, element, wait_for, wait_text
from tests.ui.scenario import NS, ok

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")

ADMIN_KEY = "ui-admin-key"
READER_KEY = "ui-reader-key"
TOKENS = (f'[[token]]\nname = "admin"\nkey = "{ADMIN_KEY}"\nroles = ["admin"]\n\n'
          f'[[token]]\nname = "reader"\nkey = "{READER_KEY}"\nroles = ["reader:default"]\n')


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    data_dir: Path = tmp_path_factory.mktemp("ui-secured")
    tokens = data_dir / "tokens.toml"
    tokens.write_text(TOKENS)
    config = load_or_create_dev_config(data_dir, nodes=3, shards=4,
                                       http_port=free_port_block(3, random.Random()))
    cluster = LocalCluster(config, data_dir, node_args={
        n.id: ["--auth-tokens", str(tokens)] for n in config.nodes})
    cluster.start()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


def _sign_in(browser: Any, token: str) -> None:
    box = element(browser, "#token-dialog[open] #token-input")
    box.clear()
    box.send_keys(token)
    click(browser, "#token-ok")


def test_the_ui_asks_for_a_token_and_shows_what_it_allows(
        secured: LocalCluster, browser: Any, screenshot: Any) -> None:
    base = secured.address(secured.node_ids[0])
    workflow_id = f"secured-{uuid.uuid4().hex[:6]}"
    ok(base, "POST", f"{NS}/workflows", {"workflow_id": workflow_id, "workflow_type": "UiSecret",
                                         "task_queue": "secured-q"}, token=ADMIN_KEY)
    browser.get(f"{base}/ui/")
    element(browser, "#token-dialog[open]")
    wait_text(browser, "#list-message", "Authorization")  # the API's 401 message, behind it
    assert workflow_id not in element(browser, "main").text
    screenshot("sign-in")

    _sign_in(browser, "not-a-key")
    element(browser, "#token-dialog[open]")  # asked again, with the API's reason
    wait_text(browser, "#token-error", "not a key this cluster knows")
    _sign_in(browser, READER_KEY)
    wait_text(browser, "#workflows-table", workflow_id, "UiSecret")
    assert browser.execute_script("return sessionStorage.getItem('raftflow.token')") == READER_KEY

    # Another namespace's runs are not the reader's to see: the page shows the API's refusal.
    browser.get(f"{base}/ui/#/ns/billing/workflows")
    wait_text(browser, "#list-message", "'reader' may not make this call")
    assert not browser.find_elements("id", "workflows-table")

    # A reader may look but not terminate: the API's 403 is shown, the run goes on.
    browser.get(f"{base}/ui/#/ns/default/workflows/{workflow_id}")
    wait_text(browser, "#summary", workflow_id, "RUNNING")
    click(browser, "#action-terminate")
    confirm(browser, accept=True)
    wait_text(browser, "#action-message", "'reader' may not make this call")
    assert ok(base, "GET", f"{NS}/workflows/{workflow_id}", token=ADMIN_KEY)["status"] == \
        "RUNNING"

    click(browser, "#token-button")  # sign out: the token is forgotten, the UI asks again
    element(browser, "#token-dialog[open]")
    assert browser.execute_script("return sessionStorage.getItem('raftflow.token')") is None
    _sign_in(browser, ADMIN_KEY)
    wait_for(browser, lambda b: "RUNNING" in b.find_element("id", "summary").text, "summary")
