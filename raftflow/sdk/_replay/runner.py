"""Theory of operation: feeding history to a run, and checking its commands against history.

`WorkflowRunner.activate(events)` walks new history events in order (each exactly once across
calls, ids 1..n). Events fall in three groups:
- *inputs* (activity results, fired timers, signals, cancel requests, the start) are queued
  until the next workflow task runs;
- *WorkflowTaskStarted* runs an activation over the queued inputs, unless the next event shows
  that task failed or timed out (its commands never reached history, so the code must not run
  with that batch: the inputs move on to the next task, as they did on the server). With no
  next event the task is the one being worked on now: its commands are the answer;
- *command events* (ActivityTaskScheduled, TimerStarted, MarkerRecorded, close events...) must
  match, in order, the commands the code produced: else `NondeterminismError` naming the event.
  A task's leftover commands are caught at the next WorkflowTaskScheduled/Started.

The same walk serves replay (a full history from a cache miss) and sticky execution (only new
events): the code runs identically because inputs are batched by the same task boundaries. If
a task we answered is later recorded as failed or timed out (our answer was refused, or came
too late), or an earlier call raised, the runner rebuilds itself from the whole history it has
seen, so its state always equals a fresh replay.
"""

from __future__ import annotations

from collections.abc import Sequence

from raftflow.protocol.commands import WorkflowCommand
from raftflow.protocol.events import (
    EventAttributes,
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes,
    WorkflowTaskTimedOutEventAttributes,
)
from raftflow.protocol.events_updates import (
    WorkflowExecutionUpdateAcceptedEventAttributes,
)
from raftflow.protocol.updates import WorkflowUpdateRequest, WorkflowUpdateResponse
from raftflow.sdk import errors
from raftflow.sdk._replay import activation, commands, updates
from raftflow.sdk._replay.definition import definition_of
from raftflow.sdk._replay.runtime import RunIds, Runtime


def _is_task_failure(attributes: EventAttributes) -> bool:
    return isinstance(attributes, WorkflowTaskFailedEventAttributes
                      | WorkflowTaskTimedOutEventAttributes)


def _is_task_boundary(attributes: EventAttributes) -> bool:
    return isinstance(attributes, WorkflowTaskScheduledEventAttributes
                      | WorkflowTaskStartedEventAttributes)


class _RestartReplay(Exception):
    """A task this runner answered was recorded as failed: rebuild from the full history."""


