"""Measure the node's CPU per command below the HTTP layer: propose, apply, answer (issue #17).

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, a few seconds:

    PYTHONPATH=. .venv/bin/python tools/apply_cost.py [--workflows N] [--repeat R]

It builds the command stream of `raftflow bench --activities 3` (eager start, then per activity
a workflow task completion that schedules it eagerly and its completion that asks for the next
workflow task eagerly, then a completion that closes the run; sticky queue throughout), with 64
runs in flight interleaved as the bench's concurrency makes them, one command per log entry
(what the bench's entries mostly hold). Then it replays that stream, as log entries, through
the node's real pieces: an `ActorRuntime` over a `ShardMachine` on a fresh `ShardStore`, with
the node's `Metrics` as observer, twice:
- leader: `submit` each command, let the mailbox drain propose it, apply the entry, answer
  the caller and hand the effects to a sink that drops them (a ready leader);
- follower: apply the same entries proposed by another node (no answers, no effects).
It prints `time.process_time()` microseconds per command of each, the median of R runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import uvloop

from raftflow.actors.runtime import ActorRuntime
from raftflow.api.metrics import Metrics
from raftflow.node import gc_tuning
from raftflow.protocol.codec import encode_command, encode_proposal_parts
from raftflow.protocol.commands import (
    Command,
    RespondActivityTaskCompleted,
    RespondWorkflowTaskCompleted,
    ScheduleActivityTask,
    StartWorkflow,
    TaskToken,
)
from raftflow.protocol.effects import Effect
from raftflow.protocol.results import (
    ActivityTaskCompletedResult,
    Rejected,
    Result,
    WorkflowStartedResult,
    WorkflowTaskCompletedResult,
)
from raftflow.protocol.workflow_commands import CompleteWorkflowExecution
from raftflow.raftlog.interface import LogStatus, NodeId, ShardId
from raftflow.shards.actor import new_shard_actor
from raftflow.shards.core.apply import apply
from raftflow.shards.core.state import ShardState
from raftflow.shards.store.shard_store import ShardStore

SHARD = 0
ACTIVITIES = 3
IN_FLIGHT = 64  # the bench's --concurrency
QUEUE = "bench"
STICKY = "sticky-bench-worker"
IDENTITY = "1234@bench"
START_MS = 1_800_000_000_000


def build_stream(workflows: int) -> list[Command]:
    """The bench's commands for `workflows` runs, `IN_FLIGHT` at a time, round robin."""
    state = ShardState.empty(SHARD)
    commands: list[Command] = []
    now_ms = START_MS
    next_workflow = 0
    # Per run in flight: the token of its task in hand and how many activities it has done.
    in_flight: list[tuple[TaskToken | None, int, bool]] = []

    def run(command: Command) -> Result:
        nonlocal now_ms
        now_ms += 1
        commands.append(command)
        return apply(state, command).result

    while next_workflow < workflows or in_flight:
        while len(in_flight) < IN_FLIGHT and next_workflow < workflows:
            number = next_workflow
            next_workflow += 1
            started = run(StartWorkflow(
                now_ms=now_ms, namespace="default", workflow_id=f"bench-{number}",
                workflow_type="bench-sequence", task_queue=QUEUE, input=b"[3]",
                request_id=f"start-{number}", run_id=f"{number:032x}",
                eager_task_queue=QUEUE, eager_identity=IDENTITY))
            assert isinstance(started, WorkflowStartedResult) and started.workflow_task
            in_flight.append((started.workflow_task.token, 0, True))
        advanced = []
        for token, done, workflow_turn in in_flight:
            assert token is not None
            if workflow_turn and done == ACTIVITIES:
                result = run(RespondWorkflowTaskCompleted(
                    now_ms=now_ms, token=token, identity=IDENTITY, sticky_queue=STICKY,
                    commands=(CompleteWorkflowExecution(result=b"3"),)))
                assert not isinstance(result, Rejected), result
                continue  # closed
            if workflow_turn:
                result = run(RespondWorkflowTaskCompleted(
                    now_ms=now_ms, token=token, identity=IDENTITY, sticky_queue=STICKY,
                    eager_task_queue=QUEUE, eager_activities_max=1,
                    commands=(ScheduleActivityTask(
                        activity_id=str(done + 1), activity_type="bench-step",
                        input=f"[{done}]".encode(), start_to_close_timeout_ms=30_000),)))
                assert isinstance(result, WorkflowTaskCompletedResult), result
                assert len(result.activity_tasks) == 1, result
                advanced.append((result.activity_tasks[0].token, done, False))
            else:
                result = run(RespondActivityTaskCompleted(
                    now_ms=now_ms, token=token, result=f"{done + 1}".encode(),
                    identity=IDENTITY, eager_task_queue=QUEUE, sticky_queue=STICKY))
                assert isinstance(result, ActivityTaskCompletedResult), result
                assert result.workflow_task is not None, result
                advanced.append((result.workflow_task.token, done + 1, True))
        in_flight = advanced
    return commands


