"""OpenTelemetry tracing of workflows and activities (temporalio's `TracingInterceptor`).

    from raftflow.sdk.contrib.opentelemetry import TracingInterceptor
    client = await Client.connect(address, interceptors=[TracingInterceptor()])

Spans, all in the trace of the client's start (docs/observability.md):
- `StartWorkflow:<type>` around the client's start; its W3C traceparent goes with the call.
  A node started with `--otel-exporter` adds its own span for the call under it, and the
  server records the context in WorkflowExecutionStarted (the node's span, else the client's);
- `RunWorkflow:<type>` around each workflow task a worker of this client runs, parented by
  that recorded context (every task of the run, on whichever worker, joins the trace);
- `RunActivity:<type>` around each activity attempt, parented by the `RunWorkflow` span of the
  workflow task that scheduled it (the context travels in ActivityTaskScheduled).

Needs `opentelemetry-api` (and an SDK configured by the application, or a `tracer` given
here); this module is the only part of raftflow.sdk that imports OpenTelemetry, and only a
program that imports it loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from raftflow.sdk.interceptor import ActivityInput, StartWorkflowInput, WorkflowTaskInput

__all__ = ["TracingInterceptor"]

_HEADER = "traceparent"


class TracingInterceptor:
    """Creates the spans above with `tracer` (default: the global tracer provider's)."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self._tracer = tracer or trace.get_tracer("raftflow.sdk")
        self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def start_workflow(self, call: StartWorkflowInput) -> Iterator[str]:
        with self._tracer.start_as_current_span(
                f"StartWorkflow:{call.workflow_type}", kind=trace.SpanKind.CLIENT,
                attributes={"raftflow.namespace": call.namespace,
                            "raftflow.workflow_id": call.workflow_id,
                            "raftflow.task_queue": call.task_queue}):
            yield self._current_traceparent()

    @contextmanager
    def run_workflow_task(self, task: WorkflowTaskInput) -> Iterator[str]:
        with self._tracer.start_as_current_span(
                f"RunWorkflow:{task.workflow_type}", context=self._parent(task.traceparent),
                kind=trace.SpanKind.SERVER,
                attributes={"raftflow.namespace": task.namespace,
                            "raftflow.workflow_id": task.workflow_id,
                            "raftflow.run_id": task.run_id,
                            "raftflow.workflow_task_attempt": task.attempt}):
            yield self._current_traceparent()

    @contextmanager
    def run_activity(self, task: ActivityInput) -> Iterator[str]:
        with self._tracer.start_as_current_span(
                f"RunActivity:{task.activity_type}", context=self._parent(task.traceparent),
                kind=trace.SpanKind.SERVER,
                attributes={"raftflow.namespace": task.namespace,
                            "raftflow.workflow_id": task.workflow_id,
                            "raftflow.run_id": task.run_id,
                            "raftflow.activity_id": task.activity_id,
                            "raftflow.activity_attempt": task.attempt}):
            yield self._current_traceparent()

    def _parent(self, traceparent: str) -> otel_context.Context | None:
        """The context of a recorded traceparent; None (the current one) when there is none:
        a run started by a client without tracing still gets its spans, in a trace of their
        own."""
        return self._propagator.extract({_HEADER: traceparent}) if traceparent else None

    def _current_traceparent(self) -> str:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier.get(_HEADER, "")
