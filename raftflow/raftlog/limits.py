"""Bounds and timings of the replicated log. Every number here has a reason next to it."""

from __future__ import annotations

# Election timeouts: DESIGN §8 measured 0.3/0.6 s (writes back 0.76-0.91 s after kill -9 of a
# leader). Under a saturated 2-core machine a node's loop can lag a few hundred ms (benchmarks:
# spurious elections at 0.3 s), so we keep more headroom: failover still takes ~1-1.5 s.
ELECTION_TIMEOUT_MIN_S = 0.4
ELECTION_TIMEOUT_MAX_S = 0.8

# A leader that has not heard from a majority for this long steps down. pysyncobj's default of
# 30 s would let a deposed leader believe in itself for half a minute (DESIGN §8).
LEADER_FALLBACK_TIMEOUT_S = 1.0

# Heartbeat period of a leader. New entries do not wait for it: RaftGroup.tick pushes them at
# once, so this only bounds idle traffic (one message per follower per group per period) and
# how soon followers learn the commit index when nothing else happens.
APPEND_ENTRIES_PERIOD_S = 0.08
# Every group is ticked this often (elections, heartbeats); events tick a group at once, so
# this only paces idle groups: 64 groups per node tick 3,200 times a second.
TICK_PERIOD_S = 0.02

# One proposal (a shard's group-commit batch) must fit in one AppendEntries message: pysyncobj
# splits larger entries into a chunked 'transmission' path that our normaliser does not cover.
PROPOSAL_BYTES_MAX = 8 * 1024 * 1024
APPEND_ENTRIES_BATCH_BYTES = 2 * PROPOSAL_BYTES_MAX

# A frame on the peer network holds one Raft message; anything larger is a protocol violation.
FRAME_BYTES_MAX = 4 * APPEND_ENTRIES_BATCH_BYTES

# Per-peer outgoing bytes held while the socket drains; beyond this, messages to that peer are
# dropped (Raft retransmits) rather than letting one slow peer grow memory without bound.
PEER_SEND_BUFFER_BYTES_MAX = 64 * 1024 * 1024

# Snapshot (log compaction) triggers: entries since the last snapshot, or seconds. A shard's
# snapshot is a durable commit of its store plus a manifest (shards/store), so it is cheap; the
# log kept between two is what a restart replays and what the node's WAL must hold. 2,000
# entries is ~20 s of a shard at full load: a node back from a restart catches up from the log,
# one away longer gets a copy of a peer's store.
SNAPSHOT_AFTER_ENTRIES = 2_000
SNAPSHOT_AFTER_S = 60.0
SNAPSHOT_CHUNK_BYTES = 1024 * 1024

# The node's write-ahead log is rewritten from the in-memory journals once it grows past this.
# A restart reads the whole file, so its size bounds restart time and the memory recovery
# needs: measured with `raftflow bench retention`, 256 MiB meant 6.7 s and a 570 MB peak at
# 200,000 retained workflows. The journals after compaction are far smaller (16 shards x
# SNAPSHOT_AFTER_ENTRIES entries of a few hundred bytes).
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024

# Reconnect delay to a peer that is down.
PEER_RECONNECT_S = 0.1

# Commands queued inside pysyncobj before it reports QUEUE_FULL.
COMMANDS_QUEUE_MAX = 10_000

assert ELECTION_TIMEOUT_MIN_S > 3 * APPEND_ENTRIES_PERIOD_S  # pysyncobj's own validate() rule
assert LEADER_FALLBACK_TIMEOUT_S > ELECTION_TIMEOUT_MAX_S
assert TICK_PERIOD_S <= APPEND_ENTRIES_PERIOD_S
assert APPEND_ENTRIES_BATCH_BYTES > PROPOSAL_BYTES_MAX
