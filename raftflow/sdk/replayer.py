"""Replay a saved history against current workflow code (run before deploying a change).

    raftflow workflow replay --history order-1.json --workflows myapp.workflows:Order

The history file is what `GET .../workflows/{id}/history` returns (`{"events": [...]}`, all
pages joined, as `raftflow workflow show --json` prints it) or a bare list of events. The code
passes if replaying every event produces exactly the commands the history recorded; a
divergence raises `NondeterminismError` naming the event id, the expected and the produced
command, which is what a worker running that code would hit on this workflow.

A history whose payloads a codec encoded is refused with `PayloadCodecError`: decode it first,
`replay_history(await decode_workflow_history(history, codec), workflows)`.
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

from raftflow.protocol.commands import WorkflowCommand
from raftflow.protocol.events import WorkflowExecutionStartedEventAttributes
from raftflow.sdk import errors
from raftflow.sdk._history_payloads import decode_events, refuse_envelopes
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._replay.definition import workflow_type_of
from raftflow.sdk._wire_json import commands_json
from raftflow.sdk._wire_payloads import WirePayloads
from raftflow.sdk._workflow_execution import WorkflowHistory
from raftflow.sdk.converter import PayloadCodec


@dataclass(frozen=True, slots=True)
class ReplayResult:
    workflow_type: str
    events: int
    closed: bool
    next_commands: list[WorkflowCommand]  # what the code would do next (empty once closed)


def replay_history(history: WorkflowHistory | Mapping[str, Any] | Sequence[Any],
                   workflows: Sequence[type]) -> ReplayResult:
    """Replay `history` with the matching class of `workflows` (raises NondeterminismError).

    `history` is a `WorkflowHistory` or its JSON (`{"events": [...]}` or a bare list); JSON
    that is not a history raises `MalformedHistoryError` (a ValueError), one whose payloads a
    codec encoded `PayloadCodecError` (a ValueError: `decode_workflow_history` it first)."""
    typed = history if isinstance(history, WorkflowHistory) else WorkflowHistory.from_json(history)
    events = typed.events
    if not events:
        raise ValueError("the history holds no events (expected {\"events\": [...]} or a list)")
    refuse_envelopes(events, "history")
    started = events[0].attributes
    if not isinstance(started, WorkflowExecutionStartedEventAttributes):
        raise ValueError("a history must start with its WorkflowExecutionStarted event")
    workflow_type = started.workflow_type
    by_type = {workflow_type_of(cls): cls for cls in workflows}
    if workflow_type not in by_type:
        raise ValueError(f"no workflow class for type {workflow_type!r} "
                         f"(given: {', '.join(sorted(by_type)) or 'none'})")
    meta = history if isinstance(history, Mapping) else {}
    runner = WorkflowRunner(
        by_type[workflow_type], namespace=str(meta.get("namespace", started.namespace or "default")),
        workflow_id=typed.workflow_id or started.workflow_id or "replay",
        run_id=typed.run_id or "replay", workflow_type=workflow_type,
        task_queue=started.task_queue)
    commands = runner.activate(events)
    return ReplayResult(workflow_type=workflow_type, events=len(events), closed=runner.is_done,
                        next_commands=list(commands))


async def decode_workflow_history(history: WorkflowHistory,
                                  codec: PayloadCodec) -> WorkflowHistory:
    """`history` (from `WorkflowHandle.history()`, as the server stores it) with the payloads
    `codec` encoded decoded, ready for `replay_history`. Raises `PayloadCodecError`."""
    events = await decode_events(WirePayloads(codec), history.events,
                                 f"history of workflow {history.workflow_id!r}")
    return WorkflowHistory(workflow_id=history.workflow_id, run_id=history.run_id,
                           events=events)


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
                          "closed": result.closed,
                          "next_commands": commands_json(result.next_commands)}))
    else:
        state = "closed" if result.closed else f"open, next: {len(result.next_commands)} commands"
        print(f"ok: {result.events} events of {result.workflow_type} replayed ({state})")
    return 0
