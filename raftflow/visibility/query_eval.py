"""Evaluate a parsed query over in-memory rows (open workflows live in memory).

Theory of operation: a direct walk of the tree. It must select exactly the runs `query_sql`
selects from SQLite, in the same order, so it copies SQL's rules on purpose:

- Missing values are NULL. A predicate on a value a run does not have (CloseTime of a running
  workflow, a custom attribute the run never set, or an attribute stored with a type other
  than the registered one) is false, whatever the operator: `CloseTime != '...'` does not
  select running workflows, exactly as `close_time_ms != ?` is NULL, hence false, in SQL.
  Because the language has no NOT, SQL's third truth value can never turn back into true, so
  two-valued evaluation with "missing means false" agrees with SQL on every query.
- BETWEEN is inclusive at both ends; STARTS_WITH compares code points, as SQLite compares
  UTF-8 bytes (the two orders agree for valid Unicode, which the parser enforces).
- Order: see `compare_rows`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar, assert_never

from raftflow.visibility.query_ast import (
    DEFAULT_ORDER_BY,
    And,
    AttributeRef,
    AttributeType,
    Between,
    BuiltinField,
    BuiltinRef,
    Compare,
    CompareOp,
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

_Ordered = TypeVar("_Ordered", int, str)

# A stored attribute value: keyword str, int int, double float, bool bool, datetime int ms.
AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VisibilityRow:
    """What a query can see of one run.

    `status` is the API name (`ExecutionStatus` value, e.g. 'Running'); times are integer
    milliseconds since the epoch, UTC; `close_time_ms` is None while the run is open.
    """

    run_id: str
    workflow_id: str
    workflow_type: str
    status: str
    start_time_ms: int
    close_time_ms: int | None
    task_queue: str
    attributes: Mapping[str, AttributeValue]


_COMPARE: dict[CompareOp, Callable[[Value, Value], bool]] = {
    CompareOp.EQ: operator.eq,
    CompareOp.NE: operator.ne,
    CompareOp.LT: operator.lt,
    CompareOp.GT: operator.gt,
    CompareOp.LE: operator.le,
    CompareOp.GE: operator.ge,
}
assert set(_COMPARE) == set(CompareOp)


def matches(where: Expr | None, row: VisibilityRow) -> bool:
    """Whether `row` satisfies `where` (a `Query.where`; None selects every row)."""
    if where is None:
        return True
    match where:
        case And(operands=operands):
            return all(matches(o, row) for o in operands)
        case Or(operands=operands):
            return any(matches(o, row) for o in operands)
        case Compare(field=field, op=op, value=literal):
            value = field_value(row, field)
            return value is not None and _COMPARE[op](value, literal)
        case Between(field=field, low=low, high=high):
            value = field_value(row, field)
            return (value is not None and _COMPARE[CompareOp.GE](value, low)
                    and _COMPARE[CompareOp.LE](value, high))
        case In(field=field, values=values):
            value = field_value(row, field)
            return value is not None and value in values
        case StartsWith(field=field, prefix=prefix):
            value = field_value(row, field)
            assert value is None or isinstance(value, str)
            return value is not None and value.startswith(prefix)
        case _:
            assert_never(where)


def field_value(row: VisibilityRow, field: FieldRef) -> Value | None:
    """The value `field` has in `row`, or None when the run has none (SQL NULL)."""
    match field:
        case BuiltinRef(field=builtin):
            return _builtin_value(row, builtin)
        case AttributeRef(name=name, type=attribute_type):
            return _typed(row.attributes.get(name), attribute_type)
        case _:
            assert_never(field)


def _builtin_value(row: VisibilityRow, field: BuiltinField) -> Value | None:
    match field:
        case BuiltinField.WORKFLOW_ID:
            return row.workflow_id
        case BuiltinField.WORKFLOW_TYPE:
            return row.workflow_type
        case BuiltinField.EXECUTION_STATUS:
            return row.status
        case BuiltinField.START_TIME:
            return row.start_time_ms
        case BuiltinField.CLOSE_TIME:
            return row.close_time_ms
        case BuiltinField.TASK_QUEUE:
            return row.task_queue
        case _:
            assert_never(field)


def _typed(value: AttributeValue | None, attribute_type: AttributeType) -> Value | None:
    """`value` if it has the registered type, else None: SQL finds no value in that type's
    column either (`query_sql.attribute_columns` stores each type in one column only)."""
    if value is None:
        return None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)  # bool is an int
    match attribute_type:
        case AttributeType.KEYWORD:
            return value if isinstance(value, str) else None
        case AttributeType.INT | AttributeType.DATETIME:
            return value if is_number and isinstance(value, int) else None
        case AttributeType.DOUBLE:
            # An int stored as a double reads back from the REAL column as a float.
            return float(value) if is_number and not isinstance(value, str) else None
        case AttributeType.BOOL:
            return value if isinstance(value, bool) else None
        case _:
            assert_never(attribute_type)


def compare_rows(a: VisibilityRow, b: VisibilityRow, order_by: OrderBy | None) -> int:
    """Negative if `a` sorts before `b`, positive if after; 0 only for the same run id.

    The sort field in the requested direction (`DEFAULT_ORDER_BY`, StartTime DESC, when None);
    a missing CloseTime sorts as later than every time (last in ASC, first in DESC); ties go to
    the larger run id first, in both directions, so the order is total and pages are stable.
    """
    order = order_by or DEFAULT_ORDER_BY
    key_a, key_b = _sort_value(a, order.field), _sort_value(b, order.field)
    primary = _cmp_missing_last(key_a, key_b)
    if order.direction is SortDirection.DESC:
        primary = -primary
    if primary != 0:
        return primary
    return -_cmp(a.run_id, b.run_id)


@dataclass(frozen=True, slots=True)
class RowSortKey:
    """A `sorted` key that orders rows by `compare_rows`."""

    row: VisibilityRow
    order_by: OrderBy | None

    def __lt__(self, other: RowSortKey) -> bool:
        return compare_rows(self.row, other.row, self.order_by) < 0


def sort_key(order_by: OrderBy | None) -> Callable[[VisibilityRow], RowSortKey]:
    """Key for `sorted(rows, key=sort_key(query.order_by))`: the order `to_sql` produces."""
    return lambda row: RowSortKey(row, order_by)


def select(query: Query, rows: Iterable[VisibilityRow]) -> list[VisibilityRow]:
    """The rows `query` selects, in its order."""
    return sorted((row for row in rows if matches(query.where, row)), key=sort_key(query.order_by))


def _sort_value(row: VisibilityRow, field: BuiltinField) -> int | None:
    if field is BuiltinField.START_TIME:
        return row.start_time_ms
    assert field is BuiltinField.CLOSE_TIME, field
    return row.close_time_ms


def _cmp_missing_last(a: int | None, b: int | None) -> int:
    if a is None or b is None:
        return (a is None) - (b is None)
    return _cmp(a, b)


def _cmp(a: _Ordered, b: _Ordered) -> int:
    return (a > b) - (a < b)
