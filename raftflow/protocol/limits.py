"""Bounds that both sides of the wire enforce: the gateway refuses a body beyond them with a 4xx
naming the field and the limit, and the shard core refuses a command beyond them (DESIGN §4 I7).
Each is defined here once; `shards.core.limits` and the gateway import them.
"""

from __future__ import annotations

# Temporal's blob size limit: a payload larger than this is a design smell (pass a reference) and
# would make one log entry, one snapshot chunk and one worker response dangerously large.
PAYLOAD_BYTES_MAX = 2 * 1024 * 1024

# Temporal's default history count limit: a worker replays the whole history on a cache miss, so
# replay time and snapshot size grow with it; long-lived workflows must continue-as-new.
HISTORY_EVENTS_MAX = 51_200

# A run whose history reached this many events is told to continue as new
# (`workflow.info().continue_as_new_suggested`): Temporal's 10,240, a fifth of the limit, so a
# loop that checks it between iterations has ample room to finish one.
CONTINUE_AS_NEW_SUGGESTED_EVENTS = HISTORY_EVENTS_MAX // 5

# Temporal's id length limit (workflow id, request ids, namespaces, type names, task queues,
# activity and timer ids).
ID_LENGTH_MAX = 1_000

# A failure's message is for people: long enough for a traceback summary (checked at the HTTP
# edge only: release 0.1 logged longer ones, which must still decode).
MESSAGE_LENGTH_MAX = 32_768

# One workflow task answer: bounds the work (and events) of one command application.
COMMANDS_PER_TASK_MAX = 1_000

# Default workflow task start-to-close timeout when the caller gives none (Temporal's 10 s).
WORKFLOW_TASK_TIMEOUT_MS_DEFAULT = 10_000

# Ceiling of the workflow task timeout (Temporal caps it at 120 s).
WORKFLOW_TASK_TIMEOUT_MS_MAX = 120_000

# Longest accepted duration (timeouts, timers, retry intervals): ~10 years, guards overflow and
# nonsense inputs; timer instants stay far below 2**63 ms.
DURATION_MS_MAX = 10 * 365 * 24 * 3600 * 1000

# A W3C Trace Context `traceparent` of version 00 (version-trace_id-parent_id-flags in
# lowercase hex: 2+1+32+1+16+1+2 characters), the one trace context the engine carries from a
# client or a worker to the tasks it causes (docs/observability.md). Exactly this long or "".
TRACEPARENT_LENGTH = 55
TRACEPARENT_PATTERN = "00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"

# Activities one workflow task completion may start eagerly for its worker (the rest are
# dispatched to pollers); bounds the answer's size and one worker's grab of a fan-out.
EAGER_ACTIVITIES_MAX = 16

assert PAYLOAD_BYTES_MAX > ID_LENGTH_MAX
assert 0 < CONTINUE_AS_NEW_SUGGESTED_EVENTS < HISTORY_EVENTS_MAX
assert WORKFLOW_TASK_TIMEOUT_MS_DEFAULT <= WORKFLOW_TASK_TIMEOUT_MS_MAX <= DURATION_MS_MAX

# Messages one DeliverMessages or AckMessages carries (shard outbox, protocol/messages.py):
# bounds the time of one apply (each may write a few events), like the core's
# TIMERS_PER_FIRE_MAX, and the internal delivery route's body.
MESSAGES_PER_DELIVERY_MAX = 64
