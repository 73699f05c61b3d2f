"""The worker's workflow tasks and queries: replay the run, answer with its commands.

Theory of operation. Replayed runs stay in a bounded cache (`_runner_cache`); the server sends
this worker (its `sticky_queue`) only new events for runs it completed last. Any error while
running the code (a bug, `NondeterminismError`) fails the workflow task (the server retries it)
and drops the runner. Runners run on the worker's event loop, never in a thread, so a runner is
never used by a workflow task and a query at the same time.

Eager activities: a completion asks the server to start, in the same commit, the activities
it schedules that this worker can run (their slots reserved first); they arrive in the answer
and run here at once, skipping a poll and a commit each.

The task's history is decoded into protocol events here, once (a malformed one fails the
task with `MalformedHistoryError`, before any workflow code runs), and the commands are
rendered into the completion's JSON here, once.

Query tasks arrive on the workflow-task poll (they carry `query_id`): answered from the cached
runner when it has seen exactly the query's history, else from a fresh replay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from raftflow.sdk import errors
from raftflow.sdk._runner_cache import RunnerCache
from raftflow.sdk._task_exchange import Task, TaskExchange, reserve_slots
from raftflow.sdk._wire_json import commands_json, decode_history
from raftflow.sdk._worker_policy import eager_activities_wanted, fail_backoff_s

log = logging.getLogger(__name__)


class WorkflowTaskRunner:
    """Runs one worker's workflow tasks and query tasks.

    `start_activity(address, task)` runs an eagerly started activity task in an activity slot
    this runner reserved for it.
    """

    def __init__(self, exchange: TaskExchange, cache: RunnerCache, *, task_queue: str,
                 activity_types: Collection[str], activity_slots: asyncio.Semaphore,
                 start_activity: Callable[[str, Task], None]) -> None:
        self._exchange = exchange
        self._cache = cache
        self._task_queue = task_queue
        self._activity_types = activity_types
        self._activity_slots = activity_slots
        self._start_activity = start_activity

    async def handle(self, address: str, task: Task) -> None:
        if "query_id" in task:
            await self._answer_query(task)
            return
        run_id = str(task["run_id"])
        try:
            history = decode_history(task.get("history"), f"workflow task of run {run_id}")
            runner, events = await self._cache.take(task, history)
            commands = runner.activate(events)
        except Exception as error:  # fail the task: the server retries it (I4)
            cause = ("NonDeterministicError" if isinstance(error, errors.NondeterminismError)
                     else "WorkflowWorkerUnhandledFailure")
            log.warning("workflow task of %s/%s failed: %r", task["workflow_id"], run_id, error)
            await asyncio.sleep(fail_backoff_s(int(task.get("attempt") or 1)))
            await self._exchange.post("/api/v1/tasks/workflow/fail", {
                "task_token": task["task_token"], "cause": cause,
                "failure": errors.to_failure(error), "identity": self._exchange.identity})
            return
        wanted = 0 if self._exchange.stopping.is_set() else eager_activities_wanted(
            commands, self._task_queue, self._activity_types)
        eager = await reserve_slots(self._activity_slots, wanted)
        try:
            answer = await self._exchange.post_to(address, "/api/v1/tasks/workflow/complete", {
                "task_token": task["task_token"], "commands": commands_json(commands),
                "identity": self._exchange.identity,
                "sticky_queue": self._exchange.sticky_queue,
                "eager_task_queue": self._task_queue if eager else "",
                "eager_activities_max": eager})
        except BaseException as error:
            for _ in range(eager):
                self._activity_slots.release()
            if not isinstance(error, errors.RPCError):
                raise
            # Refused (stale, or new events arrived): the runner may be ahead of history.
            log.info("completion of %s/%s refused: %s", task["workflow_id"], run_id, error)
            return
        self._cache.keep(run_id, runner)
        body = answer.body if isinstance(answer.body, dict) else {}
        started = body.get("activity_tasks") or []
        assert len(started) <= eager, (len(started), eager)
        for activity_task in started:  # answered where they were started (the shard leader)
            self._start_activity(answer.address or address, activity_task)
        for _ in range(eager - len(started)):
            self._activity_slots.release()

    async def _answer_query(self, task: Task) -> None:
        reply: dict[str, object] = {"query_id": task["query_id"]}
        try:
            history = decode_history(task.get("history"), f"query of run {task.get('run_id')}")
            reply["result"] = self._cache.query(task, history)
        except Exception as error:
            reply["error"] = {"message": str(error), "type": type(error).__name__}
        # Any node relays the answer to the node where the caller waits.
        await self._exchange.post("/api/v1/tasks/query/respond", reply)
