"""Goal: a task hand-out whose commit the claiming node saw fail as `not_leader` still reaches
the poll that claimed it, promptly and once (issue 12, item 6), whether the shard's leader is
still this node or has moved to another; it is not left started for nobody until its
start-to-close timeout (10 s by default) retries it.

Method: three in-process nodes. On the shard's leader, the actor's `submit` is wrapped for one
hand-out (`Record*TaskStarted`): the command is proposed and commits, then its caller is told
`not_leader`, as when leadership is lost between the commit and the answer. In the second
test the leadership moves to another replica before that answer, so the hand-out must be
settled on the new leader through the internal route. The poll must answer the task within
SETTLED_S_MAX with attempt 1; the history must show one WorkflowTaskStarted and no timeout;
the task must complete normally. Without the fix the poll answers 204 after its wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from raftflow.actors.errors import NotLeaderError
from raftflow.api.handouts import HANDOUT_PATH
from raftflow.cluster.ring import shard_for
from raftflow.node.runtime import NodeRuntime
from raftflow.protocol.commands import (
    Command,
    RecordActivityTaskStarted,
    RecordWorkflowTaskStarted,
)
from raftflow.raftlog.interface import NodeId
from raftflow.sdk._http import SERVED_BY_HEADER
from raftflow.shards.actor import ShardActor
from tests.api.gateway_harness import API, NS, Call, LiveCluster, _drive, _start_body, _wid

# Well below the default workflow task timeout (10 s), whose retry is what the fix spares.
SETTLED_S_MAX = 6.0
POLL_WAIT_MS = 8_000
LEADER_MOVES_WITHIN_S = 10.0
TRANSFER_WAIT_S = 2.0

AfterCommit = Callable[[], Awaitable[None]]


def _answer_lost_once(actor: ShardActor, after_commit: AfterCommit) -> list[Command]:
    """Wrap `actor.submit`: the next hand-out commits, then its caller hears `not_leader`.
    Returns the list the wrapped hand-out is put in once it was proposed."""
    real_submit = actor.submit
    wrapped: list[Command] = []

    def submit(command: Command) -> asyncio.Future[Any]:
        if wrapped or not isinstance(command, RecordWorkflowTaskStarted
                                     | RecordActivityTaskStarted):
            return real_submit(command)
        wrapped.append(command)
        committed = real_submit(command)

        async def answer_lost() -> Any:
            await committed
            await after_commit()
            raise NotLeaderError(actor.shard, "test: leadership lost before the answer")

        return asyncio.ensure_future(answer_lost())

    actor.submit = submit  # type: ignore[method-assign]
    return wrapped


def _placed(cluster: LiveCluster) -> tuple[str, int, NodeRuntime]:
    # A test before may have moved a leadership: let it go back first, so that no hand-off
    # moves the shard under this test (its leader is the premise of each test here).
    cluster.run(cluster.settle(), timeout_s=60.0)
    wid = _wid("doubt")
    shard = shard_for(NS, wid, cluster.shard_count)
    leader = cluster.ready_leader(shard)
    assert leader is not None
    return wid, shard, leader


def _scenario(cluster: LiveCluster, wid: str, leader: NodeRuntime, wrapped: list[Command],
              served_by: Callable[[], str]) -> Callable[[Call], Awaitable[None]]:
    queue = _wid("tq")
    wf = f"{API}/namespaces/{NS}/workflows/{wid}"

    async def scenario(call: Call) -> None:
        status, _, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                  json=_start_body(wid, task_queue=queue))
        assert status == 201
        began = time.monotonic()
        status, task, headers = await call(
            "POST", f"{API}/namespaces/{NS}/task-queues/{queue}/workflow-tasks/poll",
            json={"wait_ms": POLL_WAIT_MS, "identity": "doubtful"})
        took_s = time.monotonic() - began
        assert wrapped, "the hand-out was not the one made in doubt"
        assert status == 200, f"no task after {took_s:.1f} s: started for nobody"
        assert task["workflow_id"] == wid and task["attempt"] == 1
        assert took_s < SETTLED_S_MAX, f"task after {took_s:.1f} s"
        assert headers.get(SERVED_BY_HEADER) == served_by()
        status, history, _ = await call("GET", wf + "/history")
        types = [e["event_type"] for e in history["events"]]
        assert types.count("WorkflowTaskStarted") == 1 and "WorkflowTaskTimedOut" not in types
        status, _, _ = await call("POST", f"{API}/tasks/workflow/complete", json={
            "task_token": task["task_token"],
            "commands": [{"type": "CompleteWorkflowExecution", "result": None}]})
        assert status == 200
        status, described, _ = await call("GET", wf)
        assert described["status"] == "COMPLETED"

    return scenario


def test_a_hand_out_in_doubt_is_settled_on_the_same_leader(three: LiveCluster) -> None:
    wid, shard, leader = _placed(three)
    actor = leader.actor(shard)
    assert actor is not None

    async def nothing() -> None:
        return None

    wrapped = _answer_lost_once(actor, nothing)
    try:
        _drive(three, three.url(leader), _scenario(
            three, wid, leader, wrapped, lambda: three.url(leader)))
    finally:
        del actor.submit  # type: ignore[method-assign]


def test_a_hand_out_in_doubt_is_settled_on_the_new_leader(three: LiveCluster) -> None:
    wid, shard, leader = _placed(three)
    actor = leader.actor(shard)
    assert actor is not None and leader.host is not None
    group = leader.host.groups[shard]
    others = [n for n in three.nodes if n is not leader]
    moved_to: list[NodeRuntime] = []

    def moved() -> bool:
        now = leader.leader_of(shard)
        return not actor.is_leader() and now not in (None, leader.node_id)

    async def move_leadership() -> None:
        deadline = time.monotonic() + LEADER_MOVES_WITHIN_S
        for turn in range(1000):  # a transfer may be refused (a target behind): ask again
            assert time.monotonic() < deadline, "leadership did not move"
            if group.is_leader():
                group.transfer_leadership(NodeId(others[turn % 2].node_id), lambda _: None)
            with contextlib.suppress(AssertionError):
                await three.wait_for(moved, TRANSFER_WAIT_S)
                break
        moved_to.extend(n for n in others if n.node_id == leader.leader_of(shard))

    wrapped = _answer_lost_once(actor, move_leadership)
    try:
        _drive(three, three.url(leader), _scenario(
            three, wid, leader, wrapped, lambda: three.url(moved_to[0])))
    finally:
        del actor.submit  # type: ignore[method-assign]


def test_the_handout_route_refuses_what_is_not_the_callers(three: LiveCluster) -> None:
    """A non-leader answers 503 not_leader (never forwards); another request id than the one
    that started the task is 409 stale_task: the route never hands one task out twice."""
    wid, shard, leader = _placed(three)
    other = next(n for n in three.nodes if n is not leader)
    queue = _wid("tq")

    async def scenario(call: Call) -> None:
        status, started, _ = await call("POST", f"{API}/namespaces/{NS}/workflows",
                                        json=_start_body(wid, task_queue=queue))
        assert status == 201
        status, history, _ = await call("GET", f"{API}/namespaces/{NS}/workflows/{wid}/history")
        scheduled = next(e["event_id"] for e in history["events"]
                         if e["event_type"] == "WorkflowTaskScheduled")
        handout = {"command": "RecordWorkflowTaskStarted", "now_ms": leader.now_ms(), "namespace": NS,
                   "workflow_id": wid, "run_id": started["run_id"],
                   "scheduled_event_id": scheduled,
                   "identity": "w", "request_id": "mine"}
        status, answer, _ = await call("POST", HANDOUT_PATH, json={"handout": handout},
                                       base_url=three.url(other))
        assert status == 503 and answer["error"]["code"] == "not_leader", answer
        for request_id, expected in (("mine", 200), ("mine", 200), ("theirs", 409)):
            status, answer, _ = await call("POST", HANDOUT_PATH, json={
                "handout": {**handout, "request_id": request_id}})
            assert status == expected, (request_id, answer)
            if status == 200:
                assert answer["workflow_id"] == wid and answer["attempt"] == 1
            else:
                assert answer["error"]["code"] == "stale_task"

    _drive(three, three.url(leader), scenario)
