"""The link proxy as a child process of the harness: start it, wait for `ready`, stop and reap."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from raftflow.chaos.link_control import LinkControl
from raftflow.chaos.link_faults import LinkSpec, check_link_specs, format_link_spec
from raftflow.chaos.link_limits import READY_TIMEOUT_S, STOP_TIMEOUT_S


class LinkProxyStartError(RuntimeError):
    pass


class LinkProxyProcess:
    """The proxy as a child process in its own session; always reaped by `stop()`."""

    def __init__(self, process: subprocess.Popen[bytes], control_port: int) -> None:
        self._process = process
        self.control = LinkControl(control_port)

    @classmethod
    def start(cls, links: Sequence[LinkSpec], *, control_port: int, seed: int,
              ready_timeout_s: float = READY_TIMEOUT_S,
              log_path: Path | None = None) -> LinkProxyProcess:
        """Start the proxy and wait until every listener is bound (its `ready` line)."""
        check_link_specs(links)
        argv = [sys.executable, "-m", "raftflow.chaos.links", "--control-port",
                str(control_port), "--seed", str(seed)]
        for spec in links:
            argv += ["--link", format_link_spec(spec)]
        log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
        try:  # the child keeps its own copy of the log's descriptor
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log, start_new_session=True)
        finally:
            if log is not None:
                log.close()
        started = cls(process, control_port)
        try:
            started._wait_ready(ready_timeout_s)
        except BaseException:
            started.stop()
            raise
        return started

    def _wait_ready(self, timeout_s: float) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout_s)
        line = stdout.readline() if readable else b""
        stdout.close()  # nothing follows `ready`
        if line.strip() != b"ready":
            raise LinkProxyStartError(f"link proxy not ready after {timeout_s} s (exit code "
                                      f"{self._process.poll()}, said {line!r})")

    def poll(self) -> int | None:
        return self._process.poll()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the exit code once reaped."""
        self.control.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                return self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
        code = self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
        return code

    def __enter__(self) -> LinkProxyProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
