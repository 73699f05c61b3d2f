"""Task hand-outs whose commit is in doubt, asked again with the same request id.

Handing a task to a poll is the `Record*TaskStarted` command (polling.py). When its proposal
fails with `not_leader` (leadership lost, a proposal dropped) or `timeout`, Raft cannot tell
whether it committed: the new leader may have it in its log and commit it. If it did, the
task is started for a worker that never got it, and nothing happens until its start-to-close
timeout retries it (seen: 10 s stalls while leadership moved).

So the gateway asks the shard's current leader, wherever it is, to apply the very same
command again, for at most HANDOUT_SETTLE_S. The core answers a second hand-out with the same
request id with the same started task (on_workflow_task / on_activity: "a retried hand-out"),
and refuses it as stale if the task was handed to anyone else or is gone meanwhile. So the
answer is the task exactly when the first command committed or this one did, and a task never
reaches two callers: the request id is this poll's alone. A leader on another node applies it
through the internal route HANDOUT_PATH (`retry_handout` in task_handlers.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import msgspec

from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.api.poll_types import PolledTask
from raftflow.api.render import activity_task_answer, workflow_task_answer
from raftflow.api.routing import FORWARDED_HEADER, SERVED_BY_HEADER, ShardDirectory
from raftflow.api.task_tokens import TaskTokens
from raftflow.observability.json_logs import shard_fields
from raftflow.protocol.commands import RecordActivityTaskStarted, RecordWorkflowTaskStarted
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.results import (
    ActivityTaskStartedResult,
    Rejected,
    Result,
    WorkflowTaskStartedResult,
)

log = logging.getLogger(__name__)

Handout = RecordWorkflowTaskStarted | RecordActivityTaskStarted


def _fields(shard: int, handout: Handout) -> dict[str, object]:
    """A hand-out line's structured fields (json_logs.py): its shard and run."""
    return {**shard_fields(shard), "namespace": handout.namespace,
            "workflow_id": handout.workflow_id, "run_id": handout.run_id}

HANDOUT_PATH = "/api/v1/tasks/handout"
# How long a hand-out in doubt is asked again: a new leader is elected within about a second
# (DESIGN §8, 0.76-0.91 s) and answers once its log is applied. Well below the default
# workflow task timeout (10 s), after which the task is retried anyway.
HANDOUT_SETTLE_S = 5.0
# Pause before each attempt: an election is under way, asking at once would find no leader.
HANDOUT_RETRY_PAUSE_S = 0.1
# One attempt's bound (a commit on a healthy leader takes milliseconds).
HANDOUT_ATTEMPT_TIMEOUT_S = 2.0

assert HANDOUT_RETRY_PAUSE_S < HANDOUT_ATTEMPT_TIMEOUT_S < HANDOUT_SETTLE_S


class HandoutRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Internal: a hand-out another node proposed and saw fail in doubt, to apply again."""

    handout: Handout


@dataclass(frozen=True, slots=True)
class _InDoubt:
    """This attempt settled nothing (no leader, not leader any more, timed out): try again."""


def started_task(result: Result, served_by: str, tokens: TaskTokens) -> PolledTask | None:
    """The poll answer for a started task (its token signed); None when the shard refused
    the hand-out."""
    match result:
        case WorkflowTaskStartedResult():
            payload = msgspec.to_builtins(workflow_task_answer(result.task, tokens))
        case ActivityTaskStartedResult():
            payload = msgspec.to_builtins(activity_task_answer(result.task, tokens))
        case Rejected():
            return None  # stale: handed to another poll, closed, superseded
        case _:
            raise AssertionError(f"a hand-out answered {result!r}")
    return PolledTask(payload=payload, served_by=served_by)


class HandoutSettler:
    """Asks the shard's current leader for the outcome of a hand-out in doubt."""

    def __init__(self, directory: ShardDirectory, session: aiohttp.ClientSession,
                 tokens: TaskTokens) -> None:
        self._directory = directory
        self._session = session
        self._tokens = tokens

    async def settle(self, shard: int, handout: Handout) -> PolledTask | None:
        """The started task if `handout` committed (or commits now); None if the shard
        refused it or no leader answered within HANDOUT_SETTLE_S."""
        deadline = time.monotonic() + HANDOUT_SETTLE_S
        attempts = 0
        while (remaining_s := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(HANDOUT_RETRY_PAUSE_S, remaining_s))
            attempts += 1
            timeout_s = min(HANDOUT_ATTEMPT_TIMEOUT_S, max(0.0, deadline - time.monotonic()))
            leader = self._directory.leader_of(shard)
            if leader is None:
                continue
            if leader == self._directory.node_id:
                outcome = await self._here(shard, handout, timeout_s)
            else:
                outcome = await self._there(leader, handout, timeout_s)
            if not isinstance(outcome, _InDoubt):
                log.info("shard %d: hand-out %s settled after %d attempts (%s)", shard,
                         handout.request_id, attempts, "started" if outcome else "refused",
                         extra=_fields(shard, handout))
                return outcome
        log.warning("shard %d: hand-out %s still in doubt after %.1f s; its task timeout "
                    "retries it if it committed", shard, handout.request_id, HANDOUT_SETTLE_S,
                    extra=_fields(shard, handout))
        return None

    async def _here(self, shard: int, handout: Handout,
                    timeout_s: float) -> PolledTask | None | _InDoubt:
        actor = self._directory.actor(shard)
        if actor is None or not actor.is_leader():
            return _InDoubt()
        try:
            result = await asyncio.wait_for(actor.execute(handout), timeout_s)
        except (TimeoutError, NotLeaderError, ProposalTimeoutError):
            return _InDoubt()
        except RaftflowError as error:  # overloaded, or a bug: not applied, ask again
            log.debug("shard %d: hand-out retry refused here: %s", shard, error)
            return _InDoubt()
        served_by = self._directory.public_address(self._directory.node_id) or ""
        return started_task(result, served_by, self._tokens)

    async def _there(self, leader: str, handout: Handout,
                     timeout_s: float) -> PolledTask | None | _InDoubt:
        address = self._directory.http_address(leader)
        if address is None:
            return _InDoubt()
        try:
            async with self._session.post(
                address + HANDOUT_PATH, data=msgspec.json.encode(HandoutRequest(handout=handout)),
                headers={FORWARDED_HEADER: self._directory.node_id,
                         "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as answer:
                if 400 <= answer.status < 500:  # refused (stale_task...): the task is not ours
                    return None
                if answer.status != 200:  # 503 not_leader or overloaded, 504 timeout
                    return _InDoubt()
                payload = await answer.json()
                served_by = answer.headers.get(SERVED_BY_HEADER, "")
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            log.debug("hand-out retry on %s failed: %r", address, error)
            return _InDoubt()
        if not isinstance(payload, dict):
            return _InDoubt()
        return PolledTask(payload=payload, served_by=served_by
                          or self._directory.public_address(leader) or "")
