"""Every history event recorded from a real cluster that the tests keep: the golden histories
(tests/data/histories) and the 0.1 upgrade fixture's histories, as the HTTP API rendered them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data"


def recorded_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted((DATA / "histories").glob("*.json")):
        events.extend(json.loads(path.read_text())["events"])
    expected = json.loads((DATA / "upgrade-v0.1" / "expected.json").read_text())
    for run in expected.values():
        events.extend(run["history"]["events"])
    return events
