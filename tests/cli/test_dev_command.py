"""`raftflow dev` restarts node processes that die, so `kill -9` on a node is a fault drill.

Goal: (1) a SIGKILLed node is logged, restarted with a new pid and serves again, and workflows
started before the kill survive; (2) with `--no-restart` the death is logged and the node stays
dead; (3) the restart policy's back-off doubles from 0.5 s to a 10 s cap, starts over after a
run of 30 s, and gives up on exit code 2; the supervisor restarts only when due and never
during shutdown.
Method: (1) and (2) run the real command as a subprocess on free loopback ports with a temp
data dir, read its stdout on a thread, kill one node by the pid its `/api/v1/node/status`
reports (after checking that it is a child of the dev process) and always stop the command by
its PID. (3) drives `RestartPolicy` and `Supervisor` with explicit times and fake processes.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from raftflow.cluster.launcher import free_port_block
from raftflow.cluster.supervisor import (
    RESTART_DELAY_MAX_S,
    RESTART_DELAY_MIN_S,
    STABLE_UPTIME_S,
    DoNotRestart,
    NodeExit,
    RestartAfter,
    RestartPolicy,
    Supervisor,
)

# Generous: the suite runs on a shared 2-core VM.
READY_TIMEOUT_S = 60.0
LINE_TIMEOUT_S = 20.0
RECOVERY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
STAYS_DEAD_S = 3.0  # several times the first restart delay


@dataclass
class DevRun:
    """A running `raftflow dev` and every line it has printed so far."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def read_forever(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, pattern: str, timeout_s: float = LINE_TIMEOUT_S) -> re.Match[str]:
        """The first printed line matching `pattern` (a regex), waiting for it if need be."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                for line in self.lines:
                    if found := regex.search(line):
                        return found
                left_s = deadline - time.monotonic()
                if left_s <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no line matching {pattern!r}; got {self.lines}")
                self.changed.wait(min(left_s, 0.5))

    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)


class StartDev(Protocol):
    def __call__(self, nodes: int, shards: int, *flags: str) -> tuple[DevRun, int]: ...


@pytest.fixture
def start_dev(tmp_path: Path) -> Iterator[StartDev]:
    """Start `raftflow dev` until it is ready; every run is stopped by SIGTERM at teardown and
    must then exit with 0."""
    runs: list[DevRun] = []

    def start(nodes: int, shards: int, *flags: str) -> tuple[DevRun, int]:
        port = free_port_block(nodes, random.Random())
        process = subprocess.Popen(
            [sys.executable, "-m", "raftflow", "dev", "--nodes", str(nodes), "--shards",
             str(shards), "--data-dir", str(tmp_path), "--http-port", str(port), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        run = DevRun(process)
        runs.append(run)
        threading.Thread(target=run.read_forever, daemon=True).start()
        run.wait_for("stop with Ctrl-C", timeout_s=READY_TIMEOUT_S)
        return run, port

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
        try:
            returncode = run.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            nodes = _children(run.process.pid)  # in their own sessions: not killed with dev
            run.process.kill()
            run.process.wait()
            for pid in nodes:
                os.killpg(pid, signal.SIGKILL)
            raise
        assert returncode == 0, run.output()


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        return dict(json.loads(answer.read()))


def _node_pid(port: int) -> int:
    pid = _get(f"http://127.0.0.1:{port}/api/v1/node/status")["pid"]
    assert isinstance(pid, int)
    return pid


def _parent_pid(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent_pid(int(entry.name)) == pid:
                    children.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # exited while we looked
    return children


def _kill_node(run: DevRun, port: int) -> int:
    """SIGKILL the node serving `port`, after checking that `raftflow dev` started it."""
    pid = _node_pid(port)
    assert _parent_pid(pid) == run.process.pid, "refusing to kill a process dev did not start"
    os.kill(pid, signal.SIGKILL)
    return pid


def _eventually(read: Callable[[], dict[str, object]],
                timeout_s: float = RECOVERY_TIMEOUT_S) -> dict[str, object]:
    """What `read` returns once it stops failing with a connection or HTTP error."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read()
        except (OSError, urllib.error.URLError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_killed_node_is_restarted_and_serves_again(start_dev: StartDev) -> None:
    run, port = start_dev(3, 4)
    body = json.dumps({"workflow_id": "drill-1", "workflow_type": "T", "task_queue": "q"})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/namespaces/default/workflows",
                                     data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        run_id = json.loads(answer.read())["run_id"]

    old_pid = _kill_node(run, port + 1)
    run.wait_for(rf"^raftflow dev: node-2 \(pid {old_pid}\) exited with -9; "
                 rf"restarting it in 0\.5 s \(restart 1\)$")
    new_pid = int(run.wait_for(r"^raftflow dev: node-2 restarted \(pid (\d+)\)$").group(1))
    assert new_pid != old_pid

    node2 = f"http://127.0.0.1:{port + 1}"
    assert _eventually(lambda: _get(f"{node2}/healthz"))["node"] == "node-2"
    assert _node_pid(port + 1) == new_pid
    described = _eventually(lambda: _get(f"{node2}/api/v1/namespaces/default/workflows/drill-1"))
    assert described["run_id"] == run_id
    assert run.process.poll() is None


def test_with_no_restart_a_killed_node_stays_dead(start_dev: StartDev) -> None:
    run, port = start_dev(1, 1, "--no-restart")
    pid = _kill_node(run, port)
    run.wait_for(rf"^raftflow dev: node-1 \(pid {pid}\) exited with -9; "
                 r"not restarting it \(--no-restart\)$")
    deadline = time.monotonic() + STAYS_DEAD_S
    while time.monotonic() < deadline:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        time.sleep(0.25)
    assert "restarted" not in run.output()
    assert run.process.poll() is None


# --- the pure policy ---------------------------------------------------------------------

POLICY = RestartPolicy()


def _quick_exits(count: int, *, exit_code: int = -9) -> list[NodeExit]:
    """`count` runs that each lived 1 s, back to back."""
    return [NodeExit(started_at_s=10.0 * i, exited_at_s=10.0 * i + 1, exit_code=exit_code)
            for i in range(count)]


def test_back_off_doubles_from_the_minimum_up_to_the_cap() -> None:
    delays = [POLICY.decide(_quick_exits(n)) for n in range(1, 9)]
    assert delays == [RestartAfter(s) for s in (0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0)]
    assert (RESTART_DELAY_MIN_S, RESTART_DELAY_MAX_S) == (0.5, 10.0)


def test_back_off_starts_over_after_a_run_that_stayed_up() -> None:
    stable = NodeExit(started_at_s=100.0, exited_at_s=100.0 + STABLE_UPTIME_S, exit_code=-9)
    after = [NodeExit(started_at_s=200.0 + i, exited_at_s=200.5 + i, exit_code=1)
             for i in range(2)]
    assert POLICY.decide([*_quick_exits(6), stable]) == RestartAfter(0.5)
    assert POLICY.decide([*_quick_exits(6), stable, after[0]]) == RestartAfter(1.0)
    assert POLICY.decide([*_quick_exits(6), stable, *after]) == RestartAfter(2.0)
    just_short = NodeExit(started_at_s=100.0, exited_at_s=99.9 + STABLE_UPTIME_S, exit_code=-9)
    assert POLICY.decide([*_quick_exits(2), just_short]) == RestartAfter(2.0)


def test_a_configuration_error_is_not_restarted() -> None:
    decision = POLICY.decide([*_quick_exits(3), *_quick_exits(1, exit_code=2)])
    assert isinstance(decision, DoNotRestart) and "configuration error" in decision.reason
    assert POLICY.decide(_quick_exits(1, exit_code=1)) == RestartAfter(0.5)
    # Exit 0: stopped on purpose or removed from the cluster (`raftflow cluster remove`).
    assert isinstance(POLICY.decide(_quick_exits(1, exit_code=0)), DoNotRestart)


# --- the supervisor loop over fake processes ---------------------------------------------

@dataclass
class FakeProcess:
    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class FakeCluster:
    node_ids: list[str]
    processes: dict[str, FakeProcess] = field(default_factory=dict)
    next_pid: int = 100

    def __post_init__(self) -> None:
        for node_id in self.node_ids:
            self.start_node(node_id)

    def start_node(self, node_id: str) -> FakeProcess:
        assert node_id not in self.processes or self.processes[node_id].poll() is not None
        self.next_pid += 1
        self.processes[node_id] = FakeProcess(self.next_pid)
        return self.processes[node_id]


def test_supervisor_restarts_when_due_and_never_during_shutdown(
        capsys: pytest.CaptureFixture[str]) -> None:
    cluster = FakeCluster(["node-1", "node-2"])
    shutdown = threading.Event()
    supervisor = Supervisor(cluster, POLICY, shutdown, now_s=0.0)
    cluster.processes["node-2"].returncode = -9
    supervisor.tick(5.0)
    supervisor.tick(5.4)  # not due yet
    assert cluster.processes["node-2"].pid == 102
    supervisor.tick(5.5)
    assert cluster.processes["node-2"].pid == 103 and cluster.processes["node-1"].pid == 101
    cluster.processes["node-2"].returncode = 1
    supervisor.tick(6.0)  # a second quick death: twice the delay
    supervisor.tick(6.9)
    assert cluster.processes["node-2"].pid == 103
    supervisor.tick(7.0)
    assert cluster.processes["node-2"].pid == 104
    cluster.processes["node-2"].returncode = -15
    supervisor.tick(8.0)  # restart due at 10.0 ...
    shutdown.set()
    supervisor.tick(60.0)  # ... but the dev command is stopping
    assert cluster.processes["node-2"].pid == 104 and cluster.processes["node-1"].pid == 101
    assert capsys.readouterr().out.splitlines() == [
        "raftflow dev: node-2 (pid 102) exited with -9; restarting it in 0.5 s (restart 1)",
        "raftflow dev: node-2 restarted (pid 103)",
        "raftflow dev: node-2 (pid 103) exited with 1; restarting it in 1.0 s (restart 2)",
        "raftflow dev: node-2 restarted (pid 104)",
        "raftflow dev: node-2 (pid 104) exited with -15; restarting it in 2.0 s (restart 3)",
    ]


def test_supervisor_without_a_policy_and_on_exit_2_only_logs(
        capsys: pytest.CaptureFixture[str]) -> None:
    for policy, reason in ((None, "--no-restart"), (POLICY, "exit 2 is a configuration error")):
        cluster = FakeCluster(["node-1"])
        supervisor = Supervisor(cluster, policy, threading.Event(), now_s=0.0)
        cluster.processes["node-1"].returncode = 2
        for now_s in (1.0, 30.0, 60.0):
            supervisor.tick(now_s)
        assert cluster.processes["node-1"].pid == 101
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 1 and out[0].startswith(
            f"raftflow dev: node-1 (pid 101) exited with 2; not restarting it ({reason}")
