"""Every bound the shard core enforces, with why it has that value (DESIGN §4 I7).

Beyond a client-facing limit a command is refused with `payload_too_large` or `limit_exceeded`
naming the limit, and changes nothing. Relations between limits are asserted at import.
"""

from __future__ import annotations

# Wire limits, defined once in protocol; re-exported so the core reads every bound from here.
from raftflow.protocol.limits import (
    COMMANDS_PER_TASK_MAX as COMMANDS_PER_TASK_MAX,
)
from raftflow.protocol.limits import (
    DURATION_MS_MAX as DURATION_MS_MAX,
)
from raftflow.protocol.limits import (
    EAGER_ACTIVITIES_MAX as EAGER_ACTIVITIES_MAX,
)
from raftflow.protocol.limits import (
    HISTORY_EVENTS_MAX as HISTORY_EVENTS_MAX,
)
from raftflow.protocol.limits import (
    ID_LENGTH_MAX as ID_LENGTH_MAX,
)
from raftflow.protocol.limits import (
    MESSAGES_PER_DELIVERY_MAX as MESSAGES_PER_DELIVERY_MAX,
)
from raftflow.protocol.limits import (
    PAYLOAD_BYTES_MAX as PAYLOAD_BYTES_MAX,
)
from raftflow.protocol.limits import (
    WORKFLOW_TASK_TIMEOUT_MS_DEFAULT as WORKFLOW_TASK_TIMEOUT_MS_DEFAULT,
)
from raftflow.protocol.limits import (
    WORKFLOW_TASK_TIMEOUT_MS_MAX as WORKFLOW_TASK_TIMEOUT_MS_MAX,
)

# Events per stored history chunk: a closed run's history is stored in chunks of this many
# events, and an open run moves its oldest events to the archive a chunk at a time (below), so
# a history page reads a few chunks and a typical run (tens of events) is one.
HISTORY_CHUNK_EVENTS = 256

# Events of an open run kept in memory: once a run's in-memory history reaches this plus a
# chunk, its oldest whole chunk moves to the archive (run_history.py; on disk in a store-backed
# replica). Typical runs (tens of events) never reach it; a long one (up to HISTORY_EVENTS_MAX)
# then holds at most this plus a chunk in memory, and so does the open part a store commits.
HISTORY_HOT_EVENTS_MAX = 1_024

# Events the server itself may add after a run reached HISTORY_EVENTS_MAX (timeouts firing for
# every pending activity and timer, then the terminate event): server-driven events cannot be
# refused, so the run is terminated instead and this bounds how far it overshoots.
HISTORY_EVENTS_SERVER_SLACK = 2 * 2_000 + 2_000 + 2_000 + 2 * 2_000 + 16

# Temporal's default pending-activities limit per run: each one holds timers and state in memory.
PENDING_ACTIVITIES_MAX = 2_000

# Same reasoning for user timers: each is an entry in the shard's timer index.
PENDING_TIMERS_MAX = 2_000

# How long a request id (start, signal, cancel, terminate) is remembered with its first answer,
# so a retry gets that answer again (I5). By time, not count: a client retrying after a minute or
# an hour must not start a duplicate whatever the load; the rows live in the archive (on disk
# in a store-backed replica), so the bound is disk, not memory.
REQUEST_IDS_RETENTION_MS = 24 * 3_600_000

# Retention of closed runs in a namespace that does not set its own (Temporal's `default`
# namespace keeps 3 days). A closed run is deleted this long after its close time.
DEFAULT_RETENTION_MS = 3 * 24 * 3_600_000

# Archive rows (closed runs, request ids) one FireTimers deletes: bounds the time of one apply,
# like TIMERS_PER_FIRE_MAX; more due rows are deleted by the next FireTimers.
EXPIRIES_PER_FIRE_MAX = 512

# The leader wakes up this long after the earliest row is due, so rows due close together are
# deleted by one FireTimers instead of one each (deletion is "at least retention", not exact).
EXPIRY_BATCHING_MS = 5_000

# Open runs per shard: each holds mutable state in memory on every replica.
OPEN_RUNS_PER_SHARD_MAX = 100_000

# Timers one FireTimers command fires: bounds the time of one apply (each fire writes a few
# events) so the shard's loop keeps answering heartbeats well inside an election timeout; more
# due timers are fired by the next FireTimers, proposed at once.
TIMERS_PER_FIRE_MAX = 512

# Messages a run may have in the outbox at once (signals and cancel requests to other workflows
# not yet acknowledged): Temporal's pending-signals limit per run. Each outcome is a
# server-driven event, hence its share of HISTORY_EVENTS_SERVER_SLACK.
PENDING_MESSAGES_PER_RUN_MAX = 2_000

