"""Handles on other workflows from workflow code (Temporal's `ExternalWorkflowHandle`).

A signal or cancel request from workflow code is a command of the workflow task: the server
writes its `...Initiated` event and delivers it through its shard's outbox, exactly once, to
the target wherever it lives; `await handle.signal(...)` returns once the outcome event is in
this workflow's history, and raises `ApplicationError` (its `type` names the cause, e.g.
`ExternalWorkflowExecutionNotFound`) if the target could not take it. Replay matches the
commands by target workflow id and signal name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from raftflow.sdk._replay import commands as _commands
from raftflow.sdk._replay.definition import signal_name_of
from raftflow.sdk._replay.runtime import Runtime


class ExternalWorkflowHandle:
    """Another workflow (or this one), addressed by id and, optionally, run id."""

    def __init__(self, runtime: Runtime, workflow_id: str, run_id: str | None) -> None:
        self._runtime = runtime
        self.id = workflow_id
        self.run_id = run_id

    async def signal(self, signal: Callable[..., Any] | str, arg: Any = None, *,
                     args: Sequence[Any] = ()) -> None:
        """Signal the workflow (`arg` is the one argument, `args` several), and wait until
        its shard took it."""
        if arg is not None and args:
            raise ValueError("give either arg or args, not both")
        values = list(args) if args else ([] if arg is None else [arg])
        name = signal_name_of(signal)
        await self._runtime.send_external(_commands.signal_external(
            self.id, self.run_id, name, values))

    async def cancel(self) -> None:
        """Ask the workflow to cancel, and wait until its shard took the request."""
        await self._runtime.send_external(_commands.cancel_external(self.id, self.run_id))
