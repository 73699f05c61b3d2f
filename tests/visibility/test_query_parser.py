"""Goal: `parse` reads every construct of the visibility language into the tree it means, and
refuses bad input with the exact position and message a user would need.

Method: table-driven. Each accepted query is compared with a hand-built tree; each refused one
with its exact `(position, message)`. Positions are 0-based character indexes into the text.
"""

from __future__ import annotations

import pytest

from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.visibility import limits
from raftflow.visibility.query_ast import (
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
    Query,
    QueryError,
    SortDirection,
    StartsWith,
)
from raftflow.visibility.query_parser import attribute_name_problem, parse
from raftflow.visibility.query_text import render

ATTRIBUTES = {
    "CustomKeyword": AttributeType.KEYWORD,
    "CustomInt": AttributeType.INT,
    "CustomDouble": AttributeType.DOUBLE,
    "CustomBool": AttributeType.BOOL,
    "CustomDatetime": AttributeType.DATETIME,
}
WORKFLOW_ID = BuiltinRef(field=BuiltinField.WORKFLOW_ID)
WORKFLOW_TYPE = BuiltinRef(field=BuiltinField.WORKFLOW_TYPE)
STATUS = BuiltinRef(field=BuiltinField.EXECUTION_STATUS)
START_TIME = BuiltinRef(field=BuiltinField.START_TIME)
CLOSE_TIME = BuiltinRef(field=BuiltinField.CLOSE_TIME)
TASK_QUEUE = BuiltinRef(field=BuiltinField.TASK_QUEUE)
KEYWORD = AttributeRef(name="CustomKeyword", type=AttributeType.KEYWORD)
INT = AttributeRef(name="CustomInt", type=AttributeType.INT)
DOUBLE = AttributeRef(name="CustomDouble", type=AttributeType.DOUBLE)
BOOL = AttributeRef(name="CustomBool", type=AttributeType.BOOL)
DATETIME = AttributeRef(name="CustomDatetime", type=AttributeType.DATETIME)
T_2026_12_06_10 = 1_796_551_200_000  # 2026-12-06T10:00:00Z in ms since the epoch


def where(text: str) -> Expr | None:
    query = parse(text, ATTRIBUTES)
    assert query.order_by is None
    return query.where


def eq(field: BuiltinRef | AttributeRef, value: str | int | float | bool) -> Compare:
    return Compare(field=field, op=CompareOp.EQ, value=value)


A, B, C = eq(WORKFLOW_ID, "a"), eq(WORKFLOW_ID, "b"), eq(WORKFLOW_ID, "c")


@pytest.mark.parametrize("text", ["", "   ", " \t\r\n "])
def test_an_empty_query_selects_everything(text: str) -> None:
    assert parse(text, ATTRIBUTES) == Query(where=None, order_by=None)


@pytest.mark.parametrize(("spelling", "op"), [
    ("=", CompareOp.EQ), ("!=", CompareOp.NE), ("<>", CompareOp.NE), ("<", CompareOp.LT),
    (">", CompareOp.GT), ("<=", CompareOp.LE), (">=", CompareOp.GE),
])
def test_every_comparison_operator(spelling: str, op: CompareOp) -> None:
    assert where(f"CustomInt {spelling} 7") == Compare(field=INT, op=op, value=7)
    assert where(f"CustomInt{spelling}-7") == Compare(field=INT, op=op, value=-7)


def test_between_in_and_starts_with() -> None:
    assert where("CustomInt BETWEEN 1 AND 5") == Between(field=INT, low=1, high=5)
    assert where("WorkflowType IN ('a')") == In(field=WORKFLOW_TYPE, values=("a",))
    assert where("TaskQueue in ('q1','q2' , 'q1')") == In(field=TASK_QUEUE,
                                                          values=("q1", "q2", "q1"))
    assert where("CustomKeyword STARTS_WITH 'pre%_'") == StartsWith(field=KEYWORD, prefix="pre%_")


def test_every_field_and_attribute_type() -> None:
    assert where("WorkflowId = 'w'") == eq(WORKFLOW_ID, "w")
    assert where("ExecutionStatus = 'Running'") == eq(STATUS, "Running")
    assert where("StartTime > '2026-12-06T10:00:00Z'") == Compare(
        field=START_TIME, op=CompareOp.GT, value=T_2026_12_06_10)
    assert where("CloseTime <= '2026-12-06T10:00:00Z'") == Compare(
        field=CLOSE_TIME, op=CompareOp.LE, value=T_2026_12_06_10)
    assert where("CustomKeyword = 'k'") == eq(KEYWORD, "k")
    assert where("CustomDouble = 2") == eq(DOUBLE, 2.0)
    assert where("CustomDouble < -1.5e3") == Compare(field=DOUBLE, op=CompareOp.LT, value=-1500.0)
    assert where("CustomBool = true") == eq(BOOL, True)
    assert where("CustomBool != FALSE") == Compare(field=BOOL, op=CompareOp.NE, value=False)
    assert where("CustomDatetime = '2026-12-06T10:00:00Z'") == eq(DATETIME, T_2026_12_06_10)


