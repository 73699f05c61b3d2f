"""Workflow-update steps of the hypothesis state machine (test_core_stateful.py).

Not a test module. A worker's answer to the updates its task carried is decided by the update
id, so that every kind of answer occurs: "u1" is rejected, "u2" accepted and left running,
"u4" left out (the core rejects it), "u3" accepted and completed at once; updates accepted by earlier tasks are completed
too. Completions go before a closing command, which must stay last.
"""

from __future__ import annotations

from hypothesis import strategies as st

from raftflow.protocol.commands import (
    CancelWorkflowExecution,
    CompleteWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.results import Result
from raftflow.protocol.updates import (
    CompleteWorkflowUpdate,
    RequestWorkflowUpdate,
    UpdateStage,
    WorkflowUpdateResponse,
    WorkflowUpdateResult,
)
from raftflow.shards.core.state import ShardState

UPDATE_IDS = st.sampled_from(["u1", "u2", "u3", "u4"])
CLOSE_TYPES = (CompleteWorkflowExecution, FailWorkflowExecution, CancelWorkflowExecution,
               ContinueAsNewWorkflowExecution)
# Model of update-id dedup: the completed outcome per (workflow id, update id).
UpdateOutcomes = dict[tuple[str, str], WorkflowUpdateResult]


def update_request(now_ms: int, namespace: str, workflow_id: str,
                   update_id: str) -> RequestWorkflowUpdate:
    return RequestWorkflowUpdate(now_ms=now_ms, namespace=namespace, workflow_id=workflow_id,
                                 update_id=update_id, name="upd", input=b"[1]")


def check_update_answer(outcomes: UpdateOutcomes, key: tuple[str, str], result: Result) -> None:
    """Once an update completed, every request with its id gets that same outcome."""
    if not isinstance(result, WorkflowUpdateResult):
        return
    if key in outcomes:
        assert result == outcomes[key], (key, result)
    elif result.stage is UpdateStage.COMPLETED:
        outcomes[key] = result


def answer_updates(state: ShardState, carried: tuple[str, ...], token: TaskToken,
                   commands: tuple[WorkflowCommand, ...],
                   ) -> tuple[tuple[WorkflowUpdateResponse, ...], tuple[WorkflowCommand, ...]]:
    """(The completion's update responses, its commands with the update completions added)."""
    responses = tuple(WorkflowUpdateResponse(update_id=u, rejection=(
        Failure(message="no") if u == "u1" else None)) for u in carried if u != "u4")
    execution = state.executions.get(token.run_id)
    earlier = [] if execution is None else [u for u, update in execution.updates.items()
                                            if update.accepted]
    done = [*earlier, *(u for u in carried if u == "u3")]
    ends = tuple(CompleteWorkflowUpdate(update_id=u, result=b"1") for u in done)
    if commands and isinstance(commands[-1], CLOSE_TYPES):
        return responses, (*commands[:-1], *ends, commands[-1])
    return responses, (*commands, *ends)
