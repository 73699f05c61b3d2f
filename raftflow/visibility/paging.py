"""Keyset paging of visibility results: a page continues after the last row of the previous one.

Theory of operation. Results are in the total order `query_eval.compare_rows` defines (the sort
field, then run id descending), the same in SQL and in memory, on every shard. A page token is
the position of the last row returned (its sort value and run id) and nothing else; the next
page is every row strictly after that position, from every shard, merged in the same order.
So a page never repeats or skips a row that stays put, whichever shards moved leaders between
two pages, and no server keeps state for a paging client. A token carries no SQL: it is two
typed values, checked when it is read back, and they travel as parameters.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import msgspec

from raftflow.visibility.query_ast import DEFAULT_ORDER_BY, BuiltinField, OrderBy, SortDirection
from raftflow.visibility.query_eval import VisibilityRow, compare_rows

# A page token is base64url of a short msgpack array; anything longer is not one of ours.
PAGE_TOKEN_LENGTH_MAX = 1_024


class PageTokenError(ValueError):
    """The token was not written by `encode_token` (or was changed)."""


@dataclass(frozen=True, slots=True)
class PageCursor:
    """The position of the last row of a page: its sort value (None: a run with no close time,
    under ORDER BY CloseTime) and its run id."""

    sort_value: int | None
    run_id: str


class _Token(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    sort_value: int | None
    run_id: str


def cursor_of(row: VisibilityRow, order_by: OrderBy | None) -> PageCursor:
    field = (order_by or DEFAULT_ORDER_BY).field
    value = row.start_time_ms if field is BuiltinField.START_TIME else row.close_time_ms
    return PageCursor(sort_value=value, run_id=row.run_id)


def is_after(row: VisibilityRow, cursor: PageCursor, order_by: OrderBy | None) -> bool:
    """Whether `row` comes after the cursor's position in the result order."""
    field = (order_by or DEFAULT_ORDER_BY).field
    probe = VisibilityRow(
        run_id=cursor.run_id, workflow_id="", workflow_type="", status="", task_queue="",
        start_time_ms=(cursor.sort_value or 0) if field is BuiltinField.START_TIME else 0,
        close_time_ms=cursor.sort_value if field is BuiltinField.CLOSE_TIME else None,
        attributes={})
    return compare_rows(row, probe, order_by) > 0


def compare_positions(a: PageCursor, b: PageCursor, order_by: OrderBy | None) -> int:
    """`compare_rows` of the rows at two positions (negative: `a` first)."""
    order = order_by or DEFAULT_ORDER_BY
    if a.sort_value is None or b.sort_value is None:
        primary = (a.sort_value is None) - (b.sort_value is None)  # missing sorts last
    else:
        primary = (a.sort_value > b.sort_value) - (a.sort_value < b.sort_value)
    if order.direction is SortDirection.DESC:
        primary = -primary
    if primary:
        return primary
    return (a.run_id < b.run_id) - (a.run_id > b.run_id)  # larger run id first


def check_cursor(cursor: PageCursor, order_by: OrderBy | None) -> None:
    """A start time is never missing: a token with none was made for another query."""
    if (order_by or DEFAULT_ORDER_BY).field is BuiltinField.START_TIME and (
            cursor.sort_value is None):
        raise PageTokenError("next_page_token is not a page token of this query")


def after_sql(cursor: PageCursor, order_by: OrderBy | None) -> tuple[str, list[object]]:
    """A condition over the table `runs` selecting exactly the rows `is_after` accepts."""
    order = order_by or DEFAULT_ORDER_BY
    column = ("runs.start_time_ms" if order.field is BuiltinField.START_TIME
              else "runs.close_time_ms")
    descending = order.direction is SortDirection.DESC
    if cursor.sort_value is None:
        # Missing close times sort later than every time: first under DESC, last under ASC.
        if descending:
            return (f"({column} IS NOT NULL OR runs.run_id < ?)", [cursor.run_id])
        return (f"({column} IS NULL AND runs.run_id < ?)", [cursor.run_id])
    beyond = "<" if descending else ">"
    missing = "" if descending else f" OR {column} IS NULL"
    return (f"({column} {beyond} ? OR ({column} = ? AND runs.run_id < ?){missing})",
            [cursor.sort_value, cursor.sort_value, cursor.run_id])


def encode_token(cursor: PageCursor) -> str:
    data = msgspec.msgpack.encode(_Token(sort_value=cursor.sort_value, run_id=cursor.run_id))
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_token(token: str) -> PageCursor:
    if not token or len(token) > PAGE_TOKEN_LENGTH_MAX:
        raise PageTokenError("next_page_token is not a page token of this query")
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = msgspec.msgpack.decode(data, type=_Token)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise PageTokenError("next_page_token is not a page token of this query") from None
    return PageCursor(sort_value=decoded.sort_value, run_id=decoded.run_id)
