"""Bounds that both sides of the wire enforce: the gateway refuses a body beyond them with a 4xx
naming the field and the limit, and the shard core refuses a command beyond them (DESIGN §4 I7).
Each is defined here once; `shards.core.limits` and the gateway import them.
"""

from __future__ import annotations

# Temporal's blob size limit: a payload larger than this is a design smell (pass a reference) and
# would make one log entry, one snapshot chunk and one worker response dangerously large.
PAYLOAD_BYTES_MAX = 2 * 1024 * 1024

# Temporal's id length limit (workflow id, request ids, namespaces, type names, task queues,
# activity and timer ids).
ID_LENGTH_MAX = 1_000

# One workflow task answer: bounds the work (and events) of one command application.
COMMANDS_PER_TASK_MAX = 1_000

# Default workflow task start-to-close timeout when the caller gives none (Temporal's 10 s).
WORKFLOW_TASK_TIMEOUT_MS_DEFAULT = 10_000

assert PAYLOAD_BYTES_MAX > ID_LENGTH_MAX
