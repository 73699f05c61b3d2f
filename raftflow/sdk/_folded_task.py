"""Completing an activity together with the workflow task its completion makes (one commit).

Theory of operation. Without this, a workflow step costs the worker two calls and the cluster
two commits: the activity's completion (which starts the run's next workflow task eagerly for
this worker) and, once the task ran, its completion. When this worker holds the activity's run
in its sticky cache, idle and up to date, it already knows the events the completion will
write (ActivityTaskStarted, ActivityTaskCompleted, WorkflowTaskScheduled, WorkflowTaskStarted,
after the run's last event, which the runner has seen): it feeds them to the runner at its own
clock's time, and sends the task's commands with the activity's completion
(`workflow_task_completion`). The server applies both in one commit if the history is still
what the runner saw, at that time (shards/core/on_folded_task.py); the answer then carries the
events the task's completion wrote, which the runner follows at once, so that the run's next
activity can fold too. Otherwise the server applies the completion alone and starts the task
for this worker as before: the runner, now ahead of history, is dropped, and the task is run
from history like any eager task.

A completion answer's events are followed in the same way after every workflow task this
worker completes (`follow_written`): that is what keeps a cached runner at the run's last
event. Not folded: with a payload codec or interceptors (the codec and the trace context are
applied around a workflow task run, which this path does not repeat), when the runner is busy,
missing, or not waiting for that activity, or when the result and commands are big
(FOLDED_BODY_BYTES_MAX: the two calls each have the gateway's whole body limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import msgspec

from raftflow.protocol.events import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from raftflow.protocol.http_answers import ActivityTask
from raftflow.protocol.http_bodies import CompleteActivityTaskRequest, FoldedWorkflowTaskBody
from raftflow.protocol.payload import json_enc_hook
from raftflow.sdk._history_payloads import decode_events, encode_commands
from raftflow.sdk._interceptors import Interceptors
from raftflow.sdk._payload_limits import checked_commands
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import reserve_slots
from raftflow.sdk._wire_payloads import WirePayloads
from raftflow.sdk._wire_tasks import eager_activity_tasks, folded_task_completed, written_events
from raftflow.sdk._worker_policy import eager_activities_wanted

log = logging.getLogger(__name__)

# A fold's activity result plus its commands' JSON, at most: a bigger step takes two calls, so
# the folded body stays far below the gateway's BODY_BYTES_MAX (each part alone may reach it).
FOLDED_BODY_BYTES_MAX = 256 * 1024


@dataclass(slots=True)
class Fold:
    """A workflow task run in advance, riding on an activity's completion."""

    run_id: str
    runner: WorkflowRunner
    body: FoldedWorkflowTaskBody
    eager_slots: int  # activity slots reserved for the activities it starts for this worker


async def follow_written(runner: WorkflowRunner, answer: object,
                         payloads: WirePayloads) -> bool:
    """Feed `runner` the events a completion wrote (its answer's `events`); False if the
    runner cannot follow them (it must not be kept then)."""
    try:
        events = await decode_events(payloads, written_events(answer), "a completion's events")
        if events and events[0].event_id == runner.last_event_id + 1:
            runner.activate(events)  # command events only: matched, nothing new to run
    except Exception as error:
        log.info("cached run could not follow its completion's events: %r", error)
        return False
    return True


