"""Goal: no query text can reach SQL as code, and hostile text is refused or matched literally.

Method: (1) hostile values (quotes, `'; DROP TABLE runs; --`, comment markers, unicode, NUL,
4 KiB strings) are written into queries with `render`, parsed and translated: the SQL text must
be exactly the SQL of the same query shape with a harmless value (so it depends on the shape
only, never on the value), contain no quote, semicolon or comment marker, and running it must
leave both tables intact while finding the run whose id is the hostile string. (2) The same for
hostile attribute names built straight into the tree, which the parser could never produce.
(3) Raw hostile text and random token soup must either parse or raise QueryError, never
anything else, and whatever parses must run.
"""

from __future__ import annotations

from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.visibility import limits
from raftflow.visibility.query_ast import (
    AttributeRef,
    AttributeType,
    BuiltinField,
    BuiltinRef,
    Compare,
    CompareOp,
    In,
    Or,
    Query,
    QueryError,
    StartsWith,
)
from raftflow.visibility.query_eval import VisibilityRow, select
from raftflow.visibility.query_parser import parse
from raftflow.visibility.query_sql import to_sql
from raftflow.visibility.query_text import render
from tests.visibility.visibility_db import open_db, select_run_ids

ATTRIBUTES = {"CustomKeyword": AttributeType.KEYWORD}
WORKFLOW_ID = BuiltinRef(field=BuiltinField.WORKFLOW_ID)
KEYWORD = AttributeRef(name="CustomKeyword", type=AttributeType.KEYWORD)

HOSTILE = [
    "'; DROP TABLE runs; --",
    "x' OR '1'='1",
    "\"; DELETE FROM search_attributes; --",
    "') OR 1=1 --",
    "\\'; DROP TABLE runs; --",
    "/* */ UNION SELECT run_id FROM runs",
    "%_%",
    "日本語 ✓ é 😀",
    "nul\x00byte",
    "\x00",
    "\U0010ffff",
    "?",
    "'" * 100,
    "x" * ((limits.QUERY_CHARS_MAX - 150) // 3),  # the shape holds it three times
]


def shape(value: str) -> Query:
    """One query using the value in every position a value can take."""
    return Query(where=Or(operands=(
        Compare(field=WORKFLOW_ID, op=CompareOp.EQ, value=value),
        In(field=WORKFLOW_ID, values=(value, "v")),
        StartsWith(field=KEYWORD, prefix=value),
    )), order_by=None)


def a_run(run_id: str, workflow_id: str) -> VisibilityRow:
    return VisibilityRow(run_id=run_id, workflow_id=workflow_id, workflow_type="t",
                         status="Running", start_time_ms=1, close_time_ms=None, task_queue="q",
                         attributes={"CustomKeyword": workflow_id})


def assert_no_user_text(sql: str) -> None:
    for forbidden in ("'", '"', ";", "--", "/*", "\x00"):
        assert forbidden not in sql


@pytest.mark.parametrize("value", HOSTILE, ids=[ascii(v)[:30] for v in HOSTILE])
def test_hostile_values_travel_only_as_parameters(value: str) -> None:
    text = render(shape(value))
    assert len(text) <= limits.QUERY_CHARS_MAX
    query = parse(text, ATTRIBUTES)
    assert query == shape(value)
    where_sql, params, _ = to_sql(query)
    # The SQL depends on the query's shape only: a harmless value gives the very same text.
    # (A prefix of only U+10FFFF has no upper bound, so its STARTS_WITH binds one value less.)
    harmless = "\U0010ffff" if value.strip("\U0010ffff") == "" else "harmless"
    assert where_sql == to_sql(shape(harmless)).where_sql
    assert value in params
    assert_no_user_text(where_sql)
    rows = [a_run("r1", value), a_run("r2", "other")]
    with closing(open_db(rows, ATTRIBUTES)) as db:
        assert select_run_ids(db, query) == ["r1"] == [r.run_id for r in select(query, rows)]
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM search_attributes").fetchone() == (2,)


@pytest.mark.parametrize("name", ["x'); DROP TABLE runs; --", "a\" OR 1=1", "\x00", "名前"])
def test_attribute_names_travel_only_as_parameters(name: str) -> None:
    attributes = {name: AttributeType.KEYWORD}
    query = Query(where=Compare(field=AttributeRef(name=name, type=AttributeType.KEYWORD),
                                op=CompareOp.EQ, value="v"), order_by=None)
    where_sql, params, _ = to_sql(query)
    assert where_sql == to_sql(Query(where=Compare(field=KEYWORD, op=CompareOp.EQ, value="v"),
                                     order_by=None)).where_sql
    assert params == [name, "v"]
    row = VisibilityRow(run_id="r1", workflow_id="w", workflow_type="t", status="Running",
                        start_time_ms=1, close_time_ms=None, task_queue="q",
                        attributes={name: "v"})
    with closing(open_db([row], attributes)) as db:
        assert select_run_ids(db, query) == ["r1"]
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,)


@pytest.mark.parametrize(("text", "position"), [
    ("WorkflowId = ''; DROP TABLE runs; --", 15),
    ("'; DROP TABLE runs; --", 0),
    ("WorkflowId = 'a' OR 1=1", 20),
    ("WorkflowId = 'a' UNION SELECT 1", 17),
    ("WorkflowId = 'a' /* x */", 17),
    ("WorkflowId = 'a\x00' \x00", 18),
    ("WorkflowId = 'a' " + "OR WorkflowId = 'a' " * 400, limits.QUERY_CHARS_MAX),
])
def test_hostile_text_outside_strings_is_refused(text: str, position: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse(text, ATTRIBUTES)
    assert raised.value.position == position


_SOUP = st.lists(st.one_of(
    st.sampled_from(["WorkflowId", "CustomKeyword", "StartTime", "ExecutionStatus", "=", "!=",
                     "<", ">=", "AND", "or", "(", ")", ",", "IN", "BETWEEN", "STARTS_WITH",
                     "ORDER", "BY", "DESC", "'a'", "'", "\"", "''", "\\", "1", "-1.5e3", "true",
                     "'2026-12-06T10:00:00Z'", "'Running'", ";", "--", "\x00", "é"]),
    st.text(max_size=5)), max_size=25).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(text=_SOUP)
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    try:
        query = parse(text, ATTRIBUTES)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
        return
    where_sql, params, order_sql = to_sql(query)
    assert_no_user_text(where_sql)
    db = open_db([], ATTRIBUTES)
    try:
        db.execute(f"SELECT run_id FROM runs WHERE {where_sql} ORDER BY {order_sql}", params)
    finally:
        db.close()
