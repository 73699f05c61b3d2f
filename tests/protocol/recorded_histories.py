"""Every history event recorded from a real cluster that the tests keep: the golden histories
(tests/data/histories) and the 0.1 upgrade fixture's histories, as the HTTP API rendered them,
plus the attribute fields added since they were recorded, at the value every old event reads
back with (`with_added_fields`). Anything else added or changed still fails the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data"

# Attribute fields events gained after recordings were made, by event type, with the value an
# event written before then reads back with (workflow retries added these; tracing added the
# traceparents).
FIELDS_ADDED_SINCE_RECORDING: dict[str, dict[str, Any]] = {
    "WorkflowExecutionStarted": {"retry_policy": None, "first_workflow_task_backoff_ms": 0,
                                 "traceparent": ""},
    "ActivityTaskScheduled": {"traceparent": ""},
    "WorkflowExecutionFailed": {"new_execution_run_id": ""},
    "WorkflowExecutionTimedOut": {"new_execution_run_id": ""},
    "StartChildWorkflowExecutionInitiated": {"retry_policy": None},
}


def with_added_fields(event: dict[str, Any]) -> dict[str, Any]:
    """A recorded event as the current release renders it: the fields it lacks that were added
    since, at their defaults, after its own (the rendering's key order)."""
    added = FIELDS_ADDED_SINCE_RECORDING.get(event["event_type"], {})
    attributes = {**event["attributes"],
                  **{k: v for k, v in added.items() if k not in event["attributes"]}}
    return {**event, "attributes": attributes}


def recorded_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted((DATA / "histories").glob("*.json")):
        events.extend(map(with_added_fields, json.loads(path.read_text())["events"]))
    expected = json.loads((DATA / "upgrade-v0.1" / "expected.json").read_text())
    for run in expected.values():
        events.extend(map(with_added_fields, run["history"]["events"]))
    return events
