"""The values a task poll carries: who polls, and the task it got (with the node that gave it)."""

from __future__ import annotations

from dataclasses import dataclass

from raftflow.protocol.history_json import JsonValue
from raftflow.protocol.http_bodies import POLL_ID_LENGTH_MAX as POLL_ID_LENGTH_MAX
from raftflow.protocol.http_bodies import WAIT_MS_MAX

POLL_TIMEOUT_S_MAX = WAIT_MS_MAX / 1000

Task = dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class Poller:
    """Who polls: the worker's identity and its sticky queue (which decides whether a workflow
    task carries the whole history or only the events that worker has not seen)."""

    identity: str
    sticky_queue: str = ""


@dataclass(frozen=True, slots=True)
class PolledTask:
    """A task a poll got: its answer JSON, and the public address of the node that claimed it
    (that node leads the task's shard: its completion goes there with no forwarding hop)."""

    payload: Task
    served_by: str  # "" when not known
