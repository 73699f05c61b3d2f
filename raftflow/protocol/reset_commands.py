"""Workflow reset: the log command (`ResetWorkflow`) and how a reset point is named.

Same wire contract as `commands.py` (its docstring says it in full): a frozen msgspec Struct
encoded as a map, tagged with its class name under `command`, strict about unknown fields,
fields only ever added with a default. It lives here, not in `commands.py`, to keep that module
small; `commands.py` re-exports it and lists it in the `Command` union.

A reset names its point either by `event_id` (a workflow task's WorkflowTaskCompleted, or its
WorkflowTaskStarted, WorkflowTaskFailed or WorkflowTaskTimedOut) or by `reset_type` (the first
or the last completed workflow task), never both (shards/core/on_reset.py checks it).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ResetType(StrEnum):
    """Temporal's names for the two reset points a client may ask for by kind."""

    FIRST_WORKFLOW_TASK = "FirstWorkflowTask"
    LAST_WORKFLOW_TASK = "LastWorkflowTask"


class ResetWorkflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                    tag="ResetWorkflow", tag_field="command"):
    """Terminate the workflow's open run (if any) and open `new_run_id` with the history of
    `run_id` (else the latest run) copied up to the reset point's WorkflowTaskStarted; the
    signals recorded after that point are delivered to the new run again."""

    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str | None = None  # the base run; None: the workflow id's latest run
    new_run_id: str  # chosen by the proposer, like a start's run id
    event_id: int = 0  # 0: not given (reset_type names the point)
    reset_type: ResetType | None = None
    reason: str = ""
    request_id: str
