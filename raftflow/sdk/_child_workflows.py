"""Child workflows from workflow code (temporalio's `workflow.start_child_workflow`,
`workflow.execute_child_workflow`, `ChildWorkflowHandle`, `ParentClosePolicy`).

A child start is a command of the workflow task. The server starts the child on whichever
shard owns its id, exactly once (shard outbox), and writes `ChildWorkflowExecutionStarted` then
the child's close into this workflow's history, so `await start_child_workflow(...)` returns a
handle once the child runs and `await handle` (or `handle.result()`) its result, the same in
replay. When this workflow closes, children still open get its `parent_close_policy`. A child
with a `retry_policy` retries inside its own chain of runs: the parent sees only how the last
attempt ended.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from typing import Any

from raftflow.protocol.commands import IdReusePolicy, ParentClosePolicy, StartChildWorkflowExecution
from raftflow.sdk._external import ExternalWorkflowHandle
from raftflow.sdk._replay import commands as _commands
from raftflow.sdk._replay.definition import workflow_type_of
from raftflow.sdk._replay.runtime import Child, Runtime
from raftflow.sdk.retry import RetryPolicy, duration_ms

_UNSET: Any = object()


class ChildWorkflowHandle:
    """A started child: `id`, `run_id`, `first_execution_run_id`; awaitable for its result."""

    def __init__(self, runtime: Runtime, op: Child) -> None:
        self._runtime = runtime
        self._op = op
        self.id = op.workflow_id
        self.run_id: str | None = op.run_id or None
        self.first_execution_run_id = self.run_id

    async def result(self) -> Any:
        """The child's result; raises `ChildWorkflowError` if it did not complete."""
        assert self._op.result is not None
        return await self._op.result

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

    async def signal(self, signal: Callable[..., Any] | str, arg: Any = None, *,
                     args: Sequence[Any] = ()) -> None:
        """Signal the child, through the outbox like any external signal: its current run
        (after a continue-as-new or a retry, the server follows the chain this handle started)."""
        await ExternalWorkflowHandle(self._runtime, self.id, self.run_id).signal(
            signal, arg, args=args)


def _ms(value: timedelta | None) -> int | None:
    return None if value is None else duration_ms(value)


async def start_child_workflow(
        runtime: Runtime, workflow: type | Callable[..., Any] | str, arg: Any = _UNSET, *,
        args: Sequence[Any] = (), id: str, task_queue: str | None = None,
        execution_timeout: timedelta | None = None, run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: IdReusePolicy | None = None,
        parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
        retry_policy: RetryPolicy | None = None,
) -> ChildWorkflowHandle:
    if arg is not _UNSET and args:
        raise ValueError("give either arg or args, not both")
    values = list(args) if arg is _UNSET else [arg]
    workflow_type = workflow_type_of(workflow)
    command = StartChildWorkflowExecution(
        workflow_id=id, workflow_type=workflow_type, task_queue=task_queue or "",
        input=_commands.payload(values, f"input of child workflow {workflow_type} ({id})"),
        execution_timeout_ms=_ms(execution_timeout), run_timeout_ms=_ms(run_timeout),
        task_timeout_ms=_ms(task_timeout),
        id_reuse_policy="" if id_reuse_policy is None else IdReusePolicy(id_reuse_policy).value,
        parent_close_policy=ParentClosePolicy(parent_close_policy),
        retry_policy=None if retry_policy is None else retry_policy.to_protocol())
    op = runtime.start_child(command)
    assert op.started is not None
    await op.started
    return ChildWorkflowHandle(runtime, op)