def test_and_binds_tighter_than_or() -> None:
    assert where("WorkflowId = 'a' OR WorkflowId = 'b' AND WorkflowId = 'c'") == Or(
        operands=(A, And(operands=(B, C))))
    assert where("WorkflowId = 'a' AND WorkflowId = 'b' OR WorkflowId = 'c'") == Or(
        operands=(And(operands=(A, B)), C))
    assert where("WorkflowId = 'a' AND WorkflowId = 'b' AND WorkflowId = 'c'") == And(
        operands=(A, B, C))


def test_parentheses_group_and_leave_no_node() -> None:
    assert where("(WorkflowId = 'a' OR WorkflowId = 'b') AND WorkflowId = 'c'") == And(
        operands=(Or(operands=(A, B)), C))
    assert where("((WorkflowId = 'a'))") == A
    assert where("WorkflowId = 'a' AND (WorkflowId = 'b' AND WorkflowId = 'c')") == And(
        operands=(A, And(operands=(B, C))))


def test_keywords_are_case_insensitive_and_field_names_are_not() -> None:
    assert parse("WorkflowId = 'a' aNd WorkflowId in ('b') Or CustomKeyword Starts_With 'c' "
                 "order By StartTime desc", ATTRIBUTES) == Query(
        where=Or(operands=(And(operands=(A, In(field=WORKFLOW_ID, values=("b",)))),
                           StartsWith(field=KEYWORD, prefix="c"))),
        order_by=OrderBy(field=BuiltinField.START_TIME, direction=SortDirection.DESC))
    assert where("CustomBool = True") == eq(BOOL, True)
    assert where("CustomInt between 1 and 2") == Between(field=INT, low=1, high=2)
    with pytest.raises(QueryError) as raised:
        parse("workflowid = 'a'", ATTRIBUTES)
    assert (raised.value.position, raised.value.problem) == (
        0, "unknown field 'workflowid'; did you mean 'WorkflowId'?")


def test_status_names_are_normalised() -> None:
    assert where("ExecutionStatus IN ('timedout', 'CONTINUEDASNEW')") == In(
        field=STATUS, values=("TimedOut", "ContinuedAsNew"))


@pytest.mark.parametrize(("literal", "value"), [
    ("'it''s'", "it's"),
    ("'it\\'s'", "it's"),
    ("'back\\\\slash'", "back\\slash"),
    ("'say \"hi\"'", 'say "hi"'),
    ('"double"', "double"),
    ('"say ""hi"""', 'say "hi"'),
    ('"a\\"b"', 'a"b'),
    ("\"it's\"", "it's"),
    ("''", ""),
    ("'é 中 😀 \x00 tab\there'", "é 中 😀 \x00 tab\there"),
    ("'-- /* ; */'", "-- /* ; */"),
])
def test_string_literals_and_escapes(literal: str, value: str) -> None:
    assert where(f"WorkflowId = {literal}") == eq(WORKFLOW_ID, value)


@pytest.mark.parametrize(("literal", "ms"), [
    ("2026-12-06T10:00:00Z", T_2026_12_06_10),
    ("2026-12-06t10:00:00z", T_2026_12_06_10),
    ("2026-12-06T12:00:00+02:00", T_2026_12_06_10),
    ("2026-12-06T05:30:00-04:30", T_2026_12_06_10),
    ("2026-12-06T10:00:00.5Z", T_2026_12_06_10 + 500),
    ("2026-12-06T10:00:00.123Z", T_2026_12_06_10 + 123),
    ("2026-12-06T10:00:00.123000000Z", T_2026_12_06_10 + 123),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.999Z", -1),
    ("2024-02-29T00:00:00Z", 1_709_164_800_000),
])
def test_datetimes_become_utc_milliseconds(literal: str, ms: int) -> None:
    assert where(f"StartTime = '{literal}'") == eq(START_TIME, ms)


def test_order_by() -> None:
    assert parse("ORDER BY CloseTime", ATTRIBUTES) == Query(
        where=None, order_by=OrderBy(field=BuiltinField.CLOSE_TIME, direction=SortDirection.ASC))
    assert parse("WorkflowId = 'a' ORDER BY StartTime ASC", ATTRIBUTES) == Query(
        where=A, order_by=OrderBy(field=BuiltinField.START_TIME, direction=SortDirection.ASC))


_TOO_DEEP = "(" * (limits.QUERY_DEPTH_MAX + 1) + "WorkflowId = 'a'" + ")" * (
    limits.QUERY_DEPTH_MAX + 1)
