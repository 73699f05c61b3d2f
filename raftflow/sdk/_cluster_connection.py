"""What a Client shares with the objects that act for it: its handles and its Workers.

A `Client` owns one `ClusterConnection`. Its `WorkflowHandle`s receive it in their
constructor; a `Worker` takes it from `Client.connection`. This is the only seam between them:
no object reaches into another's private attributes (the transport, the payload codec, the
local workers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from raftflow.sdk import _http
from raftflow.sdk._interceptors import NO_INTERCEPTORS, Interceptors
from raftflow.sdk._wire_payloads import NO_CODEC, WirePayloads


class EagerWorker(Protocol):
    """What a client needs of a worker running on it to hand it eagerly started tasks."""

    task_queue: str
    identity: str

    async def reserve_workflow_slot(self) -> bool: ...

    def release_workflow_slot(self) -> None: ...

    def accept_workflow_task(self, address: str, task: object | None) -> None:
        """Run `task` (a workflow task's JSON, decoded by the worker; or None: release the
        slot) in the reserved slot."""


class LocalWorkers:
    """Workers running on one client, by task queue: the targets of its eager starts.

    The first worker of a queue wins; a second one of the same queue still polls, it only
    gets no eager starts.
    """

    def __init__(self) -> None:
        self._by_task_queue: dict[str, EagerWorker] = {}

    def register(self, worker: EagerWorker) -> None:
        self._by_task_queue.setdefault(worker.task_queue, worker)

    def unregister(self, worker: EagerWorker) -> None:
        if self._by_task_queue.get(worker.task_queue) is worker:
            del self._by_task_queue[worker.task_queue]

    def for_task_queue(self, task_queue: str) -> EagerWorker | None:
        return self._by_task_queue.get(task_queue)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConnection:
    """One client's link to a cluster, for one namespace.

    transport:     the HTTP calls, retried across nodes with the same body (DESIGN §4 I5).
    namespace:     every workflow path below is in it.
    payloads:      the client's payload codec at the wire (`_wire_payloads`), for its handles
                   and its workers alike.
    local_workers: Workers running on this client (they register here; eager starts look).
    interceptors:  the client's interceptors, for its starts and its workers' tasks.
    """

    transport: _http.Transport
    namespace: str
    payloads: WirePayloads = NO_CODEC
    local_workers: LocalWorkers = field(default_factory=LocalWorkers)
    interceptors: Interceptors = NO_INTERCEPTORS

    def workflows_path(self, suffix: str = "") -> str:
        return f"/api/v1/namespaces/{quote(self.namespace, safe='')}/workflows{suffix}"

    def workflow_path(self, workflow_id: str, suffix: str = "") -> str:
        return self.workflows_path(f"/{quote(workflow_id, safe='')}{suffix}")

    def task_queue_path(self, task_queue: str, suffix: str) -> str:
        return (f"/api/v1/namespaces/{quote(self.namespace, safe='')}/task-queues/"
                f"{quote(task_queue, safe='')}{suffix}")
