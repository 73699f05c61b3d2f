"""Goal: replaying a history recorded on a real cluster reproduces it exactly.

Method: the JSON files in tests/data/histories/ were recorded by `record_histories.py` from the
sample workflows. For every workflow task that history shows completed, a fresh runner fed the
history up to that task's WorkflowTaskStarted must answer exactly the commands recorded after
its WorkflowTaskCompleted (types, ids and payloads). A full replay, and a sticky replay fed one
event at a time, must raise nothing, produce no new command and end closed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raftflow.protocol.history_json import payload_from_json
from raftflow.protocol.updates import WorkflowUpdateRequest
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._replay.commands import COMMAND_OF_EVENT
from tests.sdk.history_builder import activate
from tests.sdk.sample_workflows import WORKFLOWS, PatchedOrder

# Event name -> the name of the command that writes it.
COMMAND_EVENTS = {event.event_type.value: command.__name__
                  for event, command in COMMAND_OF_EVENT.items()}
HISTORIES = Path(__file__).resolve().parents[1] / "data" / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
_SERVER_FILLED = {"workflow_task_completed_event_id", "retry_policy", "task_queue",
                  "schedule_to_close_timeout_ms", "schedule_to_start_timeout_ms",
                  "heartbeat_timeout_ms", "started_event_id", "new_execution_run_id",
                  "workflow_type", "run_timeout_ms", "task_timeout_ms",
                  # Defaults the wire leaves out and the server writes out (the namespace is
                  # the workflow's own):
                  "namespace", "id_reuse_policy", "parent_close_policy",
                  "accepted_event_id"}


# Text fields whose "" (the default the wire leaves out) an event writes out.
_EMPTY_IS_DEFAULT = {"run_id", "reason"}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def runner(document: dict[str, Any], cls: type | None = None) -> WorkflowRunner:
    return WorkflowRunner(cls or WORKFLOWS[document["workflow_type"]],
                          namespace=document["namespace"], workflow_id=document["workflow_id"],
                          run_id=document["run_id"], workflow_type=document["workflow_type"],
                          task_queue=document["task_queue"])


def as_command(event: dict[str, Any]) -> dict[str, Any]:
    """The command that wrote `event`, minus the fields the server fills in."""
    body = {k: v for k, v in event["attributes"].items()
            if k not in _SERVER_FILLED and v is not None
            and (v != "" or k not in _EMPTY_IS_DEFAULT)}
    if isinstance(body.get("failure"), dict) and body["failure"].get("details") is None:
        # As `activate` writes commands: an empty failure payload left out.
        body["failure"] = {k: v for k, v in body["failure"].items() if k != "details"}
    return {"type": COMMAND_EVENTS[event["event_type"]], **body}


def recorded_tasks(events: list[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """(index of WorkflowTaskStarted, commands recorded for that task) per completed task."""
    tasks = []
    for index, event in enumerate(events):
        if event["event_type"] != "WorkflowTaskCompleted":
            continue
        produced = [as_command(e) for e in events[index + 1:]
                    if e["event_type"] in COMMAND_EVENTS
                    and e["attributes"].get("workflow_task_completed_event_id") == event["event_id"]]
        tasks.append((index - 1, produced))
    return tasks


def accepted_updates(events: list[dict[str, Any]],
                     started_index: int) -> list[WorkflowUpdateRequest]:
    """The updates the task started at `started_index` accepted (the Accepted events right
    after its WorkflowTaskCompleted): what it carried, less the ones it rejected, which
    produce no command."""
    accepted = []
    for event in events[started_index + 2:]:
        if event["event_type"] != "WorkflowExecutionUpdateAccepted":
            break
        attributes = event["attributes"]
        accepted.append(WorkflowUpdateRequest(update_id=attributes["update_id"],
                                              name=attributes["name"],
                                              input=payload_from_json(attributes["input"])))
    return accepted


def test_update_history_records_accept_and_complete_but_not_the_rejection() -> None:
    events = load(HISTORIES / "updates.json")["events"]
    names = [e["attributes"]["name"] for e in events
             if e["event_type"] == "WorkflowExecutionUpdateAccepted"]
    assert names == ["deposit", "deposit", "close"]  # the -1 deposit was rejected: no event
    completed = [e["attributes"] for e in events
                 if e["event_type"] == "WorkflowExecutionUpdateCompleted"]
    assert [c["result"] for c in completed] == [9, None, 9]
    assert completed[1]["failure"]["type"] == "Limit"
    assert events[-1]["attributes"]["result"] == 9


def comparable(command: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in command.items() if k not in _SERVER_FILLED and v is not None}


def test_golden_files_exist() -> None:
    assert len(FILES) >= 9, FILES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_task_reproduces_its_recorded_commands(path: Path) -> None:
    document = load(path)
    events = document["events"]
    tasks = recorded_tasks(events)
    assert tasks, "a golden history has at least one completed task"
    for started_index, expected in tasks:
        assert events[started_index]["event_type"] == "WorkflowTaskStarted"
        produced = activate(runner(document), events[:started_index + 1],
                            accepted_updates(events, started_index))
        assert [comparable(c) for c in produced] == expected, f"task at event {started_index + 1}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_full_replay_adds_nothing_and_ends_closed(path: Path) -> None:
    document = load(path)
    replayed = runner(document)
    assert activate(replayed, document["events"]) == []
    assert replayed.is_done
    assert replayed.last_event_id == len(document["events"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_sticky_replay_one_event_at_a_time(path: Path) -> None:
    document = load(path)
    sticky = runner(document)
    for event in document["events"]:
        activate(sticky, [event])
    assert sticky.is_done


def test_results_match_the_recorded_close_events() -> None:
    order = load(HISTORIES / "order_retry.json")["events"]
    result = order[-1]["attributes"]["result"]
    assert result["charge"] == "charged o-1" and result["ship"] == "shipped o-1"
    assert order[5]["attributes"]["attempt"] == 2, "the first charge attempt failed"
    fan_out = load(HISTORIES / "gather_three.json")["events"]
    assert fan_out[-1]["attributes"]["result"] == [1, 4, 9]
    failing = load(HISTORIES / "activity_failure.json")["events"][-1]
    assert failing["event_type"] == "WorkflowExecutionFailed"
    assert failing["attributes"]["failure"]["message"] == "order failed: no stock for o-2"
    assert failing["attributes"]["failure"]["type"] == "OrderFailed"


def test_queries_answer_from_replayed_state() -> None:
    document = load(HISTORIES / "signals.json")
    replayed = runner(document)
    activate(replayed, document["events"])
    assert replayed.query("items", []) == ["a", "b", "c"]


def test_old_history_replays_on_patched_code() -> None:
    """unpatched_v1 was recorded by the old code (no marker): the patched code replays it
    on the old path without divergence."""
    document = load(HISTORIES / "unpatched_v1.json")
    replayed = runner(document, PatchedOrder)
    assert activate(replayed, document["events"]) == []
    events = document["events"]
    assert events[-1]["attributes"]["result"] == "v1 9"
    last_started, expected = recorded_tasks(events)[-1]
    produced = activate(runner(document, PatchedOrder), events[:last_started + 1])
    assert produced == expected == [{"type": "CompleteWorkflowExecution", "result": "v1 9"}]
