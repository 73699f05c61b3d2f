"""How a worker trades tasks with the cluster: streams (or polls) to every node, slots,
answers, drain.

Theory of operation. A task is ready only on its shard's leader, so the worker takes tasks
from every node (`poll_targets`). By default it opens a task stream to each
(`_task_stream`, protocol/task_stream.py): the node pushes the tasks of the shards it leads, one
per grant, and each grant holds a worker slot. A node without the stream route (an earlier
release), or a worker built with `task_protocol="http"`, is long-polled instead: the server fans
each poll out to every node, and how many polls go to each node is `_worker_policy.poll_plan`'s
call (the same plan sets the grants per node). A poller takes a slot before it polls, so a task
is never taken that cannot start at once; the slot is released when the task's handler returns.
Answers go to the node that handed the task out (on its stream when one is open, else over HTTP,
to the node named in the poll answer's `X-Raftflow-Served-By`: it led the shard a moment ago, so
no forwarding hop), any node over HTTP if that one fails. At shutdown the streams are withdrawn
(no more tasks), tasks in flight get a grace period, then are cancelled, and the streams close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import aiohttp
import msgspec

from raftflow.protocol.commands import TaskKind
from raftflow.protocol.http_answers import ClusterStatus
from raftflow.protocol.http_bodies import PollRequest
from raftflow.sdk import _http, errors
from raftflow.sdk._interceptors import TRACEPARENT_HEADER
from raftflow.sdk._task_stream import NodeStream, StreamClosedError
from raftflow.sdk._wire_answers import decode_answer
from raftflow.sdk._wire_tasks import describe_task
from raftflow.sdk._worker_policy import POLL_BACKOFF_S_MAX, POLL_BACKOFF_S_MIN, POLL_WAIT_MS

log = logging.getLogger(__name__)

CLUSTER_STATUS_PATH = "/api/v1/cluster/status"
# A node that answers the stream's upgrade with these has no stream route (an earlier
# release): the worker long-polls it over HTTP instead.
_NO_STREAM_STATUSES = frozenset({404, 405})

# (address the task came from, the task's JSON): a runner's `handle`, which decodes the task
# first thing (`_wire_tasks`), so polled and eager tasks enter typed code at the same point.
TaskHandler = Callable[[str, object], Awaitable[None]]


async def reserve_slots(slots: asyncio.Semaphore, wanted: int) -> int:
    """Take up to `wanted` free slots without waiting; returns how many were taken."""
    taken = 0
    while taken < wanted and not slots.locked():
        await slots.acquire()  # returns at once: a slot is free and nobody queues for it
        taken += 1
    return taken


@dataclass(frozen=True, slots=True)
class KindPlan:
    """How a worker takes tasks of one kind from one node: `wanted` polls (or grants on a
    stream) at once, each on a slot of `slots`, each task run by `handle`."""

    kind: TaskKind
    wanted: int
    slots: asyncio.Semaphore
    handle: TaskHandler
    poll_path: str  # the HTTP long poll, for a node that offers no stream
    # Tasks of any shard, not only of this node's: when the worker has fewer slots than there
    # are nodes, some node gets no grant, and its tasks must still reach the worker.
    anywhere: bool = False


class TaskExchange:
    """One worker's polls, tasks in flight and answers.

    Guarantees: every task runs in a slot taken for it (released exactly once when it ends);
    `drain` returns only when no task is left in flight.
    """

    def __init__(self, transport: _http.Transport, *, identity: str,
                 sticky_queue: str) -> None:
        self._transport = transport
        self.identity = identity
        self.sticky_queue = sticky_queue
        self.stopping = asyncio.Event()  # set at shutdown: no new polls, no eager tasks
        self._in_flight: set[asyncio.Task[None]] = set()
        self._streams: dict[str, NodeStream] = {}  # open task streams by node address
        self._stream_loops: set[asyncio.Task[None]] = set()

    async def poll_targets(self) -> tuple[str, ...]:
        """The client's addresses plus every node the cluster reports (a worker given one
        address must still reach the leaders of every shard, each on its own node)."""
        addresses = list(self._transport.addresses)
        try:
            answer = await self._transport.call("GET", CLUSTER_STATUS_PATH)
            status = decode_answer(answer, ClusterStatus, f"GET {CLUSTER_STATUS_PATH}")
        except (errors.RPCError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("cluster status unavailable, polling only the given nodes: %r", error)
            return tuple(addresses)
        addresses.extend(_http.normalize_address(node.address) for node in status.nodes
                         if node.address)  # a node without a known address is skipped
        return tuple(dict.fromkeys(addresses))

    async def poll_loop(self, address: str, path: str, slots: asyncio.Semaphore,
                        handle: TaskHandler) -> None:
        backoff_s = POLL_BACKOFF_S_MIN
        body = PollRequest(identity=self.identity, sticky_queue=self.sticky_queue,
                           wait_ms=POLL_WAIT_MS)
        while not self.stopping.is_set():
            await slots.acquire()
            try:
                answer = await self._transport.call_node(
                    address, "POST", path, body=body,
                    timeout_s=POLL_WAIT_MS / 1000 + _http.REQUEST_TIMEOUT_S)
            except (errors.RPCError, aiohttp.ClientError, TimeoutError) as error:
                slots.release()
                log.debug("poll %s%s failed: %r", address, path, error)
                await asyncio.sleep(backoff_s)
                backoff_s = min(POLL_BACKOFF_S_MAX, backoff_s * 2)
                continue
            except BaseException:
                slots.release()
                raise
            backoff_s = POLL_BACKOFF_S_MIN
            if answer.status != 200 or not isinstance(answer.body, dict):
                slots.release()
                continue
            self.spawn(slots, handle, answer.address or address, answer.body)

    def open_streams(self, addresses: Sequence[str], plans: Mapping[str, Sequence[KindPlan]],
                     path: str) -> None:
        """Keep a task stream open to each node until `drain` (polling over HTTP instead
        where a node offers none); `plans[address]` says what to take from it."""
        params = {"identity": self.identity, "sticky_queue": self.sticky_queue}
        for address in addresses:
            loop = asyncio.create_task(self._stream_loop(address, path, params, plans[address]))
            self._stream_loops.add(loop)
            loop.add_done_callback(self._stream_loops.discard)

    async def _stream_loop(self, address: str, path: str, params: Mapping[str, str],
                           plans: Sequence[KindPlan]) -> None:
        backoff_s = POLL_BACKOFF_S_MIN
        while not self.stopping.is_set():
            try:
                stream = await NodeStream.open(self._transport, address, path, params)
            except aiohttp.WSServerHandshakeError as refused:
                if refused.status in _NO_STREAM_STATUSES:
                    log.info("%s offers no task stream (%s): polling it over HTTP", address,
                             refused.status)
                    await self._poll_instead(address, plans)
                    return
                log.warning("task stream to %s refused: %s %s", address, refused.status,
                            refused.message)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.debug("task stream to %s failed to open: %r", address, error)
            else:
                backoff_s = POLL_BACKOFF_S_MIN
                for plan in plans:
                    stream.serve_kind(plan.kind, plan.slots, partial(
                        self.spawn, plan.slots, plan.handle), plan.wanted,
                        anywhere=plan.anywhere)
                self._streams[address] = stream
                try:
                    await stream.run()
                    continue  # closed: open it again at once (the node may be back already)
                except (aiohttp.ClientError, ConnectionError) as error:  # never the loop's end
                    log.warning("task stream to %s failed: %r", address, error)
                finally:
                    if self._streams.get(address) is stream:
                        del self._streams[address]
            await asyncio.sleep(backoff_s)
            backoff_s = min(POLL_BACKOFF_S_MAX, backoff_s * 2)

    async def _poll_instead(self, address: str, plans: Sequence[KindPlan]) -> None:
        async with asyncio.TaskGroup() as group:
            polls = [group.create_task(self.poll_loop(address, plan.poll_path, plan.slots,
                                                      plan.handle))
                     for plan in plans for _ in range(plan.wanted)]
            await self.stopping.wait()
            for poll in polls:  # polls in flight are dropped, as at any worker's shutdown
                poll.cancel()

    def spawn(self, slots: asyncio.Semaphore, handle: TaskHandler, address: str,
              task: object) -> None:
        """Run a task in a slot the caller already holds (released when the task ends)."""
        job = asyncio.create_task(self._run_in_slot(slots, handle, address, task))
        self._in_flight.add(job)
        job.add_done_callback(self._in_flight.discard)

    async def _run_in_slot(self, slots: asyncio.Semaphore, handle: TaskHandler, address: str,
                           task: object) -> None:
        try:
            await handle(address, task)
        except (errors.RPCError, aiohttp.ClientError, TimeoutError) as error:
            log.warning("task of %s not answered: %r", describe_task(task), error)
        except Exception:  # the one catch boundary of a task: log it, keep the worker alive
            log.exception("task of %s crashed the worker's handler", describe_task(task))
        finally:
            slots.release()

    async def drain(self, grace_s: float) -> None:
        # Streams push no more tasks from here on; the tasks they already sent arrive first.
        deadline = asyncio.get_running_loop().time() + grace_s
        await asyncio.gather(*(stream.withdraw(grace_s) for stream in self._streams.values()))
        # A task answered during the grace period may bring an eager task with it (spawned
        # into _in_flight): wait for those too, within the same grace period.
        while self._in_flight:
            remaining_s = deadline - asyncio.get_running_loop().time()
            if remaining_s <= 0:
                break
            await asyncio.wait(set(self._in_flight), timeout=remaining_s)
        late = set(self._in_flight)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        assert not self._in_flight or all(t.done() for t in self._in_flight)
        # Their answers are in: the streams close, and their loops end (`stopping` is set).
        for stream in list(self._streams.values()):
            await stream.close()
        loops = set(self._stream_loops)
        for loop in loops:
            loop.cancel()
        if loops:
            await asyncio.wait(loops)

    async def post(self, path: str, body: msgspec.Struct,
                   headers: Mapping[str, str] | None = None) -> _http.Answer:
        """Send a task's answer (an `http_bodies` request struct) to any node (retried across
        nodes with the same body)."""
        return await self._transport.call("POST", path, body=body, headers=headers)

    async def post_to(self, address: str, path: str, body: msgspec.Struct,
                      headers: Mapping[str, str] | None = None) -> _http.Answer:
        """Answer a task on the node it came from: that node led the task's shard a moment
        ago, so the answer usually needs no forwarding hop. Any other node will do if it is
        down or no longer leads (the same body: a completion that did commit is then refused
        as stale, never applied twice)."""
        stream = self._streams.get(address)
        try:
            if stream is not None and stream.is_open:
                return await stream.call(path, _http.encode_body(body), traceparent=(
                    headers or {}).get(TRACEPARENT_HEADER, ""))
            return await self._transport.call_node(address, "POST", path, body=body,
                                                   headers=headers)
        except errors.RPCError as error:
            if error.status not in _http.RETRYABLE_STATUSES:
                raise
        except (aiohttp.ClientError, TimeoutError, StreamClosedError):
            pass
        return await self.post(path, body, headers)
