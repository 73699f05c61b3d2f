"""Workflow updates (Temporal's): the log command that requests one, what a workflow task
carries and answers about it, the workflow command that completes it, and the answer a caller
gets.

Theory of operation. A caller's `RequestWorkflowUpdate` records the update as *admitted* in the
open run's state (not in history) and makes sure a workflow task is scheduled. That task carries
every update admitted before it started (`WorkflowUpdateRequest`); the worker runs the update's
validator and answers each one in its completion (`WorkflowUpdateResponse`): rejected (a
failure, and no event: the caller gets the failure) or accepted (WorkflowExecutionUpdateAccepted
is written right after WorkflowTaskCompleted); one the answer leaves out is rejected. The
handler then runs in the workflow; its end is the workflow command `CompleteWorkflowUpdate` (in
`workflow_commands.py`), written as WorkflowExecutionUpdateCompleted. The outcome of a completed
or rejected update is remembered under its update id, which deduplicates requests (a second
request with the id of one in flight attaches to it). The events are in `events_updates.py`;
the core's side is `shards/core/on_update.py`, the gateway's `api/update_handlers.py`, the
SDK's `sdk/_replay/updates.py` (worker) and `sdk/_updates.py` (client).

Same wire contract as `commands.py`: frozen msgspec Structs, union members tagged (`command` for
log commands, `type` for workflow commands, `result` for results), fields only added with a
default, bounds as edge rules.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from raftflow.protocol.workflow_commands import CompleteWorkflowUpdate, Failure, Id

__all__ = ["CompleteWorkflowUpdate", "RequestWorkflowUpdate", "UpdateStage",
           "WorkflowUpdateRequest", "WorkflowUpdateResponse", "WorkflowUpdateResult"]


class UpdateStage(StrEnum):
    """How far an update got (Temporal's WorkflowUpdateStage, lower case on the wire).
    A rejected update is `completed` with a failure, as in Temporal."""

    ADMITTED = "admitted"
    ACCEPTED = "accepted"
    COMPLETED = "completed"


UPDATE_STAGE_ORDER: dict[UpdateStage, int] = {
    UpdateStage.ADMITTED: 0, UpdateStage.ACCEPTED: 1, UpdateStage.COMPLETED: 2}


class RequestWorkflowUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                            tag="RequestWorkflowUpdate", tag_field="command"):
    """Admit an update for the workflow's open run (or `run_id`, which must be open)."""

    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str | None = None
    update_id: str
    name: str
    input: bytes = b""


class WorkflowUpdateRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An admitted update, as a workflow task hands it to the worker."""

    update_id: str
    name: str
    input: bytes = b""


class WorkflowUpdateResponse(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The worker's answer to one update its task carried: accepted (`rejection` None: the
    handler runs) or rejected by the validator (no event; the caller gets `rejection`)."""

    update_id: Id
    rejection: Failure | None = None


class WorkflowUpdateResult(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowUpdateResult",
                           tag_field="result"):
    """Where an update stands: its stage and, once completed, its result (`value`: the tag
    field of results is `result`) or failure."""

    run_id: str
    update_id: str
    stage: UpdateStage
    value: bytes = b""
    failure: Failure | None = None