_TOO_MANY_TERMS = " OR ".join(["CustomInt = 1"] * (limits.QUERY_TERMS_MAX + 1))
_TOO_MANY_VALUES = "CustomInt IN (" + ", ".join(["1"] * (limits.QUERY_VALUES_MAX + 1)) + ")"

ERRORS = [
    # (query, position, message)
    ("Foo = 'x'", 0, "unknown field 'Foo'"),
    ("WorkflowId = ", 13, "expected a value after '='"),
    ("WorkflowId = AND", 13, "expected a value after '='"),
    ("WorkflowId = Running", 13, "expected a value after '=' (strings need quotes)"),
    ("WorkflowId = 'abc", 13, "unterminated string"),
    ("WorkflowId = 'abc\\", 13, "unterminated string"),
    ("WorkflowId = 'a\\nb'", 15, "unknown escape in string; write \\\\ for a backslash"),
    ("WorkflowId = 'a' 'b'", 17, "unexpected a string; expected AND, OR, ORDER BY or end of query"),
    ("WorkflowId = 'a' ORDER BY StartTime DESC x", 41, "unexpected 'x'; expected end of query"),
    ("(WorkflowId = 'a'", 17, "expected ')' to close the '(' at 0"),
    ("WorkflowId = 'a')", 16, "unexpected ')'; expected AND, OR, ORDER BY or end of query"),
    ("()", 1, "expected a field name or '(', found ')'"),
    ("WorkflowId = 'a' AND", 20, "expected a field name or '(', found end of query"),
    ("WorkflowId IN ()", 15, "IN needs at least one value"),
    ("WorkflowId IN 'a'", 14, "expected '(' after IN"),
    ("WorkflowId IN ('a' 'b')", 19, "expected ',' or ')' in the IN list"),
    ("WorkflowId IN ('a',)", 19, "expected a value after ','"),
    ("ExecutionStatus = 'Runing'", 18, "unknown execution status 'Runing'; expected one of "
     "Running, Completed, Failed, Canceled, Terminated, TimedOut, ContinuedAsNew"),
    ("ExecutionStatus > 'Running'", 16, "ExecutionStatus supports =, != and IN only"),
    ("ExecutionStatus STARTS_WITH 'R'", 16,
     "ExecutionStatus supports =, != and IN only"),
    ("StartTime = 'abc'", 12,
     "StartTime is a datetime; expected an RFC 3339 datetime such as '2026-12-06T10:00:00Z'"),
    ("StartTime = 5", 12,
     "StartTime is a datetime; expected an RFC 3339 datetime string, found number 5"),
    ("CloseTime < '2026-13-01T00:00:00Z'", 12,
     "CloseTime is a datetime; not a valid datetime: month must be in 1..12"),
    ("StartTime = '2026-12-06T10:00:00.0001Z'", 12, "StartTime is a datetime; datetimes are "
     "stored in milliseconds; drop the sub-millisecond digits"),
    ("StartTime = '2026-12-06 10:00:00Z'", 12,
     "StartTime is a datetime; expected an RFC 3339 datetime such as '2026-12-06T10:00:00Z'"),
    ("CustomInt = 'x'", 12, "CustomInt is an int; expected an integer, found a string"),
    ("CustomInt = 1.5", 12, "CustomInt is an int; expected an integer, found number 1.5"),
    ("CustomInt = 9223372036854775808", 12, "integer does not fit in 64 bits"),
    ("CustomDouble = 1e999", 15, "number is too large for a double"),
    ("CustomKeyword = 3", 16, "CustomKeyword is a keyword; expected a string, found number 3"),
    ("CustomBool = 'true'", 13, "CustomBool is a bool; expected true or false"),
    ("CustomBool < true", 11, "CustomBool is a bool; only = and != apply"),
    ("CustomBool IN (true)", 11, "CustomBool is a bool; only = and != apply"),
    ("StartTime STARTS_WITH '2026'", 10,
     "STARTS_WITH needs a keyword field; StartTime is a datetime"),
    ("CustomInt STARTS_WITH '1'", 10, "STARTS_WITH needs a keyword field; CustomInt is an int"),
    ("CustomInt BETWEEN 1 OR 2", 20, "expected AND in BETWEEN ... AND ..."),
    ("WorkflowId 'a'", 11, "expected an operator after WorkflowId, found a string"),
    ("WorkflowId = 'a'; DROP TABLE runs", 16, "unexpected character ';'"),
    ("WorkflowId = 'a' -- comment", 17, "unexpected character '-'"),
    ("CustomInt = 12abc", 12, "malformed number"),
    ("WorkflowId = 'a\ud800'", 15, "character U+D800 is not valid Unicode"),
    ("ORDER StartTime", 6, "expected BY after ORDER"),
    ("ORDER BY WorkflowId", 9, "ORDER BY supports StartTime or CloseTime only"),
    ("ORDER BY", 8, "ORDER BY supports StartTime or CloseTime only"),
    ("x" * (limits.QUERY_CHARS_MAX + 1), limits.QUERY_CHARS_MAX,
     f"query is longer than {limits.QUERY_CHARS_MAX} characters"),
    (_TOO_DEEP, limits.QUERY_DEPTH_MAX,
     f"parentheses nested deeper than {limits.QUERY_DEPTH_MAX}"),
    (_TOO_MANY_TERMS, len(" OR ".join(["CustomInt = 1"] * limits.QUERY_TERMS_MAX)) + 4,
     f"query has more than {limits.QUERY_TERMS_MAX} conditions"),
    (_TOO_MANY_VALUES, len(_TOO_MANY_VALUES) - 2,
     f"query has more than {limits.QUERY_VALUES_MAX} values"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS,
                         ids=[f"{i}:{e[2][:40]}" for i, e in enumerate(ERRORS)])
def test_bad_queries_name_position_and_problem(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse(text, ATTRIBUTES)
    assert (raised.value.position, raised.value.problem) == (position, message)


def test_limits_are_inclusive() -> None:
    at_chars_max = "WorkflowId = '" + "x" * (limits.QUERY_CHARS_MAX - 15) + "'"
    assert len(at_chars_max) == limits.QUERY_CHARS_MAX
    assert where(at_chars_max) == eq(WORKFLOW_ID, "x" * (limits.QUERY_CHARS_MAX - 15))
    depth = limits.QUERY_DEPTH_MAX
    assert where("(" * depth + "WorkflowId = 'a'" + ")" * depth) == A
    assert where(" OR ".join(["CustomInt = 1"] * limits.QUERY_TERMS_MAX)) is not None
    values = ", ".join(["1"] * limits.QUERY_VALUES_MAX)
    assert where(f"CustomInt IN ({values})") is not None


def test_query_error_is_an_invalid_argument_naming_the_position() -> None:
    with pytest.raises(QueryError) as raised:
        parse("WorkflowId = ", ATTRIBUTES)
    error = raised.value
    assert isinstance(error, RaftflowError)
    assert error.code is ErrorCode.INVALID_ARGUMENT and error.http_status == 400
    assert error.message == "expected a value after '=' (at position 13)"
    assert error.field == "query"
    assert repr(error) == "QueryError(position=13, message=\"expected a value after '='\")"


def test_an_attribute_of_another_namespace_is_unknown() -> None:
    with pytest.raises(QueryError) as raised:
        parse("CustomInt = 1", {"CustomKeyword": AttributeType.KEYWORD})
    assert (raised.value.position, raised.value.problem) == (0, "unknown field 'CustomInt'")


@pytest.mark.parametrize(("name", "problem"), [
    ("CustomerId", None),
    ("_x9", None),
    ("9lives", "must be letters, digits and '_', not starting with a digit"),
    ("my-attr", "must be letters, digits and '_', not starting with a digit"),
    ("Order", "'Order' is a query keyword"),
    ("starts_with", "'starts_with' is a query keyword"),
    ("StartTime", "'StartTime' is a builtin field"),
])
def test_attribute_name_problem(name: str, problem: str | None) -> None:
    assert attribute_name_problem(name) == problem


@pytest.mark.parametrize(("text", "canonical"), [
    ("WorkflowId = 'a' or WorkflowId = 'b' and WorkflowId = 'c'",
     "WorkflowId = 'a' OR WorkflowId = 'b' AND WorkflowId = 'c'"),
    ("(WorkflowId = 'a' or WorkflowId = 'b') and WorkflowId = 'c'",
     "(WorkflowId = 'a' OR WorkflowId = 'b') AND WorkflowId = 'c'"),
    ("WorkflowId = 'a' and (WorkflowId = 'b' and WorkflowId = 'c')",
     "WorkflowId = 'a' AND (WorkflowId = 'b' AND WorkflowId = 'c')"),
    ("WorkflowId = \"it's \\\\\"", "WorkflowId = 'it''s \\\\'"),
    ("StartTime >= '2026-12-06T12:00:00+02:00' order by closetime",
     None),  # a field name is case-sensitive even after ORDER BY: refused, see below
    ("CustomDouble <> 1 ORDER BY CloseTime", "CustomDouble != 1.0 ORDER BY CloseTime ASC"),
    ("CustomBool = TRUE", "CustomBool = true"),
    ("StartTime >= '2026-12-06T12:00:00+02:00'", "StartTime >= '2026-12-06T10:00:00.000Z'"),
])
def test_render_writes_canonical_text_that_parses_back(text: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(QueryError):
            parse(text, ATTRIBUTES)
        return
    query = parse(text, ATTRIBUTES)
    assert render(query) == canonical
    assert parse(canonical, ATTRIBUTES) == query
