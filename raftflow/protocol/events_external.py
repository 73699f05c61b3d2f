"""History events of messages from one workflow to another (Temporal's names): a signal or a
cancel request initiated by workflow code, and its one outcome.

Theory of operation. The command that initiates a message writes `...Initiated` and puts the
message in the shard's outbox (shards/core/outbox.py) in the same commit; the outbox delivers it
to the target's shard, and the acknowledgement writes exactly one outcome event that names the
initiating event (`initiated_event_id`): `ExternalWorkflowExecutionSignaled` /
`ExternalWorkflowExecutionCancelRequested` when the target took it, `...Failed` with a `cause`
when it could not. The target's own event (`WorkflowExecutionSignaled`,
`WorkflowExecutionCancelRequested`) carries the message id as its `request_id`, which is how a
history reader (and the chaos checker) ties the two ends together.

The target is named flat (`workflow_id`, `run_id`; "" = its open run), as the rest of raftflow's
events do. Every field has its zero value as default, as in events.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from raftflow.protocol.event_types import EventType


class ExternalFailedCause(StrEnum):
    """Why a message to another workflow had no effect (Temporal's cause names; the last is
    raftflow's own: the outbox gave up after MESSAGE_RETRY_HORIZON_MS without an answer)."""

    EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND = "ExternalWorkflowExecutionNotFound"
    NAMESPACE_NOT_FOUND = "NamespaceNotFound"
    SIGNAL_COUNT_LIMIT_EXCEEDED = "SignalCountLimitExceeded"
    DELIVERY_TIMED_OUT = "DeliveryTimedOut"


class SignalExternalWorkflowExecutionInitiatedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="SignalExternalWorkflowExecutionInitiated",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    signal_name: str = ""
    input: bytes = b""
    workflow_task_completed_event_id: int = 0


class SignalExternalWorkflowExecutionFailedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="SignalExternalWorkflowExecutionFailed",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    cause: str = ""
    detail: str = ""
    initiated_event_id: int = 0
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""


class ExternalWorkflowExecutionSignaledEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ExternalWorkflowExecutionSignaled",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED
    initiated_event_id: int = 0
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""


class RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True,
        tag="RequestCancelExternalWorkflowExecutionInitiated", tag_field="event_type"):
    event_type: ClassVar[EventType] = (
        EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
    reason: str = ""
    workflow_task_completed_event_id: int = 0


class RequestCancelExternalWorkflowExecutionFailedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True,
        tag="RequestCancelExternalWorkflowExecutionFailed", tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
    cause: str = ""
    detail: str = ""
    initiated_event_id: int = 0
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""


class ExternalWorkflowExecutionCancelRequestedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="ExternalWorkflowExecutionCancelRequested",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED
    initiated_event_id: int = 0
    namespace: str = ""
    workflow_id: str = ""
    run_id: str = ""
