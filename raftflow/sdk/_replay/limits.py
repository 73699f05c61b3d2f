"""Bounds of the replay machinery, each with its reason (DESIGN §4 I7)."""

from __future__ import annotations

# Callbacks one activation may run before the workflow is declared stuck. A workflow that
# gathers 2,000 activities (PENDING_ACTIVITIES_MAX on the server) needs ~10 callbacks per
# activity; a busy loop (`while True: await asyncio.sleep(0)`) never stops. 1M runs in ~1 s.
CALLBACKS_PER_ACTIVATION_MAX = 1_000_000

# Commands one activation may produce: the server refuses more than 1,000 per task
# (COMMANDS_PER_TASK_MAX), so failing here gives a clearer error than the server's 400.
COMMANDS_PER_ACTIVATION_MAX = 1_000

# Marker name of `workflow.patched()`; its details are {"id": patch_id}.
PATCH_MARKER_NAME = "patch"

assert COMMANDS_PER_ACTIVATION_MAX < CALLBACKS_PER_ACTIVATION_MAX
