"""The interceptors of one client, applied in order (the first given is the outermost).

Callers check `if interceptors:` first: without one nothing here runs (no context manager, no
allocation) on a start, a workflow task or an activity.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from raftflow.protocol.limits import TRACEPARENT_LENGTH
from raftflow.sdk.interceptor import (
    ActivityInput,
    Interceptor,
    StartWorkflowInput,
    WorkflowTaskInput,
)

TRACEPARENT_HEADER = "traceparent"  # W3C Trace Context's header, as the gateway reads it

# One client's chain: each hook enters every interceptor, so the chain is kept short.
INTERCEPTORS_MAX = 16


class Interceptors:
    def __init__(self, chain: Sequence[Interceptor] = ()) -> None:
        if len(chain) > INTERCEPTORS_MAX:
            raise ValueError(f"at most {INTERCEPTORS_MAX} interceptors")
        self._chain = tuple(chain)

    def __bool__(self) -> bool:
        return bool(self._chain)

    @contextmanager
    def start_workflow(self, call: StartWorkflowInput) -> Iterator[str]:
        with ExitStack() as stack:
            yield _innermost(stack.enter_context(i.start_workflow(call)) for i in self._chain)

    @contextmanager
    def run_workflow_task(self, task: WorkflowTaskInput) -> Iterator[str]:
        with ExitStack() as stack:
            yield _innermost(stack.enter_context(i.run_workflow_task(task))
                             for i in self._chain)

    @contextmanager
    def run_activity(self, task: ActivityInput) -> Iterator[str]:
        with ExitStack() as stack:
            yield _innermost(stack.enter_context(i.run_activity(task)) for i in self._chain)


def trace_headers(traceparent: str) -> dict[str, str] | None:
    """The headers of a call made for a traced piece of work (None: not traced)."""
    return {TRACEPARENT_HEADER: traceparent} if traceparent else None


NO_INTERCEPTORS = Interceptors()


def _innermost(traceparents: Iterator[str]) -> str:
    """The last non-empty traceparent entered (the innermost interceptor's context). One that
    is not a traceparent is a bug in its interceptor: refused here, not by the server as a 400
    on every start or completion."""
    chosen = ""
    for traceparent in traceparents:
        if traceparent:
            if len(traceparent) != TRACEPARENT_LENGTH:
                raise ValueError(f"an interceptor yielded {traceparent!r}, not a traceparent")
            chosen = traceparent
    return chosen
