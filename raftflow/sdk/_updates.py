"""Workflow updates on the client side (Temporal's names): `WorkflowHandle.execute_update`,
`start_update` and `get_update_handle` build on this module.

Theory of operation. `POST .../updates` admits the update (or finds the one with the same
update id) and answers the stage it reached within one long poll; a retry of it (a lost answer,
another node) carries the same update id, so it never runs an update twice (the server
deduplicates by update id). Until the stage asked for is reached the client then long-polls
`GET .../updates/{id}`, which proposes nothing. `result()` then long-polls
`GET .../updates/{id}` until the update completed: its handler's return value, or
`WorkflowUpdateFailedError` whose `cause` is the validator's rejection or the handler's failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import Any

import msgspec

from raftflow.protocol.http_answers import WorkflowUpdateAnswer
from raftflow.protocol.http_bodies import UpdateWorkflowRequest
from raftflow.protocol.updates import UPDATE_STAGE_ORDER, UpdateStage
from raftflow.sdk import _http, errors
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._replay.definition import update_name_of
from raftflow.sdk._wire_answers import decode_answer
from raftflow.sdk._wire_payloads import PayloadShape
from raftflow.sdk.errors import WorkflowUpdateFailedError

__all__ = ["WorkflowUpdateFailedError", "WorkflowUpdateHandle", "WorkflowUpdateStage"]

UPDATE_WAIT_MS = 30_000  # one long poll; the server allows up to 60 s


class WorkflowUpdateStage(IntEnum):
    """How far `start_update` waits (Temporal's values)."""

    ADMITTED = 1
    ACCEPTED = 2
    COMPLETED = 3


_WIRE_STAGE = {WorkflowUpdateStage.ADMITTED: UpdateStage.ADMITTED,
               WorkflowUpdateStage.ACCEPTED: UpdateStage.ACCEPTED,
               WorkflowUpdateStage.COMPLETED: UpdateStage.COMPLETED}


class WorkflowUpdateHandle:
    """One update of one workflow: `id`, and `result()` to wait for its outcome."""

    def __init__(self, connection: ClusterConnection, workflow_id: str, update_id: str, *,
                 workflow_run_id: str | None = None,
                 known: WorkflowUpdateAnswer | None = None) -> None:
        self._connection = connection
        self.id = update_id
        self.workflow_id = workflow_id
        self.workflow_run_id = workflow_run_id
        self._known = known if known is not None and known.stage is UpdateStage.COMPLETED else None

    def __repr__(self) -> str:
        return f"WorkflowUpdateHandle(id={self.id!r}, workflow_id={self.workflow_id!r})"

    async def result(self) -> Any:
        """Wait for the update to complete; its handler's return value (a JSON value).

        Raises `WorkflowUpdateFailedError` if it was rejected or its handler failed, and
        `RPCError` (code `workflow_not_running`) if its run closed before it completed.
        """
        answer = self._known
        path = self._connection.workflow_path(self.workflow_id, f"/updates/{self.id}")
        while answer is None:
            raw = await self._connection.transport.call(
                "GET", path, params={"wait_for_stage": UpdateStage.COMPLETED.value,
                                     "wait_ms": str(UPDATE_WAIT_MS)},
                timeout_s=UPDATE_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S)
            read = decode_answer(raw, WorkflowUpdateAnswer, f"GET {path}")
            if read.stage is UpdateStage.COMPLETED:
                answer = self._known = read
        return await outcome(self._connection, answer)


async def outcome(connection: ClusterConnection, answer: WorkflowUpdateAnswer) -> Any:
    what = f"update {answer.update_id} of workflow {answer.workflow_id!r}"
    if not isinstance(answer.failure, msgspec.UnsetType):
        failure = await connection.payloads.decode_failure(answer.failure,
                                                           f"failure details of {what}")
        raise errors.WorkflowUpdateFailedError(f"{what} failed: {failure.message}",
                                        cause=errors.from_failure(failure))
    if isinstance(answer.result, msgspec.UnsetType):
        return None
    return await connection.payloads.decode_json(answer.result, f"result of {what}")


async def start_update(connection: ClusterConnection, workflow_id: str, run_id: str | None,
                       update: Callable[..., Any] | str, args: Sequence[Any], *,
                       wait_for_stage: WorkflowUpdateStage,
                       update_id: str | None) -> WorkflowUpdateHandle:
    """Send the update and wait until it reaches `wait_for_stage` (ACCEPTED or COMPLETED)."""
    if wait_for_stage is WorkflowUpdateStage.ADMITTED:
        raise ValueError("wait_for_stage ADMITTED is not supported: use ACCEPTED or COMPLETED")
    name = update_name_of(update)
    what = f"input of update {name}"
    wanted = _WIRE_STAGE[wait_for_stage]
    body = UpdateWorkflowRequest(
        name=name, input=await connection.payloads.encode(payload(list(args), what),
                                                          PayloadShape.ARGS, what),
        update_id=update_id or uuid.uuid4().hex, run_id=run_id, wait_for_stage=wanted,
        wait_ms=UPDATE_WAIT_MS)
    path = connection.workflow_path(workflow_id, "/updates")
    # Retried (another node, a lost answer) with the same update id: never run twice.
    raw = await connection.transport.call(
        "POST", path, body=body, timeout_s=UPDATE_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S)
    answer = decode_answer(raw, WorkflowUpdateAnswer, f"POST {path}")
    outcome_path = f"{path}/{answer.update_id}"
    while UPDATE_STAGE_ORDER[answer.stage] < UPDATE_STAGE_ORDER[wanted]:
        # Admitted: wait on by reading (no further proposal), one long poll at a time.
        raw = await connection.transport.call(
            "GET", outcome_path, params={"wait_for_stage": wanted.value,
                                         "wait_ms": str(UPDATE_WAIT_MS)},
            timeout_s=UPDATE_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S)
        answer = decode_answer(raw, WorkflowUpdateAnswer, f"GET {outcome_path}")
    return WorkflowUpdateHandle(connection, workflow_id, answer.update_id,
                                workflow_run_id=answer.run_id, known=answer)
