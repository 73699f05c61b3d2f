"""Hooks around what the SDK does for a user: starting a workflow, running a workflow task,
running an activity attempt (temporalio's interceptors, cut to what tracing needs).

    client = await Client.connect(address, interceptors=[TracingInterceptor()])

A client's interceptors apply to its calls and to every `Worker` built on it, as in
temporalio. Each hook is a context manager around the work and yields the W3C `traceparent`
the work passes on ("" for none): a start sends it to the server, which records it in
WorkflowExecutionStarted; a workflow task puts it on the activities and children it starts
(whose tasks hand it to `run_activity` and to the child's `run_workflow_task`); a task's
answer is sent with its own. With no interceptor the SDK runs none of this.

`raftflow.sdk.contrib.opentelemetry.TracingInterceptor` implements it with OpenTelemetry.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ActivityInput", "Interceptor", "StartWorkflowInput", "WorkflowTaskInput"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflowInput:
    """A start (or a signal-with-start) about to be sent."""

    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTaskInput:
    """A workflow task about to run; `traceparent`: the one its run was started with."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    attempt: int
    traceparent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityInput:
    """An activity attempt about to run; `traceparent`: the scheduling workflow task's."""

    namespace: str
    workflow_id: str
    run_id: str
    activity_id: str
    activity_type: str
    attempt: int
    traceparent: str


class Interceptor(Protocol):
    def start_workflow(self, call: StartWorkflowInput) -> AbstractContextManager[str]:
        """Around a start; yields the traceparent to send with it ("" for none)."""

    def run_workflow_task(self, task: WorkflowTaskInput) -> AbstractContextManager[str]:
        """Around one workflow task's run; yields the traceparent its activities carry."""

    def run_activity(self, task: ActivityInput) -> AbstractContextManager[str]:
        """Around one activity attempt (an `async def` one runs inside it on the loop, a `def`
        one in a thread with a copy of its context); yields the traceparent the attempt's
        answer is sent with."""
