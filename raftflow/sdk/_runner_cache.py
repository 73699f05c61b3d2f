"""The worker's sticky cache: replayed workflow runs kept between their workflow tasks.

Theory of operation. A runner that completed a task is kept (bounded LRU by run id) and fed
only the events after its `last_event_id` on the run's next task. The server sends the worker
that completed a run's last task only those new events (sticky queue); any other task, or one
whose events do not continue the runner's, gets a fresh runner and the whole history — fetched
from the server when the task carried only the new events (the runner was evicted meanwhile).
A runner is taken out of the cache while a task runs and put back only after the server
accepted the completion, so a cached runner is never ahead of the history.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.http_answers import QueryTask, WorkflowTask
from raftflow.sdk import errors
from raftflow.sdk._replay import WorkflowRunner
from raftflow.sdk._wire_tasks import TypedQueryTask, TypedWorkflowTask

# (workflow_id, run_id) -> the run's events, typed
HistoryFetcher = Callable[[str, str], Awaitable[list[HistoryEvent]]]


class RunnerCache:
    def __init__(self, workflows: dict[str, type], *, namespace: str, task_queue: str,
                 size_max: int, fetch_history: HistoryFetcher) -> None:
        assert size_max >= 0, size_max
        self._workflows = workflows
        self._namespace = namespace
        self._task_queue = task_queue
        self._size_max = size_max
        self._fetch_history = fetch_history
        self._runners: OrderedDict[str, WorkflowRunner] = OrderedDict()

    async def take(self, task: TypedWorkflowTask) -> tuple[WorkflowRunner, list[HistoryEvent]]:
        """The runner for this task's run (out of the cache) and the events it has not seen."""
        history = task.events
        runner = self._runners.pop(task.answer.run_id, None)
        if runner is not None:
            seen = runner.last_event_id
            new = [e for e in history if e.event_id > seen]
            if new and new[0].event_id == seen + 1 and not runner.is_done:
                return runner, new
        if history and history[0].event_id != 1:
            history = await self._whole_history(task.answer)
        return self.fresh(task.answer), history

    def take_waiting(self, run_id: str, scheduled_event_id: int) -> WorkflowRunner | None:
        """The cached runner of `run_id`, out of the cache, if it waits for the activity
        scheduled at that event (to run the task its completion makes: _folded_task.py);
        else None, and the cache is left as it was."""
        runner = self._runners.get(run_id)
        if runner is None or runner.is_done or not runner.awaits_activity(scheduled_event_id):
            return None
        del self._runners[run_id]
        return runner

    def keep(self, run_id: str, runner: WorkflowRunner) -> None:
        """Put a runner back after the server accepted its task's completion."""
        if self._size_max == 0 or runner.is_done:
            return
        self._runners[run_id] = runner
        self._runners.move_to_end(run_id)
        while len(self._runners) > self._size_max:
            self._runners.popitem(last=False)
        assert len(self._runners) <= self._size_max

    def query(self, task: TypedQueryTask) -> object:
        """Answer a query task from the cached runner if it has seen exactly the query's
        history, else from a replay made just for it (never cached)."""
        query = task.answer
        runner = self._runners.get(query.run_id)
        if runner is None or runner.last_event_id != len(task.events):
            runner = self.fresh(query)
            runner.activate(task.events)
        return runner.query(query.query_type, list(query.args))

    def fresh(self, task: WorkflowTask | QueryTask) -> WorkflowRunner:
        workflow_type = task.workflow_type
        workflow_cls = self._workflows.get(workflow_type)
        if workflow_cls is None:
            raise errors.WorkflowTaskError(
                f"workflow type {workflow_type!r} is not registered with this worker "
                f"(known: {sorted(self._workflows)})")
        return WorkflowRunner(workflow_cls, namespace=self._namespace,
                              workflow_id=task.workflow_id, run_id=task.run_id,
                              workflow_type=workflow_type, task_queue=self._task_queue)

    async def _whole_history(self, task: WorkflowTask) -> list[HistoryEvent]:
        started = task.started_event_id
        events = await self._fetch_history(task.workflow_id, task.run_id)
        whole = [e for e in events if e.event_id <= started]
        if [e.event_id for e in whole] != list(range(1, started + 1)):
            raise errors.WorkflowTaskError(
                f"history of run {task.run_id} read back with {len(whole)} events up to the "
                f"task, expected 1..{started}")
        return whole