class _Clock:
    def now_ms(self) -> int:
        return START_MS


class _DropSink:
    def on_effects(self, shard: int, effects: Sequence[Effect]) -> None:
        pass

    def on_leadership(self, shard: int, is_leader: bool) -> None:
        pass


class _InstantLog:
    """A one-replica `ReplicatedLog`: proposals wait in `proposed` until the caller applies
    them; entries are durable at once (the WAL round is measured elsewhere)."""

    def __init__(self) -> None:
        self.proposed: list[bytes] = []

    @property
    def shard(self) -> ShardId:
        return ShardId(SHARD)

    def propose(self, data: bytes, on_failed: Callable[[str], None]) -> None:
        self.proposed.append(data)

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()

    def is_leader(self) -> bool:
        return True

    def leader(self) -> NodeId | None:
        return NodeId("n1")

    def status(self) -> LogStatus:
        raise NotImplementedError


def _actor(directory: Path, name: str) -> ActorRuntime[ShardState]:
    store = ShardStore(str(directory / f"{name}.db"), SHARD, fresh=True)
    return new_shard_actor(shard=SHARD, node_id="n1", incarnation=1, sink=_DropSink(),
                           clock=_Clock(), observer=Metrics(), store=store)


def measure_follower(commands: Sequence[Command], directory: Path) -> float:
    """CPU seconds a follower spends applying `commands`, one per entry."""
    actor = _actor(directory, "follower")
    entries = [encode_proposal_parts(proposer="n2", incarnation=1, seq=seq + 1,
                                     encoded_commands=[encode_command(command)])
               for seq, command in enumerate(commands)]
    started_s = time.process_time()
    for index, data in enumerate(entries, start=2):
        actor.apply_entry(index, data)
    spent_s = time.process_time() - started_s
    actor.close()
    return spent_s


async def _lead(actor: ActorRuntime[ShardState], log: _InstantLog,
                commands: Sequence[Command]) -> float:
    actor.bind(log)  # type: ignore[arg-type]
    actor.on_leadership(True, 1)
    while not log.proposed:  # the leader barrier is proposed (call_soon, then a drain)
        await asyncio.sleep(0)
    index = 1
    for data in log.proposed:
        actor.apply_entry(index, data)
        index += 1
    log.proposed.clear()
    assert actor.is_ready_leader()
    started_s = time.process_time()
    for command in commands:
        future = actor.submit(command)
        await asyncio.sleep(0)  # the drain proposes it
        for data in log.proposed:
            index += 1
            actor.apply_entry(index, data)
        log.proposed.clear()
        result = await future
        assert not isinstance(result, Rejected), result  # the same answers as the stream's
    return time.process_time() - started_s


def measure_leader(commands: Sequence[Command], directory: Path) -> float:
    """CPU seconds a ready leader spends on `commands`: submit, propose, apply, answer, act."""
    actor = _actor(directory, "leader")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # as the node runs
        spent_s = runner.run(_lead(actor, _InstantLog(), commands))
    actor.close()
    return spent_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    commands = build_stream(args.workflows)
    gc_tuning.install()  # as a node process runs: young collections only, full ones timed
    leader_us: list[float] = []
    follower_us: list[float] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as directory:
            gc.collect()  # what the node's timed full collection does between passes
            gc.freeze()
            follower_us.append(measure_follower(commands, Path(directory)) * 1e6 / len(commands))
            gc.collect()
            gc.freeze()
            leader_us.append(measure_leader(commands, Path(directory)) * 1e6 / len(commands))
    print(f"{len(commands)} commands ({args.workflows} workflows), median of {args.repeat}: "
          f"leader {statistics.median(leader_us):.1f} us/command, "
          f"follower {statistics.median(follower_us):.1f} us/command; "
          f"per workflow (1 leader + 2 followers): "
          f"{(statistics.median(leader_us) + 2 * statistics.median(follower_us)) * len(commands) / args.workflows / 1000:.3f} ms")
    print("leader runs:", " ".join(f"{v:.1f}" for v in leader_us))
    print("follower runs:", " ".join(f"{v:.1f}" for v in follower_us))


if __name__ == "__main__":
    main()
