"""Bounds of the node's matcher (TIGER_STYLE: every queue has a named limit)."""

from __future__ import annotations

# Ready tasks held per (namespace, task queue, kind). Beyond it dispatches are dropped: the
# task stays scheduled in state, is re-derived on the next leader change, and its
# schedule-to-start timeout, if set, still fires.
QUEUE_TASKS_MAX = 100_000
# Pollers parked per (namespace, task queue, kind); more get an immediate empty answer.
POLLERS_PER_QUEUE_MAX = 1_000
# Callers waiting for one workflow's close, and workflows waited on per node.
CLOSE_WAITERS_MAX = 10_000
# Tasks already recorded started whose poll could not take them (its caller left, or the
# gateway had its answer from another node), held per queue for the next poll here. Each is
# a claimed task whose start-to-close timeout runs: beyond this bound one is dropped and the
# server's task timeout retries it.
STARTED_TASKS_PER_QUEUE_MAX = 256
# A started task nobody took within this age is dropped: its timeout retries it soon anyway,
# and a worker given it this late might run it after that retry.
STARTED_TASK_AGE_S = 5.0
# Poll ids of ended fan-out polls remembered, so that a leg that reaches this node after its
# poll was ended answers at once instead of claiming a task for nobody. Legs arrive within
# milliseconds of their poll; this covers several seconds of polls at the highest rates.
ENDED_POLLS_MAX = 10_000

assert min(QUEUE_TASKS_MAX, POLLERS_PER_QUEUE_MAX, STARTED_TASKS_PER_QUEUE_MAX, ENDED_POLLS_MAX) > 0
