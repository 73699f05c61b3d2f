"""The schedule ticker: steps the schedules of the shards this node leads.

Theory of operation (docs/internals/schedules.md, "who resolves time zones"). A schedule's times
depend on time zone rules, which the shard core never reads on apply. So the leader's shell
does: every POLL_S this ticker looks at each shard it leads (a ready leader), and for each
schedule that needs a step (`ScheduleRecord.needs_step`: its wake-up is due, or a backfill
waits) plans one with `zoneinfo` (`schedule_ticks.plan_tick`) and proposes it as a
`ScheduleTick`. The tick names the record's revision and cursor, so a plan made from a state
that changed meanwhile (an update, another tick, a new leader's) is refused as stale and
changes nothing: the next round plans again. Nothing is kept between rounds, so a leader change
needs no hand-over: the new leader's ticker finds the due schedules in its state. Times that
pass while no leader ticks are caught up by the next step (the catch-up window decides which
are still taken).
"""

from __future__ import annotations

import asyncio
import logging
import zoneinfo

from raftflow.actors.errors import NotLeaderError, ProposalTimeoutError
from raftflow.api.routing import ShardDirectory
from raftflow.observability.json_logs import shard_fields
from raftflow.protocol.errors import RaftflowError
from raftflow.protocol.results import Rejected
from raftflow.protocol.schedule_commands import ScheduleTick
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.schedule_ticks import plan_tick

log = logging.getLogger(__name__)

# How often the ticker looks for due schedules: the lateness of an action past its time (the
# shortest interval is a second, SCHEDULE_INTERVAL_MS_MIN).
POLL_S = 0.1
# One proposal's bound (a commit on a healthy leader takes milliseconds).
ATTEMPT_TIMEOUT_S = 5.0
# Steps proposed for one shard's schedules in one round: a step takes at most
# SCHEDULE_TIMES_PER_TICK_MAX times, so a long downtime needs several; the rest wait a round.
STEPS_PER_ROUND_MAX = 16


class ScheduleTicker:
    """Per node; runs on the node's event loop."""

    def __init__(self, directory: ShardDirectory) -> None:
        self._directory = directory
        self._broken: set[tuple[int, str, str]] = set()  # logged once: zone missing here
        self.proposed = 0  # ticks this node proposed (tests, metrics)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a bug: keep ticking, loudly
                log.exception("schedule ticker round failed")
            await asyncio.sleep(POLL_S)

    async def round(self) -> None:
        for shard in range(self._directory.shard_count):
            actor = self._directory.actor(shard)
            if actor is None or not actor.is_ready_leader() or not actor.state.schedules:
                continue
            for _ in range(STEPS_PER_ROUND_MAX):
                if not await self._step_shard(shard):
                    break

    async def _step_shard(self, shard: int) -> bool:
        """Propose one step of every schedule of `shard` that needs one, together (the actor
        puts concurrent proposals in one log entry); whether any was taken."""
        actor = self._directory.actor(shard)
        if actor is None or not actor.is_ready_leader():
            return False
        now_ms = self._directory.now_ms()
        ticks: list[ScheduleTick] = []
        for key, record in list(actor.state.schedules.items()):
            try:
                tick = plan_tick(record, now_ms, zoneinfo.ZoneInfo)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
                if (shard, *key) not in self._broken:
                    self._broken.add((shard, *key))
                    log.error("schedule %s/%s: cannot compute its times on this node: %s",
                              key[0], key[1], error,
                              extra={**shard_fields(shard), "namespace": key[0]})
                continue
            if tick is not None:
                ticks.append(tick)
        if not ticks:
            return False
        results = await asyncio.gather(*(self._propose(actor, t) for t in ticks))
        self.proposed += len(ticks)
        return any(results)

    async def _propose(self, actor: ShardActor, tick: ScheduleTick) -> bool:
        try:
            result = await asyncio.wait_for(actor.execute(tick), ATTEMPT_TIMEOUT_S)
        except (TimeoutError, NotLeaderError, ProposalTimeoutError, RaftflowError) as error:
            log.debug("schedule %s/%s: tick in doubt (%r)", tick.namespace, tick.schedule_id,
                      error)
            return False
        return not isinstance(result, Rejected)
