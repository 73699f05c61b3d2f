"""History events of child workflows (Temporal's names), in the parent's history.

Theory of operation. `StartChildWorkflowExecution` writes `StartChildWorkflowExecutionInitiated`
and queues a start message in the parent's shard outbox (outbox.py). The child's shard starts
the child (or refuses: `StartChildWorkflowExecutionFailed`, cause WorkflowAlreadyStarted), and
its answer writes `ChildWorkflowExecutionStarted` with the child's run id. When the child's last
run closes, its shard sends a message back that writes one of the close events below. Each
names the initiating event (`initiated_event_id`), the child's ids and type. Flat fields and
zero defaults, as in events.py.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from raftflow.protocol.event_types import EventType
from raftflow.protocol.workflow_commands import Failure, RetryPolicy


class StartChildWorkflowExecutionInitiatedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="StartChildWorkflowExecutionInitiated",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED
    namespace: str = ""
    workflow_id: str = ""
    workflow_type: str = ""
    task_queue: str = ""
    input: bytes = b""
    execution_timeout_ms: int | None = None
    run_timeout_ms: int | None = None
    task_timeout_ms: int = 0
    id_reuse_policy: str = ""
    parent_close_policy: str = ""
    workflow_task_completed_event_id: int = 0
    retry_policy: RetryPolicy | None = None  # added with workflow retries


class StartChildWorkflowExecutionFailedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="StartChildWorkflowExecutionFailed",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED
    namespace: str = ""
    workflow_id: str = ""
    workflow_type: str = ""
    cause: str = ""
    detail: str = ""
    initiated_event_id: int = 0


class ChildWorkflowExecutionStartedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ChildWorkflowExecutionStarted",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.CHILD_WORKFLOW_EXECUTION_STARTED
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    initiated_event_id: int = 0


class ChildWorkflowExecutionCompletedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ChildWorkflowExecutionCompleted",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED
    result: bytes = b""
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    initiated_event_id: int = 0
    started_event_id: int = 0


class ChildWorkflowExecutionFailedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ChildWorkflowExecutionFailed",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.CHILD_WORKFLOW_EXECUTION_FAILED
    failure: Failure | None = None
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    initiated_event_id: int = 0
    started_event_id: int = 0


class ChildWorkflowExecutionCanceledEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ChildWorkflowExecutionCanceled",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.CHILD_WORKFLOW_EXECUTION_CANCELED
    details: bytes = b""
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    initiated_event_id: int = 0
    started_event_id: int = 0


class ChildWorkflowExecutionTimedOutEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ChildWorkflowExecutionTimedOut",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    initiated_event_id: int = 0
    started_event_id: int = 0


class ChildWorkflowExecutionTerminatedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ChildWorkflowExecutionTerminated",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    initiated_event_id: int = 0
    started_event_id: int = 0
