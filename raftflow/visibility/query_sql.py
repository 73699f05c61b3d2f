"""Translate a parsed query into a parameterised SQLite filter over the visibility tables.

Schema this targets (the storage must create exactly these names):

    runs(run_id TEXT PRIMARY KEY, namespace TEXT, workflow_id TEXT, workflow_type TEXT,
         task_queue TEXT, status TEXT, start_time_ms INTEGER, close_time_ms INTEGER NULL)
    search_attributes(run_id TEXT, name TEXT, value_int INTEGER NULL, value_real REAL NULL,
                      value_text TEXT NULL, PRIMARY KEY (run_id, name))

`status` holds the API names ('Running', 'Completed', ...); times are integer ms since the
epoch, UTC; `close_time_ms` is NULL while a run is open. Attribute values go in the column
`attribute_columns` picks for their registered type.

Theory of operation, and why it is injection-proof: the SQL text is assembled only from
constants in this module (column names from `_BUILTIN_COLUMNS` and `_VALUE_COLUMNS`, operators
from `_OPERATORS`, keywords) and `?` placeholders. Every literal and every custom attribute name
travels in `params`; nothing from the query text is ever formatted into SQL. `to_sql` asserts the
SQL text uses only the characters those constants use.

Semantics match `query_eval` (a property test compares them on random rows and queries): a
comparison with NULL is not true, custom attributes are `EXISTS` subqueries (a run without the
attribute fails every predicate on it), and the order is the one `query_eval.compare_rows`
documents.
"""

from __future__ import annotations

import re
from typing import NamedTuple, assert_never

from raftflow.visibility import limits
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
    In,
    Or,
    OrderBy,
    Predicate,
    Query,
    SortDirection,
    StartsWith,
    Value,
)


class SqlFilter(NamedTuple):
    """Pieces of `SELECT ... FROM runs WHERE <where_sql> ORDER BY <order_sql>`.

    where_sql: a boolean expression over the table `runs` (not aliased); "1" selects all.
               The caller may AND it with its own conditions (namespace, paging), in parentheses.
    params:    values for the `?` placeholders of where_sql, in order.
    order_sql: the ORDER BY terms without the keywords; always ends with `runs.run_id DESC`,
               so the order is total.
    """

    where_sql: str
    params: list[object]
    order_sql: str


_BUILTIN_COLUMNS: dict[BuiltinField, str] = {
    BuiltinField.WORKFLOW_ID: "runs.workflow_id",
    BuiltinField.WORKFLOW_TYPE: "runs.workflow_type",
    BuiltinField.EXECUTION_STATUS: "runs.status",
    BuiltinField.START_TIME: "runs.start_time_ms",
    BuiltinField.CLOSE_TIME: "runs.close_time_ms",
    BuiltinField.TASK_QUEUE: "runs.task_queue",
}
assert set(_BUILTIN_COLUMNS) == set(BuiltinField)

# One column per type, so a value stored under another type reads as NULL (missing).
_VALUE_COLUMNS: dict[AttributeType, str] = {
    AttributeType.KEYWORD: "sa.value_text",
    AttributeType.INT: "sa.value_int",
    AttributeType.DOUBLE: "sa.value_real",
    AttributeType.BOOL: "sa.value_int",
    AttributeType.DATETIME: "sa.value_int",
}
assert set(_VALUE_COLUMNS) == set(AttributeType)

_OPERATORS: dict[CompareOp, str] = {
    CompareOp.EQ: "=", CompareOp.NE: "!=", CompareOp.LT: "<", CompareOp.GT: ">",
    CompareOp.LE: "<=", CompareOp.GE: ">=",
}
assert set(_OPERATORS) == set(CompareOp)

# Every character the constants above and the glue below can produce; no user text fits in it
# by accident because quotes, semicolons and dashes are all outside it.
_SQL_ALPHABET = re.compile(r"[A-Za-z0-9_.(), ?=!<>]*")
_CODE_POINT_MAX = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def to_sql(query: Query) -> SqlFilter:
    """The parameterised SQLite form of `query`; selects what `query_eval.select` selects."""
    params: list[object] = []
    where_sql = "1" if query.where is None else _expr_sql(query.where, params)
    order_sql = _order_sql(query.order_by or DEFAULT_ORDER_BY)
    assert _SQL_ALPHABET.fullmatch(where_sql) and _SQL_ALPHABET.fullmatch(order_sql), where_sql
    assert where_sql.count("?") == len(params) <= limits.SQL_PARAMS_MAX
    return SqlFilter(where_sql=where_sql, params=params, order_sql=order_sql)


