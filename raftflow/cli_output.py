"""How the `raftflow` CLI reports: its error type, aligned tables, pieces of JSON answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

JsonObject = dict[str, object]


class CliError(Exception):
    """A failure to report as `error: <code>: <message>` with exit status 1.

    `answer`, when set, is still printed on stdout with `--json` (a failed run's description:
    a script reads it and the exit status both).
    """

    def __init__(self, code: str, message: str, *, answer: JsonObject | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.answer = answer


def print_table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-aligned columns, two spaces apart; None prints as "-"."""
    widths = column_widths(headers, rows)
    for row in (headers, *rows):
        print_row(out, row, widths)


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[int]:
    """The width of each column: its widest cell, the header included."""
    cells = [[_cell(c) for c in row] for row in (headers, *rows)]
    return [max(len(row[i]) for row in cells) for i in range(len(headers))]


def print_row(out: TextIO, row: Sequence[object], widths: Sequence[int]) -> None:
    """One table row padded to `widths` (a wider cell pushes the rest of its row along)."""
    cells = [_cell(c) for c in row]
    out.write("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n")


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def joined(value: object) -> str:
    """A JSON list as "a,b,c"; anything else as its string."""
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)


def records(value: object) -> list[JsonObject]:
    """The objects of a JSON list (anything else: none)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
