"""Bounded label values for metrics labelled by user-chosen names (namespaces, queues, types).

A Prometheus series per distinct label value: a label fed by user input (a namespace, a task
queue, a workflow type) could grow the node's memory and every scrape without end (DESIGN §4
I7). Each such label keeps the first `values_max` distinct values it sees as themselves and
counts every later one under `OVERFLOW_LABEL`, so a dashboard still sums to the true total.
The limits are per node process and never reset: a series, once exported, stays.
"""

from __future__ import annotations

# The value every label value beyond a label's limit is counted under. No namespace can be
# called that (NAMESPACE_NAME_PATTERN starts with a letter or digit); a task queue or workflow
# type of that name would only share the overflow's series.
OVERFLOW_LABEL = "_other"

# Namespaces are few by design (each is created by an operator); 100 covers every deployment
# we know of while a runaway script creating namespaces costs at most 100 series per metric.
NAMESPACES_MAX = 100
# Task queues and workflow types are chosen in worker code; 200 each keeps one metric's
# series per node in the low thousands together with NAMESPACES_MAX at its usual size.
TASK_QUEUES_MAX = 200
WORKFLOW_TYPES_MAX = 200
assert 0 < NAMESPACES_MAX <= TASK_QUEUES_MAX == WORKFLOW_TYPES_MAX


class BoundedLabel:
    """One label's admitted values: the first `values_max` seen pass, later ones overflow."""

    __slots__ = ("_admitted", "values_max")

    def __init__(self, values_max: int) -> None:
        assert values_max > 0
        self.values_max = values_max
        self._admitted: set[str] = set()

    def __call__(self, value: str) -> str:
        """`value` itself if admitted (or there is room to admit it), else OVERFLOW_LABEL."""
        admitted = self._admitted
        if value in admitted:
            return value
        if len(admitted) >= self.values_max:
            return OVERFLOW_LABEL
        admitted.add(value)
        assert len(admitted) <= self.values_max
        return value

    def __len__(self) -> int:
        return len(self._admitted)
