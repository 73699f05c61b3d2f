"""Hand-made histories in the exact shape of GET .../history, written the way the server
writes them (raftflow/shards/core): task boundaries, command events after
WorkflowTaskCompleted, ActivityTaskStarted right before an activity's closing event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from raftflow.protocol.updates import WorkflowUpdateRequest
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._replay.commands import COMMAND_OF_EVENT
from raftflow.sdk._wire_json import commands_json, decode_history

Event = dict[str, Any]

# Command name (the JSON `type`) -> the name of the event it writes.
_COMMAND_EVENT = {command.__name__: event.event_type.value
                  for event, command in COMMAND_OF_EVENT.items()}

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class HistoryBuilder:
    """Appends events; `time_ms` advances by 10 ms per event unless told otherwise."""

    def __init__(self, args: list[Any] | None = None) -> None:
        self.events: list[Event] = []
        self.clock = START
        self.scheduled_task = 0
        self.started_task = 0
        self.add("WorkflowExecutionStarted", workflow_type="W", task_queue="q",
                 input=args or [], attempt=1)

    def add(self, event_type: str, **attributes: Any) -> int:
        self.clock += timedelta(milliseconds=10)
        event_id = len(self.events) + 1
        self.events.append({"event_id": event_id, "event_type": event_type,
                            "timestamp": self.clock.isoformat(timespec="milliseconds"),
                            "attributes": attributes})
        return event_id

    def start_task(self) -> int:
        """WorkflowTaskScheduled + WorkflowTaskStarted; returns the started event id."""
        self.scheduled_task = self.add("WorkflowTaskScheduled", task_queue="q", attempt=1)
        self.started_task = self.add("WorkflowTaskStarted",
                                     scheduled_event_id=self.scheduled_task)
        return self.started_task

    def complete_task(self, commands: list[dict[str, Any]]) -> dict[str, int]:
        """WorkflowTaskCompleted + one event per command; returns "activity <id>" /
        "timer <id>" → the ActivityTaskScheduled / TimerStarted event id."""
        completed = self.add("WorkflowTaskCompleted", scheduled_event_id=self.scheduled_task,
                             started_event_id=self.started_task)
        ids: dict[str, int] = {}
        for command in commands:
            # A command writes every field; null ones are the event's defaults (no payload,
            # no policy), as the server fills them in.
            attributes = {k: v for k, v in command.items() if k != "type" and v is not None}
            event_id = self.add(_COMMAND_EVENT[command["type"]],
                                workflow_task_completed_event_id=completed, **attributes)
            if command["type"] == "ScheduleActivityTask":
                ids[f"activity {command['activity_id']}"] = event_id
            elif command["type"] == "StartTimer":
                ids[f"timer {command['timer_id']}"] = event_id
        return ids

    def fail_task(self, cause: str = "UnhandledCommand") -> None:
        self.add("WorkflowTaskFailed", scheduled_event_id=self.scheduled_task,
                 started_event_id=self.started_task, cause=cause, failure=None)

    def activity_completed(self, scheduled: int, result: Any) -> None:
        started = self.add("ActivityTaskStarted", scheduled_event_id=scheduled, attempt=1)
        self.add("ActivityTaskCompleted", scheduled_event_id=scheduled,
                 started_event_id=started, result=result)

    def activity_failed(self, scheduled: int, failure: dict[str, Any]) -> None:
        started = self.add("ActivityTaskStarted", scheduled_event_id=scheduled, attempt=3)
        self.add("ActivityTaskFailed", scheduled_event_id=scheduled, started_event_id=started,
                 failure=failure, retry_state="MaximumAttemptsReached")

    def activity_timed_out(self, scheduled: int, timeout_type: str) -> None:
        started = self.add("ActivityTaskStarted", scheduled_event_id=scheduled, attempt=1)
        self.add("ActivityTaskTimedOut", scheduled_event_id=scheduled, started_event_id=started,
                 timeout_type=timeout_type, last_failure=None, retry_state="Timeout")

    def timer_fired(self, timer_id: str, started: int) -> None:
        self.add("TimerFired", timer_id=timer_id, started_event_id=started)

    def signal(self, name: str, *args: Any) -> None:
        self.add("WorkflowExecutionSignaled", signal_name=name, input=list(args),
                 request_id="r")

    def cancel_request(self) -> None:
        self.add("WorkflowExecutionCancelRequested", cause="test", request_id="c")


def activate(runner: WorkflowRunner, events: list[Event],
             updates: Sequence[WorkflowUpdateRequest] = ()) -> list[dict[str, Any]]:
    """Feed JSON events as the worker does (decoded once, at its HTTP edge) and return the
    commands as the completion's JSON, which is what the server receives, written compactly
    for the tests to spell out: a field left at its default (null, "", false) is left out.
    `updates` are the updates the last task carries."""
    commands = runner.activate(decode_history(events, "test history"), updates)
    return [_compact(body, type(command)) for body, command in
            zip(commands_json(commands), commands, strict=True)]


def _compact(body: dict[str, Any], cls: type[msgspec.Struct]) -> dict[str, Any]:
    """`body` without the command's fields left at their defaults, and without an empty
    failure payload (details: null); nested values otherwise as sent, arrays as lists."""
    defaults = {f.name: f.default for f in msgspec.structs.fields(cls)}
    compact: dict[str, Any] = {}
    for key, value in body.items():
        if key != "type" and value == defaults.get(key, msgspec.NODEFAULT):
            continue
        if value is None:  # an empty payload (a default factory, so not in `defaults`)
            continue
        if isinstance(value, dict):
            value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()
                     if not (k == "details" and v is None)}
        compact[key] = value
    return compact


def runner_for(cls: type, run_id: str = "run-1") -> WorkflowRunner:
    return WorkflowRunner(cls, namespace="default", workflow_id="wf-1", run_id=run_id,
                          workflow_type=cls.__name__, task_queue="q")


class Driver:
    """Plays server for one runner: feeds the builder's new events, records the answers."""

    def __init__(self, cls: type, args: list[Any] | None = None) -> None:
        self.history = HistoryBuilder(args)
        self.runner = runner_for(cls)

    def task(self) -> list[dict[str, Any]]:
        """Start a workflow task and return the runner's commands for it."""
        self.history.start_task()
        return self.feed()

    def feed(self) -> list[dict[str, Any]]:
        return activate(self.runner, self.history.events[self.runner.last_event_id:])

    def commit(self, commands: list[dict[str, Any]]) -> dict[str, int]:
        return self.history.complete_task(commands)