class _Replay:
    """The walk over history for one Runtime (see module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.last_event_id = 0
        self.inputs: list[HistoryEvent] = []
        self.activated_started_id = 0
        # The updates the task being worked on now (the last one) carries (updates.py).
        self.live_updates: Sequence[WorkflowUpdateRequest] = ()

    def feed(self, events: Sequence[HistoryEvent]) -> None:
        for index, event in enumerate(events):
            if event.event_id != self.last_event_id + 1:
                raise ValueError(f"history events must have ids 1..n without gaps: "
                                 f"{event.event_id} follows {self.last_event_id}")
            self.last_event_id = event.event_id
            self._one(events, index)

    def _one(self, events: Sequence[HistoryEvent], index: int) -> None:
        event = events[index]
        attributes = event.attributes
        if commands.is_command_event(attributes):
            self._match(event, attributes)
            return
        match attributes:
            case WorkflowTaskStartedEventAttributes():
                self._check_no_leftover(event)
                self._activate(events, index)
            case WorkflowTaskFailedEventAttributes() | WorkflowTaskTimedOutEventAttributes():
                if attributes.started_event_id == self.activated_started_id:
                    raise _RestartReplay()
            case WorkflowTaskScheduledEventAttributes():
                self._check_no_leftover(event)
            case (WorkflowExecutionTerminatedEventAttributes()
                  | WorkflowExecutionTimedOutEventAttributes()):  # closed by the server
                self._check_no_leftover(event)
                self.runtime.state.closed = True
            case WorkflowTaskCompletedEventAttributes():
                pass
            case WorkflowExecutionUpdateAcceptedEventAttributes():
                # Its handler started with the task it followed (`_activate`), unless that
                # task ran before its updates were known.
                if (attributes.update_id not in self.runtime.delivered_updates
                        and not self.runtime.state.closed):
                    updates.deliver_late(self.runtime, WorkflowUpdateRequest(
                        update_id=attributes.update_id, name=attributes.name,
                        input=attributes.input))
            case _:
                self.inputs.append(event)

    def _match(self, event: HistoryEvent, attributes: commands.CommandEventAttributes) -> None:
        pending = self.runtime.pop_pending()
        if pending is None or not commands.corresponds(attributes, pending.command):
            raise errors.NondeterminismError(
                event.event_id, commands.describe_event(attributes),
                commands.describe_command(None if pending is None else pending.command))
        self.runtime.bind(event, pending)

    def _check_no_leftover(self, event: HistoryEvent) -> None:
        sent = [p for p in self.runtime.pending if p.sent]
        if sent:
            raise errors.NondeterminismError(
                event.event_id, f"no further command ({event.event_type.value} follows)",
                commands.describe_command(sent[0].command))

    def _activate(self, events: Sequence[HistoryEvent], index: int) -> None:
        following = events[index + 1] if index + 1 < len(events) else None
        if following is not None and _is_task_failure(following.attributes):
            return  # this task's answer never reached history; its inputs go to the next
        recorded: list[HistoryEvent] = []
        accepted: list[WorkflowUpdateRequest] = []
        for later_index in range(index + 2, len(events)):  # no slicing: O(task), not O(history)
            later = events[later_index]
            if _is_task_boundary(later.attributes):
                break
            if commands.is_command_event(later.attributes):
                recorded.append(later)
            elif isinstance(later.attributes, WorkflowExecutionUpdateAcceptedEventAttributes):
                update = later.attributes
                accepted.append(WorkflowUpdateRequest(update_id=update.update_id,
                                                      name=update.name, input=update.input))
        inputs, self.inputs = self.inputs, []
        self.activated_started_id = events[index].event_id
        activation.activate(self.runtime, events[index], inputs,
                            replaying=following is not None, recorded=recorded,
                            update_requests=self.live_updates if following is None else accepted)
        # Everything produced while replaying is checked against the events that follow;
        # mark it sent so it is never returned as new work.
        if following is not None:
            self.runtime.take_unsent()


class WorkflowRunner:
    """Runs one workflow run's code over its history, deterministically.

    Guarantees: the same history always yields the same commands; commands produced while
    replaying are checked against history in order; signals reach handlers in history order,
    exactly once per event. Pure: no IO, no clock, no host event loop.
    """

    def __init__(self, workflow_cls: type, *, namespace: str, workflow_id: str, run_id: str,
                 workflow_type: str, task_queue: str) -> None:
        self._definition = definition_of(workflow_cls)
        self._ids = RunIds(namespace=namespace, workflow_id=workflow_id, run_id=run_id,
                           workflow_type=workflow_type, task_queue=task_queue)
        self._history: list[HistoryEvent] = []
        self._replay = _Replay(Runtime(self._definition, self._ids))
        self._broken = False
        self._live_updates: Sequence[WorkflowUpdateRequest] = ()

    @property
    def last_event_id(self) -> int:
        """Id of the last event fed; the next `activate` must start at this + 1."""
        return len(self._history)

    @property
    def started_traceparent(self) -> str:
        """The traceparent the run was started with ("" for none, or before event 1 is fed)."""
        started = self._history[0].attributes if self._history else None
        return (started.traceparent
                if isinstance(started, WorkflowExecutionStartedEventAttributes) else "")

    @property
    def is_done(self) -> bool:
        """True once the run produced its close command or history shows it closed."""
        return self._replay.runtime.state.closed

    def activate(self, events: Sequence[HistoryEvent],
                 updates: Sequence[WorkflowUpdateRequest] = ()) -> list[WorkflowCommand]:
        """Feed new history events (typed: the worker decodes the JSON at its HTTP edge);
        return the commands of the workflow task they end with. `updates` are the updates
        that task carries: their answers are then `take_update_responses()`.

        Raises:
            NondeterminismError: replayed code diverged from history (fail the task).
            WorkflowTaskError: the code failed in a way that fails the task, not the workflow.
            ValueError: events are not the continuation of what was fed before.
        """
        if events and events[0].event_id != self.last_event_id + 1:
            raise ValueError(f"history must continue at event {self.last_event_id + 1}, "
                             f"got {events[0].event_id}")
        self._history.extend(events)
        self._live_updates = self._replay.live_updates = tuple(updates)
        self._replay.runtime.update_responses = []
        try:
            if self._broken:
                self._rebuild()
            else:
                try:
                    self._replay.feed(events)
                except _RestartReplay:
                    self._rebuild()
        except BaseException:
            self._broken = True
            raise
        return self._replay.runtime.take_unsent()

    def awaits_activity(self, scheduled_event_id: int) -> bool:
        """True if the code waits for the activity scheduled at that event (its close resolves
        it) and the runner is sound: the task that close makes may be run in advance."""
        return not self._broken and scheduled_event_id in self._replay.runtime.activities

    def take_update_responses(self) -> list[WorkflowUpdateResponse]:
        """The accept or reject of each update the last `activate` carried, in order."""
        responses, self._replay.runtime.update_responses = self._replay.runtime.update_responses, []
        return responses

    def _rebuild(self) -> None:
        self._replay = _Replay(Runtime(self._definition, self._ids))
        self._replay.live_updates = self._live_updates
        self._broken = False
        self._replay.feed(self._history)

    def query(self, name: str, args: Sequence[object]) -> object:
        """Answer a query from the state after the last activation.

        Raises QueryFailedError for an unknown name, a handler that raised or tried to issue
        a command, or a result JSON cannot carry.
        """
        runtime = self._replay.runtime
        method = self._definition.queries.get(name)
        if method is None:
            raise errors.QueryFailedError(
                f"workflow {self._definition.name} has no query {name!r} "
                f"(known: {sorted(self._definition.queries)})")
        if runtime.instance is None:
            raise errors.QueryFailedError("the workflow has not started yet")
        runtime.state.in_query = True
        undo = runtime.loop.enter()
        try:
            result = getattr(runtime.instance, method)(*args)
            return commands.checked_payload(result, f"result of query {name}")
        except errors.QueryFailedError:
            raise
        except Exception as error:
            raise errors.QueryFailedError(f"query {name} failed: {error!r}") from error
        finally:
            undo()
            runtime.state.in_query = False
