"""Replay a saved history against current workflow code (run before deploying a change).

    raftflow workflow replay --history order-1.json --workflows myapp.workflows:Order

The history file is what `GET .../workflows/{id}/history` returns (`{"events": [...]}`, all
pages joined, as `raftflow workflow show --json` prints it) or a bare list of events. The code
passes if replaying every event produces exactly the commands the history recorded; a
divergence raises `NondeterminismError` naming the event id, the expected and the produced
command, which is what a worker running that code would hit on this workflow.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftflow.sdk import errors
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._replay.definition import workflow_type_of


@dataclass(frozen=True, slots=True)
class ReplayResult:
    workflow_type: str
    events: int
    closed: bool
    next_commands: list[dict[str, Any]]  # what the code would do next (empty once closed)


def _events(history: Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    events = history.get("events") if isinstance(history, Mapping) else history
    if not isinstance(events, list) or not events:
        raise ValueError("the history holds no events (expected {\"events\": [...]} or a list)")
    if events[0].get("event_type") != "WorkflowExecutionStarted":
        raise ValueError("a history must start with its WorkflowExecutionStarted event")
    return [dict(e) for e in events]


def replay_history(history: Mapping[str, Any] | Sequence[Any],
                   workflows: Sequence[type]) -> ReplayResult:
    """Replay `history` with the matching class of `workflows` (raises NondeterminismError)."""
    events = _events(history)
    started = events[0].get("attributes") or {}
    workflow_type = str(started.get("workflow_type", ""))
    by_type = {workflow_type_of(cls): cls for cls in workflows}
    if workflow_type not in by_type:
        raise ValueError(f"no workflow class for type {workflow_type!r} "
                         f"(given: {', '.join(sorted(by_type)) or 'none'})")
    meta = history if isinstance(history, Mapping) else {}
    runner = WorkflowRunner(
        by_type[workflow_type], namespace=str(meta.get("namespace", started.get("namespace", "default"))),
        workflow_id=str(meta.get("workflow_id", started.get("workflow_id", "replay"))),
        run_id=str(meta.get("run_id", "replay")), workflow_type=workflow_type,
        task_queue=str(started.get("task_queue", "")))
    commands = runner.activate(events)
    return ReplayResult(workflow_type=workflow_type, events=len(events), closed=runner.is_done,
                        next_commands=list(commands))


def load_class(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--workflows takes module:Class, got {spec!r}")
    found = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(found, type), spec
    return found


def run_cli(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path.cwd()))  # modules of the project the user runs this in
    try:
        workflows = [load_class(spec) for spec in args.workflows]
        history = json.loads(Path(args.history).read_text())
        result = replay_history(history, workflows)
    except errors.NondeterminismError as error:
        print(f"nondeterminism: {error}", file=sys.stderr)
        return 1
    except (ValueError, OSError, ImportError, AttributeError, errors.WorkflowTaskError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"workflow_type": result.workflow_type, "events": result.events,
                          "closed": result.closed, "next_commands": result.next_commands}))
    else:
        state = "closed" if result.closed else f"open, next: {len(result.next_commands)} commands"
        print(f"ok: {result.events} events of {result.workflow_type} replayed ({state})")
    return 0
