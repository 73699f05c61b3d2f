"""The trace context at the edges, and tracing off costing nothing.

Goal: only W3C traceparents of version 00 with non-zero ids pass (`is_traceparent`); a worker's
ScheduleActivityTask with anything else is refused with a 400 naming the field; the gateway
passes on a caller's valid traceparent header and drops a malformed one (as W3C asks of a
receiver); with tracing off, neither a node nor an SDK client or worker imports OpenTelemetry;
a client's interceptors nest in order, the innermost context is passed on, and a hook that
yields something else than a traceparent is refused.
Method: the checks on hand-made values; a tiny aiohttp app around `request_traceparent`;
a fresh interpreter that imports the node's and the SDK's modules.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from raftflow.api.errors import InvalidArgumentError
from raftflow.api.request_traces import request_traceparent
from raftflow.api.validation import decode_body
from raftflow.observability.tracing import is_traceparent
from raftflow.protocol.http_bodies import CompleteWorkflowTaskRequest
from raftflow.sdk._interceptors import NO_INTERCEPTORS, Interceptors, trace_headers
from raftflow.sdk.interceptor import ActivityInput, StartWorkflowInput, WorkflowTaskInput

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("value", "valid"), [
    (VALID, True),
    (VALID[:-2] + "00", True),  # not sampled is still a context
    (VALID.upper(), False),  # W3C: lowercase hex only
    ("01" + VALID[2:], False),  # another version: not what this engine records
    ("00-" + "0" * 32 + VALID[35:], False),  # all-zero trace id
    (VALID[:36] + "0" * 16 + "-01", False),  # all-zero parent id
    (VALID + "-x", False),
    ("", False),
])
def test_only_w3c_traceparents_pass(value: str, valid: bool) -> None:
    assert is_traceparent(value) is valid


def _completion(traceparent: str) -> bytes:
    return (b'{"task_token":"abc","commands":[{"type":"ScheduleActivityTask","activity_id":"a",'
            b'"activity_type":"t","start_to_close_timeout_ms":1000,"traceparent":"'
            + traceparent.encode() + b'"}]}')


def test_a_malformed_activity_traceparent_is_refused_naming_the_field() -> None:
    assert decode_body(_completion(VALID), CompleteWorkflowTaskRequest).commands[0]
    assert decode_body(_completion(""), CompleteWorkflowTaskRequest).commands[0]
    for bad in ("not-a-trace", VALID + "0", VALID.upper()):
        with pytest.raises(InvalidArgumentError) as refused:
            decode_body(_completion(bad), CompleteWorkflowTaskRequest)
        assert refused.value.field == "commands[0].traceparent", refused.value


def test_the_gateway_passes_on_a_valid_header_and_drops_a_malformed_one() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request_traceparent(request))

    async def scenario() -> list[str]:
        app = web.Application()
        app.router.add_get("/", echo)
        async with TestClient(TestServer(app)) as client:
            seen = []
            for header in (VALID, "00-garbage", None):
                answer = await client.get("/", headers={"traceparent": header} if header else {})
                seen.append(await answer.text())
            return seen

    assert asyncio.run(scenario()) == [VALID, "", ""]


OFF_PROBE = """
import sys
from raftflow.api.app import make_app
import raftflow.node.serve, raftflow.node.runtime, raftflow.cli
import raftflow.sdk, raftflow.sdk.client, raftflow.sdk.worker
from raftflow.cluster.observability_flags import observability_of
import argparse
config = observability_of(argparse.Namespace(log_format="text", otel_exporter=None))
assert not config.tracing
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print(",".join(loaded))
"""


def test_tracing_off_imports_no_opentelemetry() -> None:
    probe = subprocess.run([sys.executable, "-c", OFF_PROBE], capture_output=True, text=True,
                           timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "", f"loaded with tracing off: {probe.stdout}"
    # The probe can fail: importing the integration does load it.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, raftflow.sdk.contrib.opentelemetry; "
         "print(any(m.startswith('opentelemetry') for m in sys.modules))"],
        capture_output=True, text=True, timeout=60, check=False)
    assert loaded.stdout.strip() == "True", loaded.stderr


class _Recording:
    """An interceptor that records its enters and exits and yields a fixed context."""

    def __init__(self, name: str, yields: str, log: list[str]) -> None:
        self._name, self._yields, self._log = name, yields, log

    @contextmanager
    def _around(self) -> Iterator[str]:
        self._log.append(f"enter {self._name}")
        yield self._yields
        self._log.append(f"exit {self._name}")

    def start_workflow(self, call: StartWorkflowInput) -> AbstractContextManager[str]:
        return self._around()

    def run_workflow_task(self, task: WorkflowTaskInput) -> AbstractContextManager[str]:
        return self._around()

    def run_activity(self, task: ActivityInput) -> AbstractContextManager[str]:
        return self._around()


def test_interceptors_nest_in_order_and_the_innermost_context_wins() -> None:
    log: list[str] = []
    other = VALID[:36] + "b7ad6b7169203331-01"
    chain = Interceptors([_Recording("outer", VALID, log), _Recording("inner", other, log),
                          _Recording("silent", "", log)])
    call = StartWorkflowInput(namespace="n", workflow_id="w", workflow_type="T", task_queue="q")
    with chain.start_workflow(call) as traceparent:
        log.append("work")
    assert traceparent == other  # "" passes nothing on: the inner context stands
    assert log == ["enter outer", "enter inner", "enter silent", "work",
                   "exit silent", "exit inner", "exit outer"]
    assert not NO_INTERCEPTORS and chain
    assert trace_headers("") is None and trace_headers(VALID) == {"traceparent": VALID}
    broken = Interceptors([_Recording("bug", "not a traceparent", [])])
    with pytest.raises(ValueError, match="not a traceparent"), broken.run_activity(
            ActivityInput(namespace="n", workflow_id="w", run_id="r", activity_id="a",
                          activity_type="t", attempt=1, traceparent="")):
        pass