class TaskFolding:
    """Folds workflow tasks into activity completions for one worker."""

    def __init__(self, cache: RunnerCache, *, task_queue: str, identity: str,
                 activity_types: Collection[str], activity_slots: asyncio.Semaphore,
                 start_activity: Callable[[str, object], None], payloads: WirePayloads,
                 interceptors: Interceptors) -> None:
        self._cache = cache
        self._task_queue = task_queue
        self._identity = identity
        self._activity_types = activity_types
        self._activity_slots = activity_slots
        self._start_activity = start_activity
        self._enabled = payloads.codec is None and not interceptors
        self._payloads = payloads
        self.folds_sent = 0  # read by tests and `raftflow bench`
        self.folds_applied = 0

    async def fold(self, task: ActivityTask, outcome: CompleteActivityTaskRequest) -> Fold | None:
        """Run the task this completion makes, if this worker holds the run ready for it."""
        if (not self._enabled or task.scheduled_event_id < 1
                or len(outcome.result) > FOLDED_BODY_BYTES_MAX):
            return None
        runner = self._cache.take_waiting(task.run_id, task.scheduled_event_id)
        if runner is None:
            return None
        after = runner.last_event_id
        time_ms = int(time.time() * 1000)
        try:
            commands = runner.activate(_events_of_completion(
                after, time_ms, task, outcome.result, self._identity, self._task_queue))
            if runner.take_update_responses():
                return None  # no update rides on a folded task (the server has none waiting)
            wire = checked_commands(await encode_commands(self._payloads, commands))
        except Exception as error:  # as a failed task would: the task runs from history
            log.info("folded workflow task of run %s not run: %r", task.run_id, error)
            return None
        size = len(outcome.result) + len(msgspec.json.encode(wire, enc_hook=json_enc_hook))
        if size > FOLDED_BODY_BYTES_MAX:
            return None  # the runner ran ahead: dropped, the task runs from history
        wanted = eager_activities_wanted(commands, self._task_queue, self._activity_types)
        eager = await reserve_slots(self._activity_slots, wanted)
        self.folds_sent += 1
        return Fold(run_id=task.run_id, runner=runner, eager_slots=eager,
                    body=FoldedWorkflowTaskBody(after_event_id=after, workflow_time_ms=time_ms,
                                                commands=wire, eager_activities_max=eager))

    async def settle(self, fold: Fold, address: str, answer: object) -> bool:
        """After the completion's answer: True if the server applied the folded task (the
        runner is kept and the activities it started run here), False if it applied the
        completion alone (the runner is dropped; the answer's task runs from history)."""
        if not folded_task_completed(answer):
            self.abandon(fold)
            return False
        self.folds_applied += 1
        if await follow_written(fold.runner, answer, self._payloads):
            self._cache.keep(fold.run_id, fold.runner)
        started = eager_activity_tasks(answer)
        assert len(started) <= fold.eager_slots, (len(started), fold.eager_slots)
        for activity_task in started:
            self._start_activity(address, activity_task)
        for _ in range(fold.eager_slots - len(started)):
            self._activity_slots.release()
        return True

    def abandon(self, fold: Fold) -> None:
        """The fold did not happen (refused, or the call failed): free what it held."""
        for _ in range(fold.eager_slots):
            self._activity_slots.release()


def _events_of_completion(after: int, time_ms: int, task: ActivityTask, result: bytes,
                          identity: str, task_queue: str) -> list[HistoryEvent]:
    """The events the completion writes, as the server writes them, for the runner. Replay
    reads their kinds, ids, the result and the task's start time; the rest it ignores."""
    scheduled = task.scheduled_event_id
    return [
        HistoryEvent(event_id=after + 1, time_ms=time_ms,
                     attributes=ActivityTaskStartedEventAttributes(
                         scheduled_event_id=scheduled, identity=identity,
                         attempt=task.attempt)),
        HistoryEvent(event_id=after + 2, time_ms=time_ms,
                     attributes=ActivityTaskCompletedEventAttributes(
                         scheduled_event_id=scheduled, result=result, identity=identity,
                         started_event_id=after + 1)),
        HistoryEvent(event_id=after + 3, time_ms=time_ms,
                     attributes=WorkflowTaskScheduledEventAttributes(task_queue=task_queue)),
        HistoryEvent(event_id=after + 4, time_ms=time_ms,
                     attributes=WorkflowTaskStartedEventAttributes(
                         scheduled_event_id=after + 3, identity=identity)),
    ]

