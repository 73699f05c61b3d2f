"""The shard state as snapshot formats 1 and 2 laid it out, and its upgrade to the current one.

Formats 1 (release 0.1, arrays) and 2 (maps) kept closed runs among `executions`, with
count-based retention (`closed_runs`) and a count-bounded request table (`request_results`).
Format 3 moved both to the archive, with times. The class keeps the name `ShardState` because
format 1 names each struct by its class name (`legacy_arrays`).

What the old layout lacks is filled deterministically from the snapshot itself, so every
replica that upgrades from the same bytes builds the same state: a closed run is deleted
DEFAULT_RETENTION_MS after its close time; a request id expires REQUEST_IDS_RETENTION_MS after
the event that carries it (a start, signal, cancel request or terminate names its request id),
or, when no retained event names it, after the newest event time in the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from raftflow.protocol.events import (
    EventAttributes,
    WorkflowExecutionCancelRequestedEventAttributes,
    WorkflowExecutionSignaledEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from raftflow.protocol.results import Result
from raftflow.shards.core import limits
from raftflow.shards.core.archive import ArchivedRun, RememberedRequest
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.runs import Execution, RequestKey, TimerKey, WorkflowKey


class ShardState(msgspec.Struct, kw_only=True):
    """Snapshot formats 1 and 2 (see the module docstring)."""

    shard_id: int
    applied_index: int = 0
    executions: dict[str, Execution] = msgspec.field(default_factory=dict)
    open_runs: dict[WorkflowKey, str] = msgspec.field(default_factory=dict)
    latest_runs: dict[WorkflowKey, str] = msgspec.field(default_factory=dict)
    closed_runs: dict[str, int] = msgspec.field(default_factory=dict)
    request_results: dict[RequestKey, Result] = msgspec.field(default_factory=dict)
    timers: dict[TimerKey, int] = msgspec.field(default_factory=dict)


def upgrade(old: ShardState) -> tuple[dict[str, Execution], MemoryArchive]:
    """The open runs and the archive that the old state describes."""
    open_executions = {run_id: e for run_id, e in old.executions.items() if e.is_open}
    runs = []
    for run_id in old.closed_runs:
        execution = old.executions[run_id]
        assert not execution.is_open and execution.close_time_ms is not None, run_id
        runs.append(ArchivedRun(delete_at_ms=execution.close_time_ms + limits.DEFAULT_RETENTION_MS,
                                execution=execution))
    runs.sort(key=lambda run: run.execution.run_id)
    # The archive's latest pointer names the last run to close, even while a newer run of the
    # workflow id is open (`latest_runs` named that open run); `closed_runs` is in close order.
    latest = sorted({old.executions[run_id].key: run_id for run_id in old.closed_runs}.items())
    times = _request_times(old.executions.values())
    newest = max((e.history[-1].time_ms for e in old.executions.values() if e.history), default=0)
    requests = [RememberedRequest(
        key=key, result=result,
        expires_at_ms=times.get(key, newest) + limits.REQUEST_IDS_RETENTION_MS)
        for key, result in sorted(old.request_results.items())]
    return open_executions, MemoryArchive.of(runs, latest, requests)


def _request_kind(attributes: EventAttributes) -> str | None:
    """The kind of client request whose request id an event carries (start, signal, cancel,
    terminate), or None for events that carry no client request id."""
    match attributes:
        case WorkflowExecutionStartedEventAttributes():
            return "start"
        case WorkflowExecutionSignaledEventAttributes():
            return "signal"
        case WorkflowExecutionCancelRequestedEventAttributes():
            return "cancel"
        case WorkflowExecutionTerminatedEventAttributes(reason="terminate_if_running"):
            return "start"  # a start that terminated the open run names its own request id
        case WorkflowExecutionTerminatedEventAttributes():
            return "terminate"
        case _:
            return None


def _request_times(executions: Iterable[Execution]) -> dict[RequestKey, int]:
    """Request key -> time of the first event naming that request (history, then events
    buffered behind a started workflow task)."""
    times: dict[RequestKey, int] = {}
    for execution in executions:
        timed = [(e.time_ms, e.attributes) for e in execution.history]
        timed += [(b.time_ms, b.attributes) for b in execution.buffered]
        for time_ms, attributes in timed:
            kind = _request_kind(attributes)
            request_id = getattr(attributes, "request_id", "")
            if kind is not None and request_id:
                times.setdefault((kind, execution.namespace, execution.workflow_id, request_id),
                                 time_ms)
    return times
