"""`raftflow dev` (and so `make run`) prints the UI's URL, and that URL serves the UI.

Method: a real `raftflow dev` process on free loopback ports; its output read line by line
until the UI line; the page and one module fetched; the process always stopped.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from raftflow.cluster.launcher import free_port_block

# One pytest-xdist worker runs the UI tests: they share one cluster and one browser
# (conftest.py, package scope).
pytestmark = pytest.mark.xdist_group("ui")

READY_WAIT_S = 60
UI_LINE = re.compile(r"^\s+UI: (http://127\.0\.0\.1:\d+/ui/)$")


def test_dev_prints_a_ui_url_that_serves_the_ui(tmp_path: Path) -> None:
    port = free_port_block(2, random.Random())
    process = subprocess.Popen(
        [sys.executable, "-m", "raftflow", "dev", "--nodes", "2", "--data-dir", str(tmp_path),
         "--http-port", str(port), "--shards", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + READY_WAIT_S
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "dev exited before it printed the UI"
            found = UI_LINE.match(line.rstrip("\n"))
            url = found.group(1) if found else None
        assert url == f"http://127.0.0.1:{port}/ui/"
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.headers["Content-Type"].startswith("text/html")
            assert b'<script type="module" src="/ui/app.js">' in page.read()
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        with urllib.request.urlopen(url + "app.js", timeout=10) as module:
            assert module.headers["Content-Type"].startswith("text/javascript")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
