"""Workflow and activity metrics: what applied commands did, counted once per cluster.

Theory of operation. Every replica applies every entry, but a fact such as "a workflow started"
must be counted once in the whole cluster, not once per replica: the actor runtime hands an
entry's commands and outputs here only on the replica of the node (and incarnation) that
proposed the entry (`ActorObserver.record_applied`). An entry has exactly one proposer, so a
fact is counted at most once; it is missed only when the proposer restarts between proposing
and applying (the entry is then applied by a later incarnation, which did not propose it).

What is read, per command: its output's events (starts, closes, final activity timeouts) and
effects (closes carry the namespace, dispatches of attempt > 1 are activity retries), and the
command itself (a worker reporting an activity attempt failed). A run's close event and its
`WorkflowClosed` effect are written together (`do_close_run`), so the n-th close event of an
output belongs to its n-th `WorkflowClosed`: that pairs the outcome with the namespace.

Hot path: one `type()` and one dict lookup per event, one per effect; labelled children are
cached per raw label values (within the label limits, so the caches are bounded too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from raftflow.actors.state_machine import AppliedCommand
from raftflow.api.metric_labels import (
    NAMESPACES_MAX,
    OVERFLOW_LABEL,
    TASK_QUEUES_MAX,
    WORKFLOW_TYPES_MAX,
    BoundedLabel,
)
from raftflow.protocol.commands import Command, RespondActivityTaskFailed
from raftflow.protocol.effects import DispatchActivityTask, WorkflowClosed
from raftflow.protocol.events import (
    ActivityTaskTimedOutEventAttributes,
    WorkflowExecutionCanceledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
    WorkflowExecutionTimedOutEventAttributes,
)
from raftflow.protocol.results import Rejected

# Outcome label of each close event; the same six values as the close event types.
OUTCOMES: dict[type, str] = {
    WorkflowExecutionCompletedEventAttributes: "completed",
    WorkflowExecutionFailedEventAttributes: "failed",
    WorkflowExecutionTimedOutEventAttributes: "timed_out",
    WorkflowExecutionCanceledEventAttributes: "canceled",
    WorkflowExecutionTerminatedEventAttributes: "terminated",
    WorkflowExecutionContinuedAsNewEventAttributes: "continued_as_new",
}
# A WorkflowClosed effect without its close event: cannot happen (see the module doc); were
# it to, the close is still counted rather than lost.
UNKNOWN_OUTCOME = "unknown"

# Schedule-to-start spans an eager hand-out (well under a millisecond) to a queue with no
# worker for minutes.
_WAIT_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0)


class _Labelled:
    """One labelled metric whose label values pass through bounded labels; children cached."""

    __slots__ = ("_bounds", "_children", "_metric")

    def __init__(self, metric: Any, *bounds: Callable[[str], str] | None) -> None:
        self._metric = metric
        self._bounds = bounds  # None: the label's values are bounded by the code already
        self._children: dict[tuple[str, ...], Any] = {}

    def child(self, *raw: str) -> Any:
        child = self._children.get(raw)
        if child is not None:
            return child
        values = tuple(v if bound is None else bound(v)
                       for v, bound in zip(raw, self._bounds, strict=True))
        child = self._metric.labels(*values)
        if OVERFLOW_LABEL not in values:  # cache only admitted values: the cache stays bounded
            self._children[raw] = child
        return child


class WorkflowMetrics:
    """Counters of workflow and activity facts, in the node's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        namespaces = BoundedLabel(NAMESPACES_MAX)
        queues = BoundedLabel(TASK_QUEUES_MAX)
        types = BoundedLabel(WORKFLOW_TYPES_MAX)
        self.started = _Labelled(Counter(
            "raftflow_workflows_started", "Workflow runs started (retries and continue-as-new "
            "included), by namespace and workflow type.",
            ("namespace", "workflow_type"), registry=registry), namespaces, types)
        self.closed = _Labelled(Counter(
            "raftflow_workflows_closed", "Workflow runs closed, by namespace and outcome.",
            ("namespace", "outcome"), registry=registry), namespaces, None)
        self.activity_failures = _Labelled(Counter(
            "raftflow_activity_failures", "Activity attempts a worker reported failed "
            "(retried or not), by namespace.", ("namespace",), registry=registry), namespaces)
        self.activity_retries = _Labelled(Counter(
            "raftflow_activity_retries", "Activity attempts scheduled after a failed or timed "
            "out attempt, by namespace and task queue.",
            ("namespace", "task_queue"), registry=registry), namespaces, queues)
        self.activity_timeouts = _Labelled(Counter(
            "raftflow_activity_timeouts", "Activities closed by a timeout (no retry left), by "
            "timeout type.", ("timeout_type",), registry=registry), None)
        self.schedule_to_start = _Labelled(Histogram(
            "raftflow_task_schedule_to_start_seconds", "How long a dispatched task waited in "
            "this node's matcher until a poll took it, by namespace, task queue and kind.",
            ("namespace", "task_queue", "kind"), buckets=_WAIT_BUCKETS_S, registry=registry),
            namespaces, queues, None)
        # Shared with the scrape-time gauges (metrics_cluster.py): one set of admitted values.
        self.namespaces = namespaces
        self.queues = queues

    def record_applied(self, shard: int, commands: Sequence[Command],
                       outputs: Sequence[AppliedCommand]) -> None:
        """An entry proposed by this node applied here (ActorObserver)."""
        for command, output in zip(commands, outputs, strict=True):
            closes: list[str] | None = None
            for event in output.events:
                kind = type(event.attributes)
                if kind is WorkflowExecutionStartedEventAttributes:
                    started: Any = event.attributes
                    self.started.child(started.namespace, started.workflow_type).inc()
                elif kind is ActivityTaskTimedOutEventAttributes:
                    timed_out: Any = event.attributes
                    self.activity_timeouts.child(timed_out.timeout_type.value).inc()
                else:
                    outcome = OUTCOMES.get(kind)
                    if outcome is not None:
                        if closes is None:
                            closes = []
                        closes.append(outcome)
            for effect in output.effects:
                if type(effect) is DispatchActivityTask:
                    if effect.attempt > 1:
                        self.activity_retries.child(effect.namespace, effect.task_queue).inc()
                elif type(effect) is WorkflowClosed:
                    outcome = closes.pop(0) if closes else UNKNOWN_OUTCOME
                    self.closed.child(effect.namespace, outcome).inc()
            if (type(command) is RespondActivityTaskFailed
                    and not isinstance(output.result, Rejected)):
                self.activity_failures.child(command.token.namespace).inc()

    def observe_schedule_to_start(self, namespace: str, task_queue: str, kind: str,
                                  waited_s: float) -> None:
        """A poll took a task that waited `waited_s` in this node's matcher."""
        assert kind in ("workflow", "activity"), kind
        self.schedule_to_start.child(namespace, task_queue, kind).observe(max(0.0, waited_s))
