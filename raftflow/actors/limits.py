"""Bounds of the actor runtime (DESIGN §4 I7). Beyond them callers get a typed error that the
gateway turns into 503 + Retry-After, never a silent drop."""

from __future__ import annotations

# Commands waiting in one shard's mailbox. At ~1 ms per commit and hundreds of commands per
# batch this is seconds of work: more would only turn overload into timeouts.
MAILBOX_COMMANDS_MAX = 4_096

# Commands in one proposal (one log entry). Bounds apply latency per entry and entry size.
BATCH_COMMANDS_MAX = 512

# Proposals of one shard in the log but not yet applied. While they are in flight new commands
# gather in the mailbox, which is what makes group commit effective. Measured with
# `raftflow bench starts` (concurrency 64, 16 shards): 1 and 2 beat 4 (larger batches, less CPU
# per start); 2 keeps a second entry replicating while the first one applies.
PROPOSALS_IN_FLIGHT_MAX = 2

# A command not applied within this long fails with a timeout (its outcome is unknown: callers
# retry with the same request id, DESIGN §8).
PROPOSAL_TIMEOUT_S = 10.0

# A new leader's barrier that failed to commit is proposed again after this long (the leader
# acts on no effect until one commits; the pause keeps a failing log from being flooded).
LEADER_BARRIER_RETRY_S = 0.5

# What an overloaded caller is told to wait before retrying.
RETRY_AFTER_S = 1

assert BATCH_COMMANDS_MAX <= MAILBOX_COMMANDS_MAX
