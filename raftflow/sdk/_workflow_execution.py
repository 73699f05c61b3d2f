"""What the client reports about runs: their status, their description, their history.

Public through `raftflow.sdk.client` (where users import them); kept apart from the client
and its handles, which only build them from the server's JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class WorkflowExecutionStatus(enum.Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"


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
    """A run's whole history, events in the JSON shape `WorkflowRunner.activate` takes."""

    workflow_id: str
    run_id: str | None
    events: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "events": self.events}

