"""The pure, deterministic workflow state machine of one shard (no IO, no clock, no randomness).

Entry points for the shell: `ShardState.empty(shard_id)`, `apply(state, command) -> Output`,
`pending_effects(state)`, `queries`, `snapshot.to_bytes/from_bytes`, `digest.state_digest`,
`invariants.check_invariants`.
"""

from raftflow.shards.core.apply import apply, pending_effects
from raftflow.shards.core.output import Output
from raftflow.shards.core.state import ShardState

__all__ = ["Output", "ShardState", "apply", "pending_effects"]
