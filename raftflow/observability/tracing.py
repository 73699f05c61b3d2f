"""`--otel-exporter otlp|console`: the node's OpenTelemetry tracer and W3C traceparent checks.

Theory of operation. The engine carries one trace context, a W3C `traceparent` string, from a
client's start to the workflow and activity tasks it causes; the shard core only copies it
(docs/observability.md). A node with an exporter also records spans of its own: one per HTTP
call it serves (`NodeTracer.server_span`), parented by the caller's traceparent, whose context
then replaces the caller's in what the node passes on (a forwarded call, a StartWorkflow).

OpenTelemetry is imported in `NodeTracer.__init__` only, so a node without an exporter never
loads it; `is_traceparent` is plain Python and is all a node without one runs (on a start).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from raftflow.observability.config import OTEL_EXPORTERS
from raftflow.protocol.limits import TRACEPARENT_LENGTH, TRACEPARENT_PATTERN

TRACEPARENT_HEADER: Final = "traceparent"
_TRACEPARENT = re.compile(TRACEPARENT_PATTERN)
_ZERO_TRACE_ID: Final = "0" * 32
_ZERO_SPAN_ID: Final = "0" * 16
SERVICE_NAME: Final = "raftflow"


def is_traceparent(value: str) -> bool:
    """A W3C traceparent of version 00 with a valid (non-zero) trace id and parent id. Anything
    else is dropped where it enters, as W3C Trace Context asks of a receiver."""
    return (len(value) == TRACEPARENT_LENGTH and _TRACEPARENT.fullmatch(value) is not None
            and value[3:35] != _ZERO_TRACE_ID and value[36:52] != _ZERO_SPAN_ID)


class NodeTracer:
    """Spans of one node, exported by `exporter` ("otlp": OTLP over HTTP to the endpoint the
    standard OTEL_EXPORTER_OTLP_* variables name; "console": one JSON line per span on the
    node's standard output, its log stream). `shutdown()` flushes what is still buffered."""

    def __init__(self, exporter: str, node_id: str) -> None:
        assert exporter in OTEL_EXPORTERS, exporter
        # Imported here, never at module level: only a node started with an exporter pays.
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = TracerProvider(resource=Resource.create(
            {"service.name": SERVICE_NAME, "service.instance.id": node_id}))
        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            # Batched: spans leave in the background, never on a request's path.
            self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            # For development: each span is written when it ends, one line each.
            self._provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(
                formatter=lambda span: span.to_json(indent=None) + os.linesep)))
        self._tracer = self._provider.get_tracer("raftflow.node")
        self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def server_span(self, name: str, traceparent: str,
                    attributes: Mapping[str, str | int]) -> Iterator[Any]:
        """A server span named `name`, child of `traceparent` ("": a new trace). Yields the
        span; `traceparent_of(span)` is what the node passes on."""
        from opentelemetry.trace import SpanKind

        parent = (self._propagator.extract({TRACEPARENT_HEADER: traceparent})
                  if traceparent else None)
        with self._tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER,
                                                attributes=dict(attributes)) as span:
            yield span

    @staticmethod
    def traceparent_of(span: Any) -> str:
        context = span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def shutdown(self) -> None:
        self._provider.shutdown()
