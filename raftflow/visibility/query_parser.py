"""Parser for visibility queries (Temporal's list filter): text -> typed `Query`.

Theory of operation: `tokenize` first (bounded by QUERY_CHARS_MAX), then recursive descent over
this grammar, keywords case-insensitive:

    query     := [or_expr] [ORDER BY (StartTime | CloseTime) [ASC | DESC]] EOF
    or_expr   := and_expr (OR and_expr)*          -- AND binds tighter than OR
    and_expr  := primary (AND primary)*
    primary   := '(' or_expr ')' | predicate
    predicate := FIELD op value | FIELD BETWEEN value AND value
               | FIELD IN '(' value (',' value)* ')' | FIELD STARTS_WITH string

Every field is resolved (builtin first, then the namespace's registered attributes) and every
literal converted to its field's type as soon as it is read, so a type error names the literal's
position and the tree that comes out needs no further checking. Parentheses only group; they
leave no node, so `(a AND b) AND c` and `a AND b AND c` differ only in nesting of And nodes.
Nothing here evaluates user text: literals become typed values, names become enum members or
registered attribute names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

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
    QueryError,
    SortDirection,
    StartsWith,
    Value,
)
from raftflow.visibility.query_lexer import IDENTIFIER, KEYWORDS, Token, TokenKind, tokenize
from raftflow.visibility.rfc3339 import parse_rfc3339_ms

__all__ = ["AttributeType", "QueryError", "attribute_name_problem", "parse"]

_INTEGER = re.compile(r"-?[0-9]+", flags=re.ASCII)
_BUILTIN_BY_NAME = {field.value: field for field in BuiltinField}
_STATUS_BY_FOLDED_NAME = {status.value.casefold(): status for status in ExecutionStatus}
_STATUS_NAMES = ", ".join(status.value for status in ExecutionStatus)
# Statuses are names, not an order: only equality makes sense on them.
_STATUS_OPS = frozenset({CompareOp.EQ, CompareOp.NE})
_BOOL_OPS = frozenset({CompareOp.EQ, CompareOp.NE})


def parse(text: str, attributes: Mapping[str, AttributeType]) -> Query:
    """Parse `text` against a namespace's registered search attributes.

    An empty or all-blank query selects everything: `Query(where=None, order_by=None)`.

    Raises:
        QueryError: naming the 0-based character position and the problem; the query is then
            not run at all.
    """
    if len(text) > limits.QUERY_CHARS_MAX:
        raise QueryError(limits.QUERY_CHARS_MAX,
                         f"query is longer than {limits.QUERY_CHARS_MAX} characters")
    return _Parser(tokenize(text), attributes).query()


def attribute_name_problem(name: str) -> str | None:
    """Why `name` cannot be registered as a search attribute, or None if it can.

    The registry should call this on registration: a name that is not an identifier, is a
    keyword or shadows a builtin field could never be written in a query.
    """
    if IDENTIFIER.fullmatch(name) is None:
        return "must be letters, digits and '_', not starting with a digit"
    if name.upper() in KEYWORDS:
        return f"'{name}' is a query keyword"
    if name in _BUILTIN_BY_NAME:
        return f"'{name}' is a builtin field"
    return None


class _Parser:
    """One parse: a cursor over the tokens plus the counters the limits are checked against."""

    def __init__(self, tokens: tuple[Token, ...], attributes: Mapping[str, AttributeType]) -> None:
        assert tokens and tokens[-1].kind is TokenKind.EOF
        self._tokens = tokens
        self._index = 0
        self._attributes = attributes
        self._depth = 0
        self._terms = 0
        self._values = 0

    def query(self) -> Query:
        where = None
        if not self._at(TokenKind.EOF) and not self._at_keyword("ORDER"):
            where = self._or_expr()
        order_by = self._order_by() if self._at_keyword("ORDER") else None
        token = self._peek()
        if token.kind is not TokenKind.EOF:
            expected = "end of query" if order_by else "AND, OR, ORDER BY or end of query"
            raise QueryError(token.position, f"unexpected {token.describe()}; expected {expected}")
        assert self._depth == 0
        return Query(where=where, order_by=order_by)

    def _or_expr(self) -> Expr:
        operands = [self._and_expr()]
        while self._at_keyword("OR"):
            self._advance()
            operands.append(self._and_expr())
        return operands[0] if len(operands) == 1 else Or(operands=tuple(operands))

    def _and_expr(self) -> Expr:
        operands = [self._primary()]
        while self._at_keyword("AND"):
            self._advance()
            operands.append(self._primary())
        return operands[0] if len(operands) == 1 else And(operands=tuple(operands))

    def _primary(self) -> Expr:
        token = self._peek()
        if token.kind is TokenKind.LPAREN:
            self._depth += 1
            if self._depth > limits.QUERY_DEPTH_MAX:
                raise QueryError(token.position,
                                 f"parentheses nested deeper than {limits.QUERY_DEPTH_MAX}")
            self._advance()
            expr = self._or_expr()
            self._expect(TokenKind.RPAREN, f"expected ')' to close the '(' at {token.position}")
            self._depth -= 1
            return expr
        if token.kind is TokenKind.IDENT:
            return self._predicate()
        raise QueryError(token.position, f"expected a field name or '(', found {token.describe()}")

    def _predicate(self) -> Expr:
        name_token = self._advance()
        field = self._resolve(name_token)
        self._terms += 1
        if self._terms > limits.QUERY_TERMS_MAX:
            raise QueryError(name_token.position,
                             f"query has more than {limits.QUERY_TERMS_MAX} conditions")
        op_token = self._advance()
        if op_token.kind is TokenKind.OP:
            op = CompareOp(op_token.text)
            self._check_operator(field, op_token, op)
            return Compare(field=field, op=op, value=self._value(field, f"'{op_token.text}'"))
        if op_token.kind is TokenKind.KEYWORD and op_token.text in ("BETWEEN", "IN"):
            self._check_operator(field, op_token, None)
            if op_token.text == "BETWEEN":
                low = self._value(field, "BETWEEN")
                if not self._at_keyword("AND"):
                    raise QueryError(self._peek().position, "expected AND in BETWEEN ... AND ...")
                self._advance()
                return Between(field=field, low=low, high=self._value(field, "AND"))
            return In(field=field, values=self._in_list(field))
        if op_token.kind is TokenKind.KEYWORD and op_token.text == "STARTS_WITH":
            if _is_status(field):
                raise QueryError(op_token.position, "ExecutionStatus supports =, != and IN only")
            if field.type is not AttributeType.KEYWORD:
                raise QueryError(op_token.position,
                                 f"STARTS_WITH needs a keyword field; {field.name} is {_a(field)}")
            prefix = self._value(field, "STARTS_WITH")
            assert isinstance(prefix, str)
            return StartsWith(field=field, prefix=prefix)
        raise QueryError(op_token.position,
                         f"expected an operator after {field.name}, found {op_token.describe()}")

    def _in_list(self, field: FieldRef) -> tuple[Value, ...]:
        self._expect(TokenKind.LPAREN, "expected '(' after IN")
        if self._at(TokenKind.RPAREN):
            raise QueryError(self._peek().position, "IN needs at least one value")
        values = [self._value(field, "'('")]
        while self._at(TokenKind.COMMA):
            self._advance()
            values.append(self._value(field, "','"))
        self._expect(TokenKind.RPAREN, "expected ',' or ')' in the IN list")
        return tuple(values)

    def _order_by(self) -> OrderBy:
        self._advance()
        self._expect_keyword("BY", "expected BY after ORDER")
        token = self._advance()
        sortable = " or ".join(field.value for field in SORTABLE_FIELDS)
        if token.kind is not TokenKind.IDENT or token.text not in SORTABLE_FIELDS:
            raise QueryError(token.position, f"ORDER BY supports {sortable} only")
        direction = SortDirection.ASC  # SQL's default when no direction is written
        if self._at_keyword("ASC") or self._at_keyword("DESC"):
            direction = SortDirection(self._advance().text)
        return OrderBy(field=BuiltinField(token.text), direction=direction)

    def _resolve(self, token: Token) -> FieldRef:
        name = token.text
        builtin = _BUILTIN_BY_NAME.get(name)
        if builtin is not None:
            return BuiltinRef(field=builtin)
        attribute_type = self._attributes.get(name)
        if attribute_type is not None:
            return AttributeRef(name=name, type=AttributeType(attribute_type))
        known = [field.value for field in BuiltinField] + sorted(self._attributes)
        close = [k for k in known if k.casefold() == name.casefold()]
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise QueryError(token.position, f"unknown field '{name}'{hint}")

    def _check_operator(self, field: FieldRef, token: Token, op: CompareOp | None) -> None:
        """Refuse operators that have no meaning for the field's type (op None: BETWEEN/IN)."""
        if field.type is AttributeType.BOOL and op not in _BOOL_OPS:
            raise QueryError(token.position, f"{field.name} is a bool; only = and != apply")
        if _is_status(field) and op not in _STATUS_OPS and token.text != "IN":
            raise QueryError(token.position, "ExecutionStatus supports =, != and IN only")

    def _value(self, field: FieldRef, after: str) -> Value:
        token = self._advance()
        is_literal = token.kind in (TokenKind.STRING, TokenKind.NUMBER) or (
            token.kind is TokenKind.KEYWORD and token.text in ("TRUE", "FALSE"))
        if not is_literal:
            hint = " (strings need quotes)" if token.kind is TokenKind.IDENT else ""
            raise QueryError(token.position, f"expected a value after {after}{hint}")
        self._values += 1
        if self._values > limits.QUERY_VALUES_MAX:
            raise QueryError(token.position,
                             f"query has more than {limits.QUERY_VALUES_MAX} values")
        return _convert(field, token)

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind is not TokenKind.EOF:  # EOF is sticky: errors point at the end
            self._index += 1
        return token

    def _at(self, kind: TokenKind) -> bool:
        return self._peek().kind is kind

    def _at_keyword(self, keyword: str) -> bool:
        assert keyword in KEYWORDS
        token = self._peek()
        return token.kind is TokenKind.KEYWORD and token.text == keyword

    def _expect(self, kind: TokenKind, message: str) -> Token:
        token = self._peek()
        if token.kind is not kind:
            raise QueryError(token.position, message)
        return self._advance()

    def _expect_keyword(self, keyword: str, message: str) -> Token:
        if not self._at_keyword(keyword):
            raise QueryError(self._peek().position, message)
        return self._advance()


