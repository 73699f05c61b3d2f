"""How the `raftflow` CLI reports: its error type, aligned tables, pieces of JSON answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

JsonObject = dict[str, object]


class CliError(Exception):
    """A failure to report as `error: <code>: <message>` with exit status 1."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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
