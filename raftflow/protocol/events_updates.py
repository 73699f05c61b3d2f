"""History events of workflow updates (`updates.py` says how an update travels).

Same rules as `events.py`: Temporal's event names as tags under `event_type`, every field with
its zero value as default, payloads as the user's JSON text in `bytes`. These structs live here
so that `events.py` stays one screenful per kind; `events.py` adds them to `EventAttributes` and
sets their `event_type` (this module cannot import it: protocol modules import acyclically).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from raftflow.protocol.workflow_commands import Failure


class WorkflowExecutionUpdateAcceptedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionUpdateAccepted",
        tag_field="event_type"):
    """The workflow's validator accepted the update: its handler runs from here."""

    event_type: ClassVar[Any]  # EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED (set by events.py)
    update_id: str = ""
    name: str = ""
    input: bytes = b""
    workflow_task_completed_event_id: int = 0


class WorkflowExecutionUpdateCompletedEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionUpdateCompleted",
        tag_field="event_type"):
    """The update's handler ended: `result`, or `failure` when it raised."""

    event_type: ClassVar[Any]  # EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED (set by events.py)
    update_id: str = ""
    accepted_event_id: int = 0
    result: bytes = b""
    failure: Failure | None = None
    workflow_task_completed_event_id: int = 0
