"""Goal: keyset pages cover a query's result exactly: concatenated, they are the full result
in order, with no run repeated or skipped, in memory and in SQL alike, whatever the page size
and order (missing close times included); a page token survives a round trip and a foreign or
damaged token is refused. Also: positions compare exactly as rows do (the gateway merges
shards' pages by position).

Method: hypothesis rows and queries of test_query_backends_agree; pages are taken with
`is_after` in memory and with `after_sql` in SQLite, each from the previous page's last row.
"""

from __future__ import annotations

from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.visibility.paging import (
    PageCursor,
    PageTokenError,
    after_sql,
    compare_positions,
    cursor_of,
    decode_token,
    encode_token,
    is_after,
)
from raftflow.visibility.query_ast import Query
from raftflow.visibility.query_eval import VisibilityRow, compare_rows, matches, select
from raftflow.visibility.query_parser import parse
from raftflow.visibility.query_sql import to_sql
from raftflow.visibility.query_text import render
from tests.visibility.test_query_backends_agree import ATTRIBUTES, QUERIES, ROWS
from tests.visibility.visibility_db import NAMESPACE, open_db


def _memory_pages(rows: list[VisibilityRow], query: Query, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after: PageCursor | None = None
    while True:
        page = select(query, [r for r in rows if matches(query.where, r)
                              and (after is None or is_after(r, after, query.order_by))])[:size]
        if not page:
            return pages
        pages.append([r.run_id for r in page])
        after = cursor_of(page[-1], query.order_by)


def _sql_pages(rows: list[VisibilityRow], query: Query, size: int) -> list[list[str]]:
    where = to_sql(query)
    by_id = {r.run_id: r for r in rows}
    pages: list[list[str]] = []
    after: PageCursor | None = None
    with closing(open_db(rows, ATTRIBUTES)) as db:
        while True:
            condition, params = ("1", []) if after is None else after_sql(after, query.order_by)
            found = [run_id for (run_id,) in db.execute(
                f"SELECT runs.run_id FROM runs WHERE runs.namespace = ? AND "
                f"({where.where_sql}) AND {condition} ORDER BY {where.order_sql} LIMIT ?",
                [NAMESPACE, *where.params, *params, size])]
            if not found:
                return pages
            pages.append(found)
            after = cursor_of(by_id[found[-1]], query.order_by)


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, query=QUERIES, size=st.integers(min_value=1, max_value=4))
def test_pages_cover_the_result_exactly_in_memory_and_in_sql(
        rows: list[VisibilityRow], query: Query, size: int) -> None:
    query = parse(render(query), ATTRIBUTES)
    full = [r.run_id for r in select(query, rows)]
    memory = _memory_pages(rows, query, size)
    assert [run_id for page in memory for run_id in page] == full
    assert all(len(page) <= size for page in memory)
    assert _sql_pages(rows, query, size) == memory


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, query=QUERIES)
def test_positions_compare_as_their_rows_do(rows: list[VisibilityRow], query: Query) -> None:
    for a in rows:
        for b in rows:
            expected = compare_rows(a, b, query.order_by)
            got = compare_positions(cursor_of(a, query.order_by), cursor_of(b, query.order_by),
                                    query.order_by)
            assert (got > 0) - (got < 0) == (expected > 0) - (expected < 0)


@given(value=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
       run_id=st.text(max_size=60))
def test_a_token_round_trips(value: int | None, run_id: str) -> None:
    cursor = PageCursor(sort_value=value, run_id=run_id)
    assert decode_token(encode_token(cursor)) == cursor


@pytest.mark.parametrize("token", ["", "!!!", "a" * 2_000, encode_token(
    PageCursor(sort_value=1, run_id="r"))[:-3] + "xyz", "WyJ4Il0"])
def test_a_damaged_or_foreign_token_is_refused(token: str) -> None:
    with pytest.raises(PageTokenError):
        decode_token(token)
