"""The pure, deterministic workflow state machine of one shard (no IO, no clock, no randomness).

Entry points for the shell: `ShardState.empty(shard_id)`, `apply(state, command) -> Output`,
`pending_effects(state)`, `queries`, `snapshot.to_bytes/from_bytes`, `digest.state_digest`,
`invariants.check_invariants`.
"""

# Assertions are part of the core's safety net (STYLE: they stay on in production).
if not __debug__:  # pragma: no cover - only under python -O
    raise RuntimeError("raftflow.shards.core needs assertions: do not run under python -O")

from raftflow.shards.core.apply import apply, pending_effects  # noqa: E402
from raftflow.shards.core.output import Output  # noqa: E402
from raftflow.shards.core.state import ShardState  # noqa: E402

__all__ = ["Output", "ShardState", "apply", "pending_effects"]
