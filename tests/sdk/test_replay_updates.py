"""Goal: workflow updates in replay. A live task validates its updates (rejecting a bad
argument or an unknown name, accepting the others and starting their handlers); replay starts
handlers from WorkflowExecutionUpdateAccepted without running validators; changed handler code
is caught as nondeterminism.

Method: the golden `updates.json` history (recorded from `sample_workflows.Ledger`) fed to a
`WorkflowRunner`, whole or cut at a task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raftflow.protocol.updates import WorkflowUpdateRequest
from raftflow.sdk import errors
from raftflow.sdk._replay import WorkflowRunner
from tests.sdk.history_builder import activate
from tests.sdk.sample_workflows import Ledger

HISTORY = Path(__file__).resolve().parents[1] / "data" / "histories" / "updates.json"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(HISTORY.read_text())
    return document


def _runner(document: dict[str, Any]) -> WorkflowRunner:
    return WorkflowRunner(Ledger, namespace=document["namespace"],
                          workflow_id=document["workflow_id"], run_id=document["run_id"],
                          workflow_type="Ledger", task_queue=document["task_queue"])


def test_a_live_task_validates_accepts_and_rejects() -> None:
    document = _document()
    events = document["events"]
    started = [i for i, e in enumerate(events) if e["event_type"] == "WorkflowTaskStarted"][1]
    runner = _runner(document)
    commands = activate(runner, events[:started + 1], [
        WorkflowUpdateRequest(update_id="neg", name="deposit", input=b"[-1]"),
        WorkflowUpdateRequest(update_id="ok", name="deposit", input=b"[3]"),
        WorkflowUpdateRequest(update_id="unknown", name="withdraw", input=b"[]")])
    responses = {r.update_id: r.rejection for r in runner.take_update_responses()}
    assert responses["ok"] is None
    neg, unknown = responses["neg"], responses["unknown"]
    assert neg is not None and "positive" in neg.message
    assert unknown is not None and unknown.type == "InvalidUpdate"
    assert [c["type"] for c in commands] == ["ScheduleActivityTask"]  # only "ok" runs
    assert runner.take_update_responses() == []


def test_replay_runs_no_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse_everything(self: Ledger, amount: int) -> None:
        raise AssertionError("a validator ran on replay")

    monkeypatch.setattr(Ledger, "check_deposit", refuse_everything)
    document = _document()
    runner = _runner(document)
    assert activate(runner, document["events"]) == []
    assert runner.is_done and runner.take_update_responses() == []


def test_a_changed_update_handler_is_nondeterminism(monkeypatch: pytest.MonkeyPatch) -> None:
    async def deposit_without_activity(self: Ledger, amount: int) -> int:
        self.balance += amount * amount
        return self.balance

    monkeypatch.setattr(Ledger, "deposit", deposit_without_activity)
    document = _document()
    with pytest.raises(errors.NondeterminismError):
        activate(_runner(document), document["events"])
