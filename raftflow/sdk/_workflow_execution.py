"""What the client reports about runs: their status, their description, their history.

Public through `raftflow.sdk.client` (where users import them); kept apart from the client
and its handles, which only build them from the server's JSON. `WorkflowExecutionStatus` is
the protocol's enum (the gateway renders descriptions with it), so the SDK and the server
cannot disagree on a status name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import event_json
from raftflow.protocol.results import WorkflowExecutionStatus
from raftflow.sdk._wire_json import decode_history

__all__ = ["WorkflowExecution", "WorkflowExecutionStatus", "WorkflowHistory"]


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowExecution:
    """One run as `describe()` and `list_workflows()` report it (the server's JSON in `raw`)."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    history_length: int
    start_time: datetime | None
    close_time: datetime | None
    raw: dict[str, Any]

    @staticmethod
    def from_json(body: dict[str, Any]) -> WorkflowExecution:
        return WorkflowExecution(
            id=str(body["workflow_id"]), run_id=str(body["run_id"]),
            workflow_type=str(body.get("workflow_type", "")),
            task_queue=str(body.get("task_queue", "")),
            status=WorkflowExecutionStatus(str(body["status"])),
            history_length=int(body.get("history_length") or 0),
            start_time=_time(body.get("start_time")), close_time=_time(body.get("close_time")),
            raw=body)


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
