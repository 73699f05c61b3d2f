"""How the worker polls and backs off: numbers and small pure rules, kept apart from the IO.

The poll plan decides how many long polls go to which node; the back-off rules keep a broken
deployment or a dead node from turning the worker into a busy loop.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from raftflow.protocol.commands import ScheduleActivityTask, WorkflowCommand

POLL_WAIT_MS = 20_000  # one long poll; the server allows up to 60 s
POLLERS_PER_NODE = 8  # concurrent polls per node and task kind (2 capped `raftflow bench` at 26/s)
POLL_BACKOFF_S_MIN = 0.2  # after a failed poll (node down), doubled per failure...
POLL_BACKOFF_S_MAX = 5.0  # ... up to this
GRACEFUL_SHUTDOWN_S_DEFAULT = 10.0
# The server schedules the next attempt of a failed workflow task at once and records every
# failure, so a broken deployment would spin and fill the history; the worker waits before
# reporting a repeated failure: 0.1 s at attempt 2, doubled per attempt, up to this (which is
# below the default 10 s workflow task timeout, so the wait never turns into a time-out).
WORKFLOW_TASK_FAIL_BACKOFF_S_MIN = 0.1
WORKFLOW_TASK_FAIL_BACKOFF_S_MAX = 5.0
# Activities one workflow task completion asks to run here at once (eager activities; the
# server allows up to 16). Each needs a free activity slot, reserved before asking.
EAGER_ACTIVITIES_PER_TASK_MAX = 8


def poll_plan(addresses: Sequence[str], slots: int) -> list[str]:
    """The node each poller sends its polls to: spread evenly over the nodes, never more
    pollers than slots.

    The server fans every poll out to all nodes and takes a task ready on the polled node
    first, so one poll waits on every shard: the only fan-out there is. The worker pins no
    poll to its node, which would be a second one and leave other nodes' tasks waiting
    whenever the worker's polls do not cover every node."""
    per_node = max(1, min(POLLERS_PER_NODE, slots // len(addresses)))
    polls = min(slots, per_node * len(addresses))
    return [addresses[index % len(addresses)] for index in range(polls)]


def fail_backoff_s(attempt: int) -> float:
    if attempt <= 1:
        return 0.0
    exponent = min(attempt - 2, 16)  # bounded: 2**16 * 0.1 s is far above the cap already
    backoff_s: float = WORKFLOW_TASK_FAIL_BACKOFF_S_MIN * 2.0 ** exponent
    return min(WORKFLOW_TASK_FAIL_BACKOFF_S_MAX, backoff_s)


def eager_activities_wanted(commands: Sequence[WorkflowCommand], task_queue: str,
                            activity_types: Collection[str]) -> int:
    """How many activities these commands schedule that a worker of `task_queue` running
    `activity_types` could start itself at once (an empty queue is the workflow's own)."""
    wanted = 0
    for command in commands:
        if not isinstance(command, ScheduleActivityTask):
            continue
        if (command.task_queue or task_queue) == task_queue and (
                command.activity_type in activity_types):
            wanted += 1
    return min(wanted, EAGER_ACTIVITIES_PER_TASK_MAX)
