"""Every bound a visibility query is held to, with why it has that value.

A query is user text that becomes parser recursion, an SQL statement and per-row work, so its
size is bounded before any of that starts. Beyond a limit `parse` raises `QueryError` naming it.
Relations between limits are asserted at import.
"""

from __future__ import annotations

# A query is typed by a person or built by a UI; 4 KiB holds a hundred terms, and bounding the
# text first bounds tokenizer time and memory before anything else looks at it.
QUERY_CHARS_MAX = 4096

# Parenthesis nesting. The parser recurses a few frames per level and SQLite nests one
# expression per level (SQLITE_MAX_EXPR_DEPTH defaults to 1000); 32 levels is far more than a
# hand-written filter needs and far below both recursion limits.
QUERY_DEPTH_MAX = 32

# Predicates (comparisons, BETWEEN, IN, STARTS_WITH). Each custom-attribute predicate is one
# correlated EXISTS subquery per candidate row, so the count bounds the cost of one SQL query.
QUERY_TERMS_MAX = 64

# Literal values across the whole query (an IN list counts each value). Each becomes at most
# two SQL parameters (STARTS_WITH binds a lower and an upper bound).
QUERY_VALUES_MAX = 256

# Oldest SQLite builds cap bound parameters at 999 (SQLITE_MAX_VARIABLE_NUMBER before 3.32);
# staying under it keeps `to_sql` valid on any SQLite the storage may link against.
SQL_PARAMS_MAX = 999

# Integers (int attributes, datetimes in ms) must fit SQLite's 64-bit INTEGER.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

# Each predicate binds at most one attribute name plus two parameters per value.
assert QUERY_TERMS_MAX + 2 * QUERY_VALUES_MAX <= SQL_PARAMS_MAX
assert QUERY_TERMS_MAX <= QUERY_VALUES_MAX, "every predicate holds at least one value"
# The parser uses about four Python frames per nesting level; stay well under 1000.
assert QUERY_DEPTH_MAX * 4 < 500
