"""The typed syntax tree of a visibility query, and the error a bad query raises.

Theory of operation: the parser resolves every field name and converts every literal while it
parses, so a tree that exists is already valid: each field reference carries its type, each value
already has that type's Python form (keyword `str`, int `int`, double `float`, bool `bool`,
datetime `int` milliseconds since the epoch, UTC). The evaluator and the SQL renderer therefore
never see text and never re-validate; they only `assert` what the constructors already checked.

Nodes are frozen so a parsed query can be cached and shared between the in-memory evaluator and
the SQL back end without either changing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from raftflow.protocol.errors import ErrorCode, RaftflowError

# Defined with the other search attribute wire types; the registry and the shard core use it too.
from raftflow.protocol.search_attributes import AttributeType as AttributeType


class BuiltinField(StrEnum):
    """Fields every run has; the value is the name used in query text (Temporal's names)."""

    WORKFLOW_ID = "WorkflowId"
    WORKFLOW_TYPE = "WorkflowType"
    EXECUTION_STATUS = "ExecutionStatus"
    START_TIME = "StartTime"
    CLOSE_TIME = "CloseTime"
    TASK_QUEUE = "TaskQueue"


class ExecutionStatus(StrEnum):
    """Run statuses as the API names them; storage keeps exactly these strings."""

    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"
    TIMED_OUT = "TimedOut"
    CONTINUED_AS_NEW = "ContinuedAsNew"


# ExecutionStatus is a keyword whose values are restricted to `ExecutionStatus` names.
BUILTIN_FIELD_TYPES: dict[BuiltinField, AttributeType] = {
    BuiltinField.WORKFLOW_ID: AttributeType.KEYWORD,
    BuiltinField.WORKFLOW_TYPE: AttributeType.KEYWORD,
    BuiltinField.EXECUTION_STATUS: AttributeType.KEYWORD,
    BuiltinField.START_TIME: AttributeType.DATETIME,
    BuiltinField.CLOSE_TIME: AttributeType.DATETIME,
    BuiltinField.TASK_QUEUE: AttributeType.KEYWORD,
}
assert set(BUILTIN_FIELD_TYPES) == set(BuiltinField)

# The only fields a query may sort by: both are indexed columns of every run.
SORTABLE_FIELDS = (BuiltinField.START_TIME, BuiltinField.CLOSE_TIME)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltinRef:
    """A reference to a builtin field."""

    field: BuiltinField

    @property
    def type(self) -> AttributeType:
        return BUILTIN_FIELD_TYPES[self.field]

    @property
    def name(self) -> str:
        return self.field.value


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeRef:
    """A reference to a custom search attribute, with the type its namespace registered."""

    name: str
    type: AttributeType


FieldRef = BuiltinRef | AttributeRef

# Python form of a literal after conversion to its field's type (datetimes are int ms).
Value = str | int | float | bool


class CompareOp(StrEnum):
    """Binary comparison operators; the value is the canonical spelling in query text."""

    EQ = "="
    NE = "!="
    LT = "<"
    GT = ">"
    LE = "<="
    GE = ">="


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    """`field <op> value`."""

    field: FieldRef
    op: CompareOp
    value: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class Between:
    """`field BETWEEN low AND high`, inclusive at both ends as in SQL."""

    field: FieldRef
    low: Value
    high: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class In:
    """`field IN (v1, v2, ...)`; never empty (the parser refuses `IN ()`)."""

    field: FieldRef
    values: tuple[Value, ...]

    def __post_init__(self) -> None:
        assert self.values, "IN with no values"


@dataclass(frozen=True, slots=True, kw_only=True)
class StartsWith:
    """`field STARTS_WITH 'prefix'`; keyword fields only."""

    field: FieldRef
    prefix: str

    def __post_init__(self) -> None:
        assert self.field.type is AttributeType.KEYWORD


@dataclass(frozen=True, slots=True, kw_only=True)
class And:
    """All operands hold. N-ary: `a AND b AND c` is one node with three operands."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        assert len(self.operands) >= 2, "And needs at least two operands"


@dataclass(frozen=True, slots=True, kw_only=True)
class Or:
    """Any operand holds. N-ary like `And`."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        assert len(self.operands) >= 2, "Or needs at least two operands"


Predicate = Compare | Between | In | StartsWith
Expr = Predicate | And | Or


class SortDirection(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderBy:
    """`ORDER BY field [ASC|DESC]`; ties are always broken by run id, descending.

    A run with no value (CloseTime of a running workflow) sorts as if its value were larger than
    any time: last in ASC, first in DESC. A running workflow will close after every closed one,
    so "most recently closed first" lists the open ones on top.
    """

    field: BuiltinField
    direction: SortDirection

    def __post_init__(self) -> None:
        assert self.field in SORTABLE_FIELDS


# What a query sorts by when it has no ORDER BY: newest started first (Temporal's list order).
DEFAULT_ORDER_BY = OrderBy(field=BuiltinField.START_TIME, direction=SortDirection.DESC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """A parsed query. `where=None` selects every run; `order_by=None` means DEFAULT_ORDER_BY."""

    where: Expr | None
    order_by: OrderBy | None


class QueryError(RaftflowError):
    """A query the parser refuses: `position` is the 0-based character index of the problem.

    It is an `invalid_argument` RaftflowError so the API maps it to HTTP 400 with no extra code.
    """

    def __init__(self, position: int, message: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, f"{message} (at position {position})",
                         field="query")
        self.position = position
        self.problem = message

    def __repr__(self) -> str:
        return f"QueryError(position={self.position}, message={self.problem!r})"
