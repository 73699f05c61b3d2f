"""History events of workflow updates (`updates.py` says how an update travels).

Same rules as `events.py`: Temporal's event names as tags under `event_type`, every field with
its zero value as default, payloads as the user's JSON text in `bytes`. These structs live here
so that `events.py` stays one screenful per kind; `events.py` adds them to `EventAttributes`.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from raftflow.protocol.event_types import EventType
from raftflow.protocol.workflow_commands import Failure


class WorkflowExecutionUpdateAcceptedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionUpdateAccepted",
        tag_field="event_type"):
    """The workflow's validator accepted the update: its handler runs from here."""

    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    update_id: str = ""
    name: str = ""
    input: bytes = b""
    workflow_task_completed_event_id: int = 0


class WorkflowExecutionUpdateCompletedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionUpdateCompleted",
        tag_field="event_type"):
    """The update's handler ended: `result`, or `failure` when it raised."""

    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED
    update_id: str = ""
    accepted_event_id: int = 0
    result: bytes = b""
    failure: Failure | None = None
    workflow_task_completed_event_id: int = 0
