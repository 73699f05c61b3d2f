"""The trace context of the call being served: the caller's W3C `traceparent` header, or,
with `--otel-exporter`, this node's span for the call (observability/tracing.py).

Without an exporter no middleware is installed: a start reads one header
(`request_traceparent`), which is all tracing costs a node then; a traceparent that is not
W3C's is dropped, as the spec asks of a receiver, never refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from raftflow.observability.tracing import TRACEPARENT_HEADER, NodeTracer, is_traceparent

__all__ = ["TRACEPARENT_HEADER", "TRACER_KEY", "call_span", "request_traceparent",
           "tracing_middleware"]

# The node's tracer, for calls that are not requests of their own (a task stream's: app.py
# sets it only with --otel-exporter).
TRACER_KEY: web.AppKey[NodeTracer] = web.AppKey("tracer", NodeTracer)

# This node's span context for the call, set by the middleware (as a traceparent).
_SPAN_TRACEPARENT: web.RequestKey[str] = web.RequestKey("span_traceparent", str)
# Not traced: probes, scrapes, task long polls (a poll waits, it does no work: the task it
# returns is traced by the worker's span and its answer's call) and task streams (each call on
# one gets its own span: `call_span`), which would only add noise.
_UNTRACED_PATHS = frozenset({"/healthz", "/metrics", "/api/v1/tasks/poll/end"})
_UNTRACED_ROUTE_SUFFIXES = ("/poll", "/stream")


def _header_traceparent(request: web.Request) -> str:
    value = request.headers.get(TRACEPARENT_HEADER, "")
    return value if value and is_traceparent(value) else ""


def request_traceparent(request: web.Request) -> str:
    """What this call passes on: this node's span context if it traces, else the caller's
    valid traceparent, else ""."""
    return request.get(_SPAN_TRACEPARENT) or _header_traceparent(request)


def tracing_middleware(tracer: NodeTracer) -> Middleware:
    """One server span per call, named by its route (`POST /api/v1/namespaces/{namespace}/
    workflows`), child of the caller's traceparent."""

    @web.middleware
    async def trace(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _UNTRACED_PATHS:
            return await handler(request)
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else "unmatched"
        if route.endswith(_UNTRACED_ROUTE_SUFFIXES):
            return await handler(request)
        attributes: dict[str, str | int] = {"http.request.method": request.method,
                                            "http.route": route}
        for name in ("namespace", "workflow_id"):
            if name in info:
                attributes[f"raftflow.{name}"] = info[name]
        with tracer.server_span(f"{request.method} {route}", _header_traceparent(request),
                                attributes) as span:
            request[_SPAN_TRACEPARENT] = tracer.traceparent_of(span)
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            return response

    return trace


@contextmanager
def call_span(tracer: NodeTracer | None, method: str, path: str,
              traceparent: str) -> Iterator[str]:
    """The server span of a call that came on a task stream, as the middleware makes one for
    a request (named `POST /api/v1/tasks/...`, child of the call's traceparent); yields what
    the call passes on: that span's context, or without a tracer the caller's valid one."""
    valid = traceparent if traceparent and is_traceparent(traceparent) else ""
    if tracer is None:
        yield valid
        return
    with tracer.server_span(f"{method} {path}", valid, {"http.request.method": method,
                                                        "http.route": path}) as span:
        yield tracer.traceparent_of(span)