def attribute_columns(attribute_type: AttributeType,
                      value: str | int | float | bool) -> tuple[int | None, float | None, str | None]:
    """`(value_int, value_real, value_text)` to store for an attribute of `attribute_type`.

    keyword -> value_text; int and datetime (ms) -> value_int; bool -> value_int as 0 or 1;
    double -> value_real. Storage must write attributes this way for queries to find them.
    """
    match attribute_type:
        case AttributeType.KEYWORD:
            assert isinstance(value, str)
            return None, None, value
        case AttributeType.INT | AttributeType.DATETIME:
            assert isinstance(value, int) and not isinstance(value, bool)
            assert limits.INT_MIN <= value <= limits.INT_MAX
            return value, None, None
        case AttributeType.BOOL:
            assert isinstance(value, bool)
            return int(value), None, None
        case AttributeType.DOUBLE:
            assert isinstance(value, int | float) and not isinstance(value, bool | str)
            return None, float(value), None
        case _:
            assert_never(attribute_type)


def _expr_sql(expr: Expr, params: list[object]) -> str:
    match expr:
        case And(operands=operands):
            return "(" + " AND ".join(_expr_sql(o, params) for o in operands) + ")"
        case Or(operands=operands):
            return "(" + " OR ".join(_expr_sql(o, params) for o in operands) + ")"
        case Compare() | Between() | In() | StartsWith():
            return _predicate_sql(expr, params)
        case _:
            assert_never(expr)


def _predicate_sql(predicate: Predicate, params: list[object]) -> str:
    """A predicate on a builtin column, or an EXISTS over the run's attribute row."""
    match predicate.field:
        case BuiltinRef(field=field):
            return _condition_sql(predicate, _BUILTIN_COLUMNS[field], params)
        case AttributeRef(name=name, type=attribute_type):
            params.append(name)  # the name is a parameter too, never SQL text
            condition = _condition_sql(predicate, _VALUE_COLUMNS[attribute_type], params)
            return ("EXISTS (SELECT 1 FROM search_attributes sa WHERE sa.run_id = runs.run_id"
                    f" AND sa.name = ? AND {condition})")
        case _:
            assert_never(predicate.field)


def _condition_sql(predicate: Predicate, column: str, params: list[object]) -> str:
    match predicate:
        case Compare(op=op, value=value):
            params.append(_param(value))
            return f"{column} {_OPERATORS[op]} ?"
        case Between(low=low, high=high):
            params.extend((_param(low), _param(high)))
            return f"{column} BETWEEN ? AND ?"
        case In(values=values):
            params.extend(_param(v) for v in values)
            return f"{column} IN ({', '.join('?' for _ in values)})"
        case StartsWith(prefix=prefix):
            # A range, not LIKE: LIKE treats % and _ in the prefix as wildcards and folds ASCII
            # case, and length()/substr() stop at NUL. Strings starting with p are exactly those
            # in [p, next_prefix(p)) in code-point order, which is SQLite's UTF-8 byte order.
            upper = _prefix_upper_bound(prefix)
            params.append(prefix)
            if upper is None:
                return f"{column} >= ?"
            params.append(upper)
            return f"({column} >= ? AND {column} < ?)"
        case _:
            assert_never(predicate)


def _param(value: Value) -> object:
    # SQLite has no boolean: bools are stored (and so compared) as 0 and 1.
    return int(value) if isinstance(value, bool) else value


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix`, or None if no
    string is (empty prefix, or only U+10FFFF): drop trailing U+10FFFF, bump the last char."""
    stripped = prefix.rstrip(chr(_CODE_POINT_MAX))
    if not stripped:
        return None
    bumped = ord(stripped[-1]) + 1
    if bumped in _SURROGATES:  # not encodable in UTF-8; the next scalar value is U+E000
        bumped = _SURROGATES.stop
    upper = stripped[:-1] + chr(bumped)
    assert upper > prefix and not upper.startswith(prefix)
    return upper


def _order_sql(order_by: OrderBy) -> str:
    direction = "DESC" if order_by.direction is SortDirection.DESC else "ASC"
    column = _BUILTIN_COLUMNS[order_by.field]
    if order_by.field is BuiltinField.START_TIME:
        return f"{column} {direction}, runs.run_id DESC"
    assert order_by.field is BuiltinField.CLOSE_TIME
    # A missing close time (open run) sorts after every time: last in ASC, first in DESC.
    # `x IS NULL` is 0 or 1; spelled out rather than NULLS LAST, which older SQLite lacks.
    return f"{column} IS NULL {direction}, {column} {direction}, runs.run_id DESC"
