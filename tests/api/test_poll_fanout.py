"""The gateway's poll fan-out: no task claimed for a poll is left where no poll looks.

Goal: a gateway poll that gets its task from one node ends the same poll id on the others,
and any task beyond the one it returns (a leg that claimed before its end arrived, or legs
finishing together) goes back into this node's matcher, where the next poll takes it at once;
a node told to end a poll answers that poll's wait at once and remembers the end.
Method: one `TaskPoller` over a real `Matcher` and a fake directory, in one asyncio loop; the
other nodes are small aiohttp apps on loopback that play a remote node's side of the protocol
(legs, ends) and record what they were sent. Tasks are queries and started tasks, which need
no shard actor to hand out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from raftflow.api.poll_fanout import POLL_END_PATH
from raftflow.api.poll_types import PolledTask, Poller
from raftflow.api.polling import TaskPoller
from raftflow.api.routing import SERVED_BY_HEADER
from raftflow.api.task_tokens import TaskTokens
from raftflow.matching.items import QueryTask
from raftflow.matching.matcher import Matcher
from raftflow.protocol.commands import TaskKind
from raftflow.shards.actor import ShardActor

NS, QUEUE = "default", "q"
WORKER = Poller(identity="w")
POLL_PATH = f"/api/v1/namespaces/{NS}/task-queues/{QUEUE}/workflow-tasks/poll"
AT_ONCE_S = 1.0


class Directory:
    """This node is `n0`; `n1`.. are the fake nodes at `addresses`."""

    def __init__(self, addresses: list[str]) -> None:
        self._addresses = {f"n{i + 1}": a for i, a in enumerate(addresses)}

    @property
    def node_id(self) -> str:
        return "n0"

    @property
    def shard_count(self) -> int:
        return 1

    def actor(self, shard: int) -> ShardActor | None:
        return None

    def leader_of(self, shard: int) -> str | None:
        return None

    def http_address(self, node_id: str) -> str | None:
        return self._addresses.get(node_id)

    def public_address(self, node_id: str) -> str | None:
        return f"http://{node_id}"

    def node_ids(self) -> list[str]:
        return ["n0", *self._addresses]


class FakeNode:
    """Another node's side: its first leg answers `task` when `answer_when` says so (a leg
    that claimed), every other leg waits for its poll's end and then answers 204."""

    def __init__(self, name: str, task: dict[str, object] | None, *, after_end: bool) -> None:
        self.name = name
        self.task = task
        self.after_end = after_end
        self.leg_ids: list[str] = []
        self.local_flags: list[str | None] = []
        self.ended: set[str] = set()
        self.leg_arrived = asyncio.Event()
        self._end_seen = asyncio.Event()
        app = web.Application()
        app.router.add_post(POLL_PATH, self._leg)
        app.router.add_post(POLL_END_PATH, self._end)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def address(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def _leg(self, request: web.Request) -> web.StreamResponse:
        poll_id = request.query["poll_id"]
        self.leg_ids.append(poll_id)
        self.local_flags.append(request.query.get("local"))
        self.leg_arrived.set()
        task, self.task = self.task, None
        if task is not None and not self.after_end:
            return web.json_response(task, headers={SERVED_BY_HEADER: f"http://{self.name}"})
        while poll_id not in self.ended:
            self._end_seen.clear()
            await self._end_seen.wait()
        if task is None:
            return web.Response(status=204)
        # Claimed before the end arrived: the task rides on the answer all the same.
        return web.json_response(task, headers={SERVED_BY_HEADER: f"http://{self.name}"})

    async def _end(self, request: web.Request) -> web.StreamResponse:
        self.ended.update((await request.json())["poll_ids"])
        self._end_seen.set()
        return web.Response(status=204)


def _task(name: str) -> dict[str, object]:
    return {"task_token": name, "workflow_id": name}


def _query(matcher: Matcher, name: str) -> None:
    matcher.offer_query(QueryTask(shard=0, namespace=NS, task_queue=QUEUE, query_id=name,
                                  payload=_task(name), deadline=time.monotonic() + 60))


async def _with_cluster(nodes: list[FakeNode],
                        scenario: Callable[[TaskPoller, Matcher], Awaitable[None]]) -> None:
    for node in nodes:
        await node.server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            matcher = Matcher()
            poller = TaskPoller(Directory([n.address for n in nodes]), matcher, session,
                                TaskTokens("poll-fanout-test", lambda: 0))
            try:
                await scenario(poller, matcher)
            finally:
                await poller.close()
    finally:
        for node in nodes:
            await node.server.close()


async def _timed(poll: Awaitable[PolledTask | None]) -> tuple[PolledTask | None, float]:
    sent = time.monotonic()
    task = await poll
    return task, time.monotonic() - sent


def test_a_leg_that_claimed_before_its_end_gives_its_task_to_the_next_poll() -> None:
    late = FakeNode("n1", _task("late"), after_end=True)

    async def scenario(poller: TaskPoller, matcher: Matcher) -> None:
        first = asyncio.ensure_future(poller.poll_cluster(NS, QUEUE, TaskKind.WORKFLOW, WORKER, 10))
        await late.leg_arrived.wait()
        _query(matcher, "here")  # the local leg wins ...
        task = await first
        assert task is not None and task.payload["workflow_id"] == "here"
        assert task.served_by == "http://n0"
        # The other node's leg had claimed: once the poll was ended there, its task came back
        # and waits here for the next poll (not on n1, where only a leg could find it).
        again, waited_s = await _timed(
            poller.poll_cluster(NS, QUEUE, TaskKind.WORKFLOW, WORKER, 10))
        assert again is not None and again.payload["workflow_id"] == "late", again
        assert again.served_by == "http://n1"  # its completion goes where it was claimed
        assert waited_s < AT_ONCE_S
        assert late.local_flags[0] == "1" and late.leg_ids[0] in late.ended
        assert matcher.depth() == 0 and matcher.stats.started_offered == 1

    asyncio.run(_with_cluster([late], scenario))


def test_tasks_from_legs_finishing_together_are_all_handed_out() -> None:
    nodes = [FakeNode("n1", _task("b"), after_end=False),
             FakeNode("n2", _task("c"), after_end=False)]

    async def scenario(poller: TaskPoller, matcher: Matcher) -> None:
        got = []
        for _ in range(2):
            task, waited_s = await _timed(
                poller.poll_cluster(NS, QUEUE, TaskKind.WORKFLOW, WORKER, 10))
            assert task is not None and waited_s < AT_ONCE_S, (task, waited_s)
            got.append(task.payload["workflow_id"])
        assert sorted(got) == ["b", "c"]  # one answered, the other kept for the next poll
        # The second poll's legs found nothing there: each was ended, not left waiting 10 s.
        deadline = time.monotonic() + AT_ONCE_S
        while not all(set(node.leg_ids[1:]) <= node.ended for node in nodes):
            assert time.monotonic() < deadline, [(n.leg_ids, n.ended) for n in nodes]
            await asyncio.sleep(0.01)

    asyncio.run(_with_cluster(nodes, scenario))


def test_ending_a_poll_answers_its_wait_at_once_and_is_remembered() -> None:
    async def scenario(poller: TaskPoller, matcher: Matcher) -> None:
        waiting = asyncio.ensure_future(
            poller.poll_local(NS, QUEUE, TaskKind.WORKFLOW, WORKER, 30, "p1"))
        await asyncio.sleep(0.01)
        poller.end_polls(["p1"])
        task, waited_s = await _timed(waiting)
        assert task is None and waited_s < AT_ONCE_S
        # A leg arriving after its poll's end (the end overtook it) takes nothing ...
        _query(matcher, "kept")
        assert await poller.poll_local(NS, QUEUE, TaskKind.WORKFLOW, WORKER, 30, "p1") is None
        # ... and the task stays for a live poll.
        kept = await poller.poll_local(NS, QUEUE, TaskKind.WORKFLOW, WORKER, 0, "p2")
        assert kept is not None and kept.payload["workflow_id"] == "kept"

    asyncio.run(_with_cluster([], scenario))
