"""Goal: a new leader whose wall clock runs behind the last leader's must not break the core.

Commands carry the proposer's clock (DESIGN §4 I2), and leaders change: after a failover the
next leader's clock may be seconds behind the previous one's (the chaos harness skews node
clocks by up to ±12 s). Found by `make chaos` (seed 1, 2026-12-06): an activity started under
one leader failed under a leader whose clock read ~12 s earlier, so its retry time fell before
the attempt's start; the core's assertion stopped every replica of the shard at that entry,
and they stopped again on every restart, replaying it. A retry's backoff now runs from the later
of the failure's time and the attempt's start.

Method: the in-memory shard driver with a clock that jumps back between commands.
"""

from __future__ import annotations

from raftflow.protocol.commands import Failure as CommandFailure
from raftflow.protocol.commands import FireTimers, RespondActivityTaskFailed, RetryPolicy
from raftflow.protocol.effects import ArmTimer
from tests.core.core_driver import Shard, activity

SKEW_MS = 12_000


def test_a_failure_proposed_by_a_leader_behind_the_last_one_retries_later_not_earlier() -> None:
    shard = Shard()
    run_id = shard.start()
    shard.advance(SKEW_MS)
    shard.decide(run_id, activity("a", retry_policy=RetryPolicy(initial_interval_ms=1_000)))
    started = shard.poll_activity(run_id, "a")
    started_at = shard.now_ms
    behind = started_at - SKEW_MS  # the next leader's clock
    failed = shard.run(RespondActivityTaskFailed(now_ms=behind, token=started.token,
                                                 failure=CommandFailure(message="boom")))
    # The retry waits its backoff from the attempt's start, the later of the two times.
    assert failed.effects == (ArmTimer(fire_at_ms=started_at + 1_000),)
    # The lagging leader's timer check finds nothing due yet; the retry fires when it is.
    assert not shard.run(FireTimers(now_ms=behind + 5_000)).events
    shard.run(FireTimers(now_ms=started_at + 1_000))
    assert shard.poll_activity(run_id, "a").attempt == 2
