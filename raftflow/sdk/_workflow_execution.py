"""What the client reports about runs: their status, their description, their history.

Public through `raftflow.sdk.client` (where users import them); kept apart from the client
and its handles, which build them from the server's answers as decoded at the edge
(`_wire_answers`). `WorkflowExecutionStatus` is the protocol's enum (the gateway renders
descriptions with it), so the SDK and the server cannot disagree on a status name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import event_json
from raftflow.protocol.http_answers import WorkflowDescription
from raftflow.protocol.payload import builtins_enc_hook
from raftflow.protocol.results import WorkflowExecutionStatus
from raftflow.protocol.search_attributes import JsonAttributeValue
from raftflow.sdk._wire_json import decode_history

__all__ = ["WorkflowExecution", "WorkflowExecutionStatus", "WorkflowHistory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecution:
    """One run as `describe()` and `list_workflows()` report it. `description` is the server's
    answer as it was decoded (`http_answers.WorkflowDescription`: pending counts, the closed
    run's result, failure or reason); `raw` the same as JSON values."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    history_length: int
    start_time: datetime
    close_time: datetime | None
    description: WorkflowDescription

    @staticmethod
    def from_description(description: WorkflowDescription) -> WorkflowExecution:
        """Raises ValueError if a time is not ISO 8601 (the struct holds them as text)."""
        close_time = description.close_time
        return WorkflowExecution(
            id=description.workflow_id, run_id=description.run_id,
            workflow_type=description.workflow_type, task_queue=description.task_queue,
            status=description.status, history_length=description.history_length,
            start_time=datetime.fromisoformat(description.start_time),
            close_time=None if close_time is None else datetime.fromisoformat(close_time),
            description=description)

    @property
    def search_attributes(self) -> Mapping[str, JsonAttributeValue]:
        """The run's custom search attributes as the server gives them (datetimes as RFC 3339
        strings in UTC)."""
        return self.description.search_attributes

    @property
    def raw(self) -> dict[str, Any]:
        """The description as the server's JSON object (payloads as their JSON values)."""
        body = msgspec.to_builtins(self.description, enc_hook=builtins_enc_hook)
        assert isinstance(body, dict), body
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowHistory:
    """A run's whole history as typed protocol events (what `WorkflowRunner.activate` takes).

    `to_json` gives the API's JSON (`{"workflow_id", "run_id", "events": [...]}`, events as
    `GET .../history` renders them) and `from_json` reads it back, or a bare list of events:
    the shape `raftflow workflow replay` takes.
    """

    workflow_id: str
    run_id: str | None
    events: list[HistoryEvent]

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id,
                "events": [event_json(e) for e in self.events]}

    @staticmethod
    def from_json(document: Mapping[str, Any] | Sequence[Any]) -> WorkflowHistory:
        """Raises `MalformedHistoryError` (a ValueError) if an event is not in the protocol's
        vocabulary."""
        meta: Mapping[str, Any] = document if isinstance(document, Mapping) else {}
        bodies = document.get("events") if isinstance(document, Mapping) else document
        run_id = meta.get("run_id")
        return WorkflowHistory(workflow_id=str(meta.get("workflow_id", "")),
                               run_id=None if run_id is None else str(run_id),
                               events=decode_history(bodies, "saved history"))