# Children a run may have started and not seen close (Temporal's pending child executions
# limit): each is state in the run and, when the parent closes, a message of its close policy.
PENDING_CHILDREN_PER_RUN_MAX = 2_000

# Batch jobs one shard keeps (running ones, and finished ones for describe; the oldest finished
# one makes room for a new job): each is a small record in the state's open part.
BATCH_JOBS_PER_SHARD_MAX = 256

# Messages in one shard's outbox: the outbox is part of the state's open part (every replica
# holds it in memory; a store-backed one rewrites it in the meta row at each commit), and a new
# leader re-sends all of it. A workflow task that would pass either bound is refused
# (limit_exceeded) and retried like any refused completion; the outbox drains meanwhile.
OUTBOX_MESSAGES_PER_SHARD_MAX = 4_096
# Payload bytes in one shard's outbox (signal inputs), for the same reason: at most this much is
# rewritten per store commit while messages wait.
OUTBOX_BYTES_PER_SHARD_MAX = 16 * 1024 * 1024

# How long a source shard keeps re-sending an unacknowledged message before it records the
# outcome DeliveryTimedOut. Well inside REQUEST_IDS_RETENTION_MS, for which the target remembers
# a message id: a re-send can never arrive after the target forgot the id (and apply twice),
# even with an hour of clock difference between the two shards' leaders.
MESSAGE_RETRY_HORIZON_MS = 12 * 3_600_000

# Schedules (schedule_times.py). How far ahead a fire-time search looks: a spec with no time in
# this long has none worth arming a timer for; 10 years covers a February-29-only expression
# across a century's skipped leap year.
SCHEDULE_SEARCH_HORIZON_MS = 10 * 366 * 24 * 3_600_000

# Consecutive times one search may drop because a `skip` expression matches them: skips that
# cover every time would otherwise make the search endless.
SCHEDULE_SKIPPED_TIMES_MAX = 10_000

# Times one catch-up step looks at (due, missed or skipped): bounds the work of one apply like
# TIMERS_PER_FIRE_MAX; more due times are taken by the next step, proposed at once.
SCHEDULE_TIMES_PER_TICK_MAX = 512

# Times older than the catch-up window counted one by one after downtime; beyond this the
# count stops (reported as capped) and the search jumps to the window's start, so a year of
# every-second times costs one bounded step, not millions.
SCHEDULE_MISSED_COUNT_MAX = 10_000

# Schedules one shard holds: each is a record in the shard's open part (like the outbox), which
# a store-backed replica rewrites at every commit, so their number bounds that write.
SCHEDULES_PER_SHARD_MAX = 1_000

# Backfills one schedule keeps waiting: each is walked by later ticks, a few at a time; more
# pending at once is a script gone wrong, not a backfill.
SCHEDULE_BACKFILLS_PENDING_MAX = 16

assert HISTORY_EVENTS_SERVER_SLACK >= (2 * PENDING_ACTIVITIES_MAX + PENDING_TIMERS_MAX
                                       + PENDING_MESSAGES_PER_RUN_MAX
                                       + 2 * PENDING_CHILDREN_PER_RUN_MAX)
assert MESSAGE_RETRY_HORIZON_MS + 3_600_000 < REQUEST_IDS_RETENTION_MS
assert 0 < MESSAGES_PER_DELIVERY_MAX <= OUTBOX_MESSAGES_PER_SHARD_MAX
assert OUTBOX_BYTES_PER_SHARD_MAX >= 4 * PAYLOAD_BYTES_MAX
assert HISTORY_CHUNK_EVENTS >= 1 and HISTORY_HOT_EVENTS_MAX >= HISTORY_CHUNK_EVENTS
assert PENDING_ACTIVITIES_MAX < HISTORY_EVENTS_MAX and PENDING_TIMERS_MAX < HISTORY_EVENTS_MAX
assert COMMANDS_PER_TASK_MAX < HISTORY_EVENTS_MAX
assert 0 < TIMERS_PER_FIRE_MAX <= PENDING_TIMERS_MAX
assert EXPIRIES_PER_FIRE_MAX > 0 and 0 <= EXPIRY_BATCHING_MS < REQUEST_IDS_RETENTION_MS
assert WORKFLOW_TASK_TIMEOUT_MS_DEFAULT <= WORKFLOW_TASK_TIMEOUT_MS_MAX <= DURATION_MS_MAX
assert DURATION_MS_MAX * 4 < 2**62, "deadlines must stay msgpack int64"
assert SCHEDULE_TIMES_PER_TICK_MAX <= SCHEDULE_MISSED_COUNT_MAX <= SCHEDULE_SKIPPED_TIMES_MAX
assert SCHEDULE_SEARCH_HORIZON_MS > DURATION_MS_MAX // 10
