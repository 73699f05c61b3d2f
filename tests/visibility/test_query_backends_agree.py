"""Goal: text, memory and SQL agree on every query. `render` and `parse` are inverses on trees,
and `query_eval.select` over rows in memory returns exactly the run ids, in exactly the order,
that `to_sql` returns from SQLite holding the same rows in the storage schema.

Method: hypothesis draws random rows (values from small pools, so predicates often match and
times often tie, plus arbitrary values: any non-surrogate text, any 64-bit int, any finite
double, any datetime in years 0001-9999) and random trees over every field, operator and type
(And/Or nested up to eight leaves, optional ORDER BY). Each tree is rendered to text and parsed
back, then both back ends run it. Hypothesis prints the failing rows and query and can replay
them (`@reproduce_failure`); there is no other randomness.
"""

from __future__ import annotations

from contextlib import closing

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from raftflow.visibility import limits
from raftflow.visibility.query_ast import (
    SORTABLE_FIELDS,
    And,
    AttributeRef,
    AttributeType,
    Between,
    BuiltinField,
    BuiltinRef,
    Compare,
    CompareOp,
    ExecutionStatus,
    Expr,
    FieldRef,
    In,
    Or,
    OrderBy,
    Query,
    SortDirection,
    StartsWith,
    Value,
)
from raftflow.visibility.query_eval import AttributeValue, VisibilityRow, field_value, select
from raftflow.visibility.query_parser import parse
from raftflow.visibility.query_text import render
from raftflow.visibility.rfc3339 import DATETIME_MS_MAX, DATETIME_MS_MIN
from tests.visibility.visibility_db import open_db, select_run_ids

ATTRIBUTES = {
    "CustomKeyword": AttributeType.KEYWORD,
    "CustomInt": AttributeType.INT,
    "CustomDouble": AttributeType.DOUBLE,
    "CustomBool": AttributeType.BOOL,
    "CustomDatetime": AttributeType.DATETIME,
}
FIELDS: list[FieldRef] = [BuiltinRef(field=f) for f in BuiltinField] + [
    AttributeRef(name=name, type=attribute_type) for name, attribute_type in ATTRIBUTES.items()]

_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=3)
KEYWORDS = st.sampled_from(["", "a", "ab", "b", "a'b", "\\", "\x00", "a\x00", "é", "\U0010ffff",
                            "a%", "_"]) | _text
TIMES_MS = st.sampled_from([-1, 0, 1, 1000, 1_796_551_200_000]) | st.integers(DATETIME_MS_MIN,
                                                                               DATETIME_MS_MAX)
INTS = st.sampled_from([-2, 0, 1, 5]) | st.integers(limits.INT_MIN, limits.INT_MAX)
DOUBLES = st.sampled_from([0.0, -0.0, 1.5, -2.25, 1e300]) | st.floats(allow_nan=False,
                                                                      allow_infinity=False)
STATUSES = st.sampled_from([s.value for s in ExecutionStatus])
_VALUES_BY_TYPE: dict[AttributeType, st.SearchStrategy[AttributeValue]] = {
    AttributeType.KEYWORD: KEYWORDS,
    AttributeType.INT: INTS,
    AttributeType.DOUBLE: DOUBLES,
    AttributeType.BOOL: st.booleans(),
    AttributeType.DATETIME: TIMES_MS,
}

ROWS = st.lists(st.text(alphabet="abc", min_size=1, max_size=3), unique=True, max_size=12).flatmap(
    lambda run_ids: st.tuples(*(st.builds(
        VisibilityRow,
        run_id=st.just(run_id),
        workflow_id=KEYWORDS,
        workflow_type=st.sampled_from(["Charge", "Refund"]),
        status=STATUSES,
        start_time_ms=TIMES_MS,
        close_time_ms=st.none() | TIMES_MS,
        task_queue=KEYWORDS,
        attributes=st.fixed_dictionaries(
            {}, optional={n: _VALUES_BY_TYPE[t] for n, t in ATTRIBUTES.items()}),
    ) for run_id in run_ids)).map(list))


def _is_status(field: FieldRef) -> bool:
    return field == BuiltinRef(field=BuiltinField.EXECUTION_STATUS)


def values_for(field: FieldRef) -> st.SearchStrategy[Value]:
    if _is_status(field):
        return STATUSES
    strategy: st.SearchStrategy[Value] = _VALUES_BY_TYPE[field.type]
    return strategy


@st.composite
def predicates(draw: st.DrawFn) -> Expr:
    field = draw(st.sampled_from(FIELDS))
    values = values_for(field)
    equality_only = field.type is AttributeType.BOOL or _is_status(field)
    kinds = ["compare"] if field.type is AttributeType.BOOL else ["compare", "in"]
    if not equality_only:
        kinds.append("between")
    if field.type is AttributeType.KEYWORD and not _is_status(field):
        kinds.append("starts_with")
    match draw(st.sampled_from(kinds)):
        case "compare":
            ops = [CompareOp.EQ, CompareOp.NE] if equality_only else list(CompareOp)
            return Compare(field=field, op=draw(st.sampled_from(ops)), value=draw(values))
        case "in":
            return In(field=field, values=tuple(draw(st.lists(values, min_size=1, max_size=4))))
        case "between":
            return Between(field=field, low=draw(values), high=draw(values))
        case _:
            return StartsWith(field=field, prefix=str(draw(values)))


def _compound(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    operands = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.builds(And, operands=operands) | st.builds(Or, operands=operands)


QUERIES = st.builds(
    Query,
    where=st.none() | st.recursive(predicates(), _compound, max_leaves=8),
    order_by=st.none() | st.builds(OrderBy, field=st.sampled_from(SORTABLE_FIELDS),
                                   direction=st.sampled_from(SortDirection)),
)


@settings(max_examples=400, deadline=None)
@given(query=QUERIES)
def test_render_and_parse_are_inverses(query: Query) -> None:
    text = render(query)
    assert parse(text, ATTRIBUTES) == query
    assert render(parse(text, ATTRIBUTES)) == text


@settings(max_examples=400, deadline=None)
@given(rows=ROWS, query=QUERIES)
def test_memory_and_sql_select_the_same_runs_in_the_same_order(
        rows: list[VisibilityRow], query: Query) -> None:
    query = parse(render(query), ATTRIBUTES)
    in_memory = [row.run_id for row in select(query, rows)]
    with closing(open_db(rows, ATTRIBUTES)) as db:
        assert select_run_ids(db, query) == in_memory


@settings(max_examples=100, deadline=None)
@given(rows=ROWS, field=st.sampled_from(FIELDS), data=st.data())
def test_a_value_a_row_has_is_found_by_both(rows: list[VisibilityRow], field: FieldRef,
                                             data: st.DataObject) -> None:
    """Random values rarely collide; this makes sure equality on each field really matches."""
    assume(rows)
    row = data.draw(st.sampled_from(rows))
    value = field_value(row, field)
    assume(value is not None)
    assert value is not None
    query = Query(where=Compare(field=field, op=CompareOp.EQ, value=value), order_by=None)
    in_memory = [r.run_id for r in select(query, rows)]
    assert row.run_id in in_memory
    with closing(open_db(rows, ATTRIBUTES)) as db:
        assert select_run_ids(db, query) == in_memory
