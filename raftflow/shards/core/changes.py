"""`Changes`: what one command wrote, collected by the `do_*` writes (writes.py) for the
command's `Output`. Its own module so that writes used by `do_close_run` (child_links.py,
outbox_queue.py) can name it without importing writes.py back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from raftflow.protocol.effects import Effect
from raftflow.protocol.events import HistoryEvent

if TYPE_CHECKING:
    from raftflow.shards.core.runs import Execution


@dataclass(slots=True)
class Changes:
    """What one command wrote: events appended (all runs), effects, earliest timer armed."""

    events: list[HistoryEvent] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    armed_at_ms: int | None = None
    # Runs whose in-memory history reached the spill mark: `apply` spills them once the
    # command is applied (run_history.py), so no handler sees a history change under it.
    grown: list[Execution] = field(default_factory=list)
