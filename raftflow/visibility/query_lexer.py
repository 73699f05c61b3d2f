"""Tokenizer for visibility queries: text in, a tuple of positioned tokens out.

Theory of operation: one left-to-right pass with a few anchored regular expressions; every token
keeps the 0-based index of its first character so the parser can name positions in errors.
String literals are decoded here (quotes and escapes removed) and never leave the tokenizer as
raw text, so no later stage can splice user text into anything. Keywords are matched
case-insensitively and carried upper-cased; field names stay exactly as written (they are
case-sensitive, like Temporal's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from raftflow.visibility.query_ast import QueryError


class TokenKind(StrEnum):
    IDENT = "identifier"
    KEYWORD = "keyword"
    STRING = "string"
    NUMBER = "number"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EOF = "end of query"


KEYWORDS = frozenset({"AND", "OR", "BETWEEN", "IN", "STARTS_WITH", "ORDER", "BY", "ASC", "DESC",
                      "TRUE", "FALSE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """One token. `text` is the identifier as written, the keyword upper-cased, the operator in
    canonical spelling, the number as written, or the decoded contents of a string literal."""

    kind: TokenKind
    text: str
    position: int

    def describe(self) -> str:
        """How an error message names this token."""
        match self.kind:
            case TokenKind.EOF:
                return "end of query"
            case TokenKind.STRING:
                return "a string"
            case TokenKind.NUMBER:
                return f"number {self.text}"
            case _:
                return f"'{self.text}'"


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", flags=re.ASCII)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", flags=re.ASCII)
_WORD_CHAR = re.compile(r"[A-Za-z0-9_.]", flags=re.ASCII)
# Longest first, so `<=` is not read as `<` then `=`. `<>` is SQL's spelling of `!=`.
_OPERATORS = (("<=", "<="), (">=", ">="), ("!=", "!="), ("<>", "!="), ("=", "="), ("<", "<"),
              (">", ">"))
_PUNCTUATION = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}
_ESCAPES = {"'": "'", '"': '"', "\\": "\\"}
_WHITESPACE = " \t\r\n"


def tokenize(text: str) -> tuple[Token, ...]:
    """All tokens of `text`, ending with one EOF token at `len(text)`.

    Raises:
        QueryError: on an unterminated string, an unknown escape, a malformed number, a lone
            surrogate or any character that cannot start a token.
    """
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in _WHITESPACE:
            index += 1
        elif char in "'\"":
            value, index_after = _read_string(text, index)
            tokens.append(Token(kind=TokenKind.STRING, text=value, position=index))
            index = index_after
        elif char in _PUNCTUATION:
            tokens.append(Token(kind=_PUNCTUATION[char], text=char, position=index))
            index += 1
        elif (word := IDENTIFIER.match(text, index)) is not None:
            name = word.group()
            if name.upper() in KEYWORDS:
                tokens.append(Token(kind=TokenKind.KEYWORD, text=name.upper(), position=index))
            else:
                tokens.append(Token(kind=TokenKind.IDENT, text=name, position=index))
            index = word.end()
        elif (number := _NUMBER.match(text, index)) is not None:
            if number.end() < len(text) and _WORD_CHAR.match(text, number.end()):
                raise QueryError(index, "malformed number")
            tokens.append(Token(kind=TokenKind.NUMBER, text=number.group(), position=index))
            index = number.end()
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op[0], index)), None)
            if operator is None:
                raise QueryError(index, f"unexpected character {_show_char(char)}")
            tokens.append(Token(kind=TokenKind.OP, text=operator[1], position=index))
            index += len(operator[0])
    tokens.append(Token(kind=TokenKind.EOF, text="", position=len(text)))
    assert all(a.position < b.position for a, b in zip(tokens, tokens[1:], strict=False))
    return tuple(tokens)


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode the string literal opening at `start`; returns (value, index after its end).

    The closing quote is the opening one; inside, that quote doubled (`''`) or a backslash
    escape (`\\'`, `\\"`, `\\\\`) stands for itself. Other backslash escapes are refused rather
    than guessed at, so `'C:\\temp'` fails loudly instead of silently losing a character.
    """
    quote = text[start]
    parts: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == quote:
            if text.startswith(quote, index + 1):
                parts.append(quote)
                index += 2
                continue
            return "".join(parts), index + 1
        if char == "\\":
            if index + 1 == len(text):
                break  # a backslash as the last character escapes nothing: unterminated
            escaped = text[index + 1]
            if escaped not in _ESCAPES:
                raise QueryError(index, "unknown escape in string; write \\\\ for a backslash")
            parts.append(_ESCAPES[escaped])
            index += 2
            continue
        if "\ud800" <= char <= "\udfff":
            raise QueryError(index, f"character {_show_char(char)} is not valid Unicode")
        parts.append(char)
        index += 1
    raise QueryError(start, "unterminated string")


def _show_char(char: str) -> str:
    """A character as an error message shows it: printable ones quoted, others as U+XXXX."""
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"U+{ord(char):04X}"
