"""What the matcher's queues hold: ready tasks (to be claimed), queries, started tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.effects import DispatchActivityTask, DispatchWorkflowTask

QueueKey = tuple[str, str, TaskKind]
Dispatch = DispatchWorkflowTask | DispatchActivityTask


@dataclass(frozen=True, slots=True)
class ReadyTask:
    """A task its shard's leader dispatched; a poll takes it by committing `Record*Started`."""

    shard: int
    dispatch: Dispatch
    # time.monotonic() when the dispatch reached this node's matcher: a poll that takes the
    # task reports how long it waited (schedule-to-start, metrics). Not part of its identity.
    offered_at: float = field(default=0.0, compare=False)

    @property
    def kind(self) -> TaskKind:
        return TaskKind.WORKFLOW if isinstance(self.dispatch, DispatchWorkflowTask) else TaskKind.ACTIVITY

    @property
    def identity(self) -> tuple[int, str, int, int]:
        d = self.dispatch
        attempt = d.attempt if isinstance(d, DispatchActivityTask) else 0
        return (self.shard, d.run_id, d.scheduled_event_id, attempt)


@dataclass(frozen=True, slots=True)
class QueryTask:
    """A query for a worker of the workflow's task queue (handed out on workflow-task polls)."""

    shard: int
    namespace: str
    task_queue: str
    query_id: str
    payload: dict[str, object] = field(hash=False, compare=False)
    deadline: float  # time.monotonic() after which nobody waits for the answer

    @property
    def kind(self) -> TaskKind:
        return TaskKind.WORKFLOW

    @property
    def identity(self) -> tuple[int, str, int, int]:
        return (self.shard, self.query_id, -1, -1)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartedTask:
    """A task already recorded started (its answer JSON) whose poll could not take it: the
    poll's caller left, or its gateway had already answered with another node's task. Given
    as is to the next poll of its queue on this node, ahead of ready tasks (its timeout runs).
    """

    namespace: str
    task_queue: str
    kind: TaskKind
    payload: dict[str, object] = field(hash=False, compare=False)
    served_by: str  # public address of the node that claimed it ("" when not known)
    offered_at: float  # time.monotonic() on this node when it was offered here


Item = ReadyTask | QueryTask | StartedTask


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSample:
    """One queue of the matcher at one instant (metrics): tasks waiting and polls waiting."""

    namespace: str
    task_queue: str
    kind: str
    backlog: int
    pollers: int


def queue_key(item: Item) -> QueueKey:
    if isinstance(item, QueryTask):
        return (item.namespace, item.task_queue, TaskKind.WORKFLOW)
    if isinstance(item, StartedTask):
        return (item.namespace, item.task_queue, item.kind)
    return (item.dispatch.namespace, item.dispatch.task_queue, item.kind)
