"""The worker's workflow tasks and queries: replay the run, answer with its commands.

Theory of operation. Replayed runs stay in a bounded cache (`_runner_cache`); the server sends
this worker (its `sticky_queue`) only new events for runs it completed last. Any error while
running the code (a bug, `NondeterminismError`) fails the workflow task (the server retries it)
and drops the runner. Runners run on the worker's event loop, never in a thread, so a runner is
never used by a workflow task and a query at the same time.

Eager activities: a completion asks the server to start, in the same commit, the activities
it schedules that this worker can run (their slots reserved first); they arrive in the answer
and run here at once, skipping a poll and a commit each.

A task is decoded into typed values where it enters, in `handle` (`_wire_tasks`: polled and
eager tasks alike), with its history as protocol events; a malformed one fails the task
(`MalformedTaskError`) before any workflow code runs, or is dropped if it has no readable
token. The commands are rendered into the completion's JSON here, once. With a payload codec
the history's payloads are decoded before the code replays and the commands' payloads encoded
after it ran (`_history_payloads`); a payload the codec cannot read fails the task like a bug
(`PayloadCodecError`), so the run resumes once a worker with the right codec takes it.

Query tasks arrive on the workflow-task poll (they carry `query_id`): answered from the cached
runner when it has seen exactly the query's history, else from a fresh replay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

import msgspec

from raftflow.protocol.commands import (
    Failure,
    ScheduleActivityTask,
    StartChildWorkflowExecution,
    WorkflowCommand,
)
from raftflow.protocol.events import HistoryEvent, WorkflowExecutionStartedEventAttributes
from raftflow.protocol.history_json import payload_from_json
from raftflow.protocol.http_answers import WorkflowTask
from raftflow.protocol.http_bodies import (
    CompleteWorkflowTaskRequest,
    FailWorkflowTaskRequest,
    QueryAnswerRequest,
    QueryFailureBody,
)
from raftflow.protocol.payload import Payload, json_enc_hook
from raftflow.protocol.updates import WorkflowUpdateRequest
from raftflow.sdk import errors
from raftflow.sdk._folded_task import follow_written
from raftflow.sdk._history_payloads import decode_events, encode_commands
from raftflow.sdk._interceptors import NO_INTERCEPTORS, Interceptors, trace_headers
from raftflow.sdk._payload_limits import checked_commands
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import TaskExchange, reserve_slots
from raftflow.sdk._wire_payloads import NO_CODEC, PayloadShape, WirePayloads
from raftflow.sdk._wire_tasks import (
    TypedQueryTask,
    TypedWorkflowTask,
    decode_workflow_poll,
    eager_activity_tasks,
)
from raftflow.sdk._worker_policy import eager_activities_wanted, fail_backoff_s
from raftflow.sdk.interceptor import WorkflowTaskInput

log = logging.getLogger(__name__)


class WorkflowTaskRunner:
    """Runs one worker's workflow tasks and query tasks.

    `start_activity(address, task)` runs an eagerly started activity task in an activity slot
    this runner reserved for it.
    """

    def __init__(self, exchange: TaskExchange, cache: RunnerCache, *, task_queue: str,
                 activity_types: Collection[str], activity_slots: asyncio.Semaphore,
                 start_activity: Callable[[str, object], None],
                 payloads: WirePayloads = NO_CODEC,
                 interceptors: Interceptors = NO_INTERCEPTORS) -> None:
        self._exchange = exchange
        self._interceptors = interceptors
        self._payloads = payloads
        self._cache = cache
        self._task_queue = task_queue
        self._activity_types = activity_types
        self._activity_slots = activity_slots
        self._start_activity = start_activity

    async def handle(self, address: str, body: object) -> None:
        """Run one workflow task or query task, given as its JSON (polled or eager)."""
        try:
            task = decode_workflow_poll(body)
        except errors.MalformedTaskError as error:
            await self._refuse(error)
            return
        if isinstance(task, TypedQueryTask):
            await self._answer_query(task)
        else:
            await self._run(address, task)

    async def _run(self, address: str, task: TypedWorkflowTask) -> None:
        answer = task.answer
        try:
            # The codec is awaited here, never inside replay: payloads in, plain; out, encoded.
            task = TypedWorkflowTask(answer, await decode_events(
                self._payloads, task.events, f"workflow task of run {answer.run_id}"))
            updates = [WorkflowUpdateRequest(
                update_id=u.update_id, name=u.name, input=await self._payloads.decode(
                    payload_from_json(u.input), f"input of update {u.name} ({u.update_id})"))
                for u in answer.updates]
            runner, events = await self._cache.take(task)
            traceparent = ""
            if self._interceptors:
                commands, traceparent = self._traced_activation(answer, runner, events, updates)
            else:
                commands = runner.activate(events, updates)
            update_responses = [msgspec.structs.replace(r, rejection=(
                await self._payloads.encode_failure(r.rejection, "update rejection details")))
                if r.rejection is not None else r for r in runner.take_update_responses()]
            # A payload the server would refuse fails the workflow, naming it (_payload_limits).
            wire_commands = checked_commands(await encode_commands(self._payloads, commands))
        except Exception as error:  # fail the task: the server retries it (I4)
            cause = ("NonDeterministicError" if isinstance(error, errors.NondeterminismError)
                     else "WorkflowWorkerUnhandledFailure")
            log.warning("workflow task of %s/%s failed: %r", answer.workflow_id, answer.run_id,
                        error, extra=_run_fields(answer))
            await self._fail(answer.task_token, answer.attempt, cause, error)
            return
        wanted = 0 if self._exchange.stopping.is_set() else eager_activities_wanted(
            commands, self._task_queue, self._activity_types)
        eager = await reserve_slots(self._activity_slots, wanted)
        try:
            completed = await self._exchange.post_to(
                address, "/api/v1/tasks/workflow/complete", CompleteWorkflowTaskRequest(
                    task_token=answer.task_token, commands=wire_commands,
                    identity=self._exchange.identity, sticky_queue=self._exchange.sticky_queue,
                    eager_task_queue=self._task_queue if eager else None,
                    eager_activities_max=eager, update_responses=update_responses),
                trace_headers(traceparent))
        except BaseException as error:
            for _ in range(eager):
                self._activity_slots.release()
            if not isinstance(error, errors.RPCError):
                raise
            # Refused (stale, or new events arrived): the runner may be ahead of history.
            log.info("completion of %s/%s refused: %s", answer.workflow_id, answer.run_id, error,
                     extra=_run_fields(answer))
            return
        # The runner follows what the completion wrote, so the run's next activity can carry
        # the next task (_folded_task.py).
        if await follow_written(runner, completed.body, self._payloads):
            self._cache.keep(answer.run_id, runner)
        self._start_eager_activities(completed.address or address, completed.body, eager)

    def _traced_activation(self, answer: WorkflowTask, runner: WorkflowRunner,
                           events: list[HistoryEvent],
                           updates: list[WorkflowUpdateRequest],
                           ) -> tuple[list[WorkflowCommand], str]:
        """`runner.activate` inside the interceptors' `run_workflow_task`, parented by the
        run's start context; the activities and children it starts carry the task's context
        (the children's WorkflowExecutionStarted records it), and so does the completion
        (returned with the commands). Stamped
        here, after replay: replay never sees it, and it is no part of a command's match."""
        started = runner.started_traceparent or (
            _traceparent_of(events[0]) if events and events[0].event_id == 1 else "")
        with self._interceptors.run_workflow_task(WorkflowTaskInput(
                namespace=answer.namespace, workflow_id=answer.workflow_id,
                run_id=answer.run_id, workflow_type=answer.workflow_type,
                attempt=answer.attempt, traceparent=started)) as traceparent:
            commands = runner.activate(events, updates)
        if not traceparent:
            return commands, ""
        return [msgspec.structs.replace(c, traceparent=traceparent)
                if isinstance(c, ScheduleActivityTask | StartChildWorkflowExecution) else c
                for c in commands], traceparent

    def _start_eager_activities(self, address: str, body: object, eager: int) -> None:
        """Run the activities the completion started for this worker, each in one of the
        `eager` slots reserved for them (answered where they were started: the shard leader);
        each task is decoded by the activity runner's `handle`, like a polled one."""
        started = eager_activity_tasks(body)
        assert len(started) <= eager, (len(started), eager)
        for activity_task in started:
            self._start_activity(address, activity_task)
        for _ in range(eager - len(started)):
            self._activity_slots.release()

    async def _fail(self, task_token: str, attempt: int, cause: str,
                    error: BaseException) -> None:
        await asyncio.sleep(fail_backoff_s(attempt))
        failure = await self._payloads.encode_failure(errors.failure_of(error),
                                                      "workflow task failure details")
        await self._exchange.post("/api/v1/tasks/workflow/fail", FailWorkflowTaskRequest(
            task_token=task_token, cause=cause, failure=_failure_payload(failure),
            identity=self._exchange.identity))

    async def _refuse(self, error: errors.MalformedTaskError) -> None:
        """A task that did not decode: fail it (or answer the query with the error) if it can
        be named, else drop it (the server hands it out again after its timeout)."""
        log.warning("malformed task: %s", error)
        if error.query_id is not None:
            await self._respond(_query_failed(error.query_id, error))
        elif error.task_token is not None:
            await self._fail(error.task_token, error.attempt, "WorkflowWorkerUnhandledFailure",
                             error)

    async def _answer_query(self, task: TypedQueryTask) -> None:
        query = task.answer
        query_id = query.query_id
        what = f"result of query {query.query_type}"
        try:
            task = TypedQueryTask(
                msgspec.structs.replace(query, args=await self._payloads.decode_args(
                    query.args, f"args of query {query.query_type}")),
                await decode_events(self._payloads, task.events, f"query of run {query.run_id}"))
            result = await self._payloads.encode(payload(self._cache.query(task), what),
                                                 PayloadShape.VALUE, what)
            reply = QueryAnswerRequest(query_id=query_id, result=result)
        except Exception as error:
            reply = _query_failed(query_id, error)
        await self._respond(reply)

    async def _respond(self, reply: QueryAnswerRequest) -> None:
        # Any node relays the answer to the node where the caller waits.
        await self._exchange.post("/api/v1/tasks/query/respond", reply)


def _run_fields(task: WorkflowTask) -> dict[str, str]:
    """A line's structured fields (`extra`) naming the run, for JSON log formatters."""
    return {"namespace": task.namespace, "workflow_id": task.workflow_id, "run_id": task.run_id}


def _traceparent_of(event: HistoryEvent) -> str:
    started = event.attributes
    return (started.traceparent
            if isinstance(started, WorkflowExecutionStartedEventAttributes) else "")


def _query_failed(query_id: str, error: BaseException) -> QueryAnswerRequest:
    return QueryAnswerRequest(query_id=query_id, error=QueryFailureBody(
        message=str(error), type=type(error).__name__))


def _failure_payload(failure: Failure) -> Payload:
    """A failed workflow task's failure: the JSON of the typed failure, an opaque payload in
    the WorkflowTaskFailed event."""
    return Payload(msgspec.json.encode(failure, enc_hook=json_enc_hook))
