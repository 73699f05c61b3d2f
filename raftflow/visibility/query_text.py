"""Render a `Query` back to query text: `parse(render(q), attributes) == q`.

Why it exists: tests generate trees and need text to feed the parser (the round trip checks
both), and a server can log or echo a normalised form of what it ran. Output is canonical:
keywords upper-case, single-quoted strings with `''` and `\\\\` escaped, datetimes in UTC with
milliseconds, doubles in `repr` form (which reads back to the same float). Parentheses are
written only where the parser needs them to rebuild the same tree: around an Or inside an And,
and around an And or Or nested directly in a node of its own kind (the parser would flatten it).
"""

from __future__ import annotations

from typing import assert_never

from raftflow.visibility.query_ast import (
    And,
    AttributeType,
    Between,
    Compare,
    Expr,
    FieldRef,
    In,
    Or,
    Query,
    StartsWith,
    Value,
)
from raftflow.visibility.rfc3339 import format_rfc3339_ms


def render(query: Query) -> str:
    """Canonical query text for `query`; the empty string for a query that selects all."""
    parts = []
    if query.where is not None:
        parts.append(render_expr(query.where))
    if query.order_by is not None:
        parts.append(f"ORDER BY {query.order_by.field.value} {query.order_by.direction.value}")
    return " ".join(parts)


def render_expr(expr: Expr) -> str:
    match expr:
        case Compare(field=field, op=op, value=value):
            return f"{field.name} {op.value} {render_value(field, value)}"
        case Between(field=field, low=low, high=high):
            return (f"{field.name} BETWEEN {render_value(field, low)} "
                    f"AND {render_value(field, high)}")
        case In(field=field, values=values):
            return f"{field.name} IN ({', '.join(render_value(field, v) for v in values)})"
        case StartsWith(field=field, prefix=prefix):
            return f"{field.name} STARTS_WITH {_quote(prefix)}"
        case And(operands=operands):
            return " AND ".join(
                f"({render_expr(o)})" if isinstance(o, And | Or) else render_expr(o)
                for o in operands)
        case Or(operands=operands):
            return " OR ".join(
                f"({render_expr(o)})" if isinstance(o, Or) else render_expr(o) for o in operands)
        case _:
            assert_never(expr)


def render_value(field: FieldRef, value: Value) -> str:
    """A literal of `field`'s type as the parser reads it back to `value`."""
    match field.type:
        case AttributeType.KEYWORD:
            assert isinstance(value, str)
            return _quote(value)
        case AttributeType.INT:
            assert isinstance(value, int) and not isinstance(value, bool)
            return str(value)
        case AttributeType.DOUBLE:
            assert isinstance(value, float)
            return repr(value)
        case AttributeType.BOOL:
            assert isinstance(value, bool)
            return "true" if value else "false"
        case AttributeType.DATETIME:
            assert isinstance(value, int) and not isinstance(value, bool)
            return _quote(format_rfc3339_ms(value))
        case _:
            assert_never(field.type)


def _quote(text: str) -> str:
    # Inside a string a backslash starts an escape, so it is doubled; a quote is doubled SQL-style.
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
