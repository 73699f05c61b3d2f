"""How the `raftflow` CLI prints: aligned tables and the pieces of JSON answers they show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

JsonObject = dict[str, object]


def print_table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-aligned columns, two spaces apart; None prints as "-"."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def joined(value: object) -> str:
    """A JSON list as "a,b,c"; anything else as its string."""
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)


def records(value: object) -> list[JsonObject]:
    """The objects of a JSON list (anything else: none)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
