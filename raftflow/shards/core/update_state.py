"""An update admitted to an open run and not completed yet (`on_update.py`): part of the run's
state (`Execution.updates`), never of its history."""

from __future__ import annotations

import msgspec


class UpdateState(msgspec.Struct, kw_only=True):
    update_id: str
    name: str
    input: bytes
    # The run's history length when the update was admitted: a workflow task started later
    # (its WorkflowTaskStarted has a larger id) carries it to the worker.
    admitted_at: int
    accepted_event_id: int = 0  # 0 while admitted and not accepted yet

    @property
    def accepted(self) -> bool:
        return self.accepted_event_id > 0

    def delivered_by(self, started_event_id: int) -> bool:
        """True when the workflow task started at `started_event_id` carries this update."""
        return not self.accepted and self.admitted_at < started_event_id