def _is_status(field: FieldRef) -> bool:
    return isinstance(field, BuiltinRef) and field.field is BuiltinField.EXECUTION_STATUS


def _convert(field: FieldRef, token: Token) -> Value:
    """The literal `token` as a value of `field`'s type, or a QueryError at the literal."""
    position, name = token.position, field.name
    expected_kind = TokenKind.NUMBER if field.type in (AttributeType.INT,
                                                       AttributeType.DOUBLE) else TokenKind.STRING
    if field.type is AttributeType.BOOL:
        if token.kind is not TokenKind.KEYWORD:
            raise QueryError(position, f"{name} is a bool; expected true or false")
        return token.text == "TRUE"
    if token.kind is not expected_kind:
        wanted = {AttributeType.KEYWORD: "a string", AttributeType.INT: "an integer",
                  AttributeType.DOUBLE: "a number",
                  AttributeType.DATETIME: "an RFC 3339 datetime string"}[field.type]
        raise QueryError(position, f"{name} is {_a(field)}; expected {wanted}, "
                                   f"found {token.describe()}")
    match field.type:
        case AttributeType.KEYWORD if _is_status(field):
            status = _STATUS_BY_FOLDED_NAME.get(token.text.casefold())
            if status is None:
                raise QueryError(position, f"unknown execution status '{token.text}'; "
                                           f"expected one of {_STATUS_NAMES}")
            return status.value
        case AttributeType.KEYWORD:
            return token.text
        case AttributeType.INT:
            if _INTEGER.fullmatch(token.text) is None:
                raise QueryError(position, f"{name} is an int; expected an integer, "
                                           f"found {token.describe()}")
            number = int(token.text)
            if not limits.INT_MIN <= number <= limits.INT_MAX:
                raise QueryError(position, "integer does not fit in 64 bits")
            return number
        case AttributeType.DOUBLE:
            real = float(token.text)
            if not math.isfinite(real):
                raise QueryError(position, "number is too large for a double")
            return real
        case _:
            assert field.type is AttributeType.DATETIME
            try:
                return parse_rfc3339_ms(token.text)
            except ValueError as err:
                raise QueryError(position, f"{name} is a datetime; {err}") from None


def _a(field: FieldRef) -> str:
    return f"an {field.type}" if field.type is AttributeType.INT else f"a {field.type}"
