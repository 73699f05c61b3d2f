"""`raftflow dev` and `raftflow cluster status` as a user runs them.

Goal: the contract of the dev command — node i on HTTP port P+i, a line containing "ready" once
every shard has a leader, exit 0 on SIGTERM, and all state recovered when started again on the
same data dir — the JSON shape of `raftflow cluster status --json`, and the cluster's default
rate limit handed to the nodes (`--default-start-rate`), which a namespace's own
(`raftflow namespace create --start-rate`) replaces.
Method: run the real commands as subprocesses on free loopback ports; stop them by their PID.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from raftflow.cluster.launcher import free_port_block

# The cluster's default start limit: 0.1/s on each of the 3 nodes, a burst of one start, so a
# second start right after the first on the same node is refused on any machine.
DEFAULT_START_RATE = "0.3"


def _start_dev(data_dir: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "raftflow", "dev", "--nodes", "3", "--data-dir", str(data_dir),
         "--http-port", str(port), "--shards", "4", "--default-start-rate", DEFAULT_START_RATE],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "ready" in line:
            return process
        assert line or process.poll() is None, "dev exited before it was ready"
    process.kill()
    raise AssertionError("no ready line within 60 s")


def _stop_dev(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def _http(method: str, url: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


def _http_retrying_503(method: str, url: str) -> tuple[int, dict[str, object]]:
    """As docs/api.md tells clients: a 503 (a leadership moving just after the restart) is
    retried after its Retry-After, for at most 30 s; any other answer is the answer."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return _http(method, url)
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(float(error.headers.get("Retry-After") or 1))


def _raftflow(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftflow", *argv], capture_output=True,
                          text=True, timeout=60)


def _check_rate_limits(port: int) -> None:
    """`default` is under the nodes' default limit: its next start on the same node is a 429;
    a namespace with a limit of its own is not."""
    starts = f"http://127.0.0.1:{port + 2}/api/v1/namespaces/default/workflows"
    try:
        _http("POST", starts, {"workflow_id": "dev-2", "workflow_type": "T", "task_queue": "q"})
        raise AssertionError("a start beyond the default limit was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 429, error
        assert int(error.headers["Retry-After"]) >= 1
        assert json.loads(error.read())["error"]["code"] == "rate_limited"
    created = _raftflow("namespace", "create", "shop", "--start-rate", "1000", "--address",
                        f"http://127.0.0.1:{port}")
    assert created.returncode == 0, created.stderr
    assert "start rate:  1000/s" in created.stdout, created.stdout
    shop = f"http://127.0.0.1:{port + 2}/api/v1/namespaces/shop/workflows"
    # Node 3 applies shop's limit once its copy of the map has shop (a heartbeat or so); until
    # then shop is under the default, where these three starts would take 20 s.
    deadline = time.monotonic() + 10
    for index in range(3):
        while True:
            try:
                status, _ = _http("POST", shop, {"workflow_id": f"shop-{index}",
                                                 "workflow_type": "T", "task_queue": "q"})
                break
            except urllib.error.HTTPError as error:
                if error.code not in (429, 503) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 201


def test_dev_cluster_serves_stops_cleanly_and_recovers(tmp_path: Path) -> None:
    port = free_port_block(3, random.Random())
    process = _start_dev(tmp_path, port)
    try:
        status, started = _http("POST", f"http://127.0.0.1:{port + 2}/api/v1/namespaces/default/workflows",
                                {"workflow_id": "dev-1", "workflow_type": "T", "task_queue": "q"})
        assert status == 201
        _check_rate_limits(port)
        cli = subprocess.run(
            [sys.executable, "-m", "raftflow", "cluster", "status", "--address",
             f"http://127.0.0.1:{port + 1}", "--json"], capture_output=True, text=True, timeout=30)
        assert cli.returncode == 0, cli.stderr
        report = json.loads(cli.stdout)
        assert [n["address"] for n in report["nodes"]] == [f"http://127.0.0.1:{port + i}" for i in range(3)]
        assert all(n["alive"] and isinstance(n["pid"], int) for n in report["nodes"])
        assert [s["shard"] for s in report["shards"]] == [0, 1, 2, 3]
        for shard in report["shards"]:
            assert shard["leader"] in shard["replicas"] and len(shard["replicas"]) == 3
            assert shard["term"] >= 1 and shard["commit_index"] >= 1
    finally:
        assert _stop_dev(process) == 0
    again = _start_dev(tmp_path, port)
    try:
        status, described = _http_retrying_503(
            "GET", f"http://127.0.0.1:{port}/api/v1/namespaces/default/workflows/dev-1")
        assert status == 200 and described["run_id"] == started["run_id"]
    finally:
        assert _stop_dev(again) == 0
