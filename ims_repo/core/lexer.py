"""Split SQL text into the pieces the loader must tell apart.

A named statement is written for psql: parameters are ``:name``, and ``%`` is an ordinary
character. To turn it into a psycopg query we must find the ``:name`` parameters (and the
``{slot}`` places that ``find()`` fills from a whitelist) while leaving alone everything
that only looks like one: string literals (``'a:b'``, ``E'\\''``), quoted identifiers,
``$$`` bodies, comments and ``::`` casts. This module does only that, with no I/O.

Where those start and end follows PostgreSQL's scanner (``scan.l``), and the tests
compare the two on generated SQL (``tests/test_lexer_properties.py``, with ``pglast``).
``:name`` is psql's rule, kept narrower: ASCII names, never right after a word (``a:b``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """What a token is; only PARAM and SLOT are rewritten by the loader."""

    TEXT = "text"
    STRING = "string"
    QUOTED_IDENTIFIER = "quoted identifier"
    DOLLAR_QUOTED = "dollar-quoted string"
    COMMENT = "comment"
    CAST = "cast"
    PARAM = "parameter"
    SLOT = "slot"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    line: int  # 1-based line of the token's first character within the lexed text

    @property
    def name(self) -> str:
        """The parameter or slot name (``:user_id`` → ``user_id``, ``{filters}`` → ``filters``)."""
        return self.text.strip(":{}")


class LexError(ValueError):
    """Unterminated literal or comment; ``line`` is where it starts."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PARAM = re.compile(rf":{_NAME}")
_SLOT = re.compile(rf"\{{{_NAME}\}}")
# As PostgreSQL's scanner (scan.l) reads them: every non-ASCII character is a letter of
# an identifier or a dollar-quote tag (it works on UTF-8 bytes, and any byte >= 0x80 is).
_NON_ASCII = "\u0080-\U0010ffff"
_DOLLAR_TAG = re.compile(rf"\$(?:[A-Za-z_{_NON_ASCII}][A-Za-z0-9_{_NON_ASCII}]*)?\$")
_IDENTIFIER_CHAR = re.compile(rf"[A-Za-z0-9_${_NON_ASCII}]")
_LINE_END = re.compile(r"[\n\r]")  # a -- comment ends at either, as in PostgreSQL


def tokenize(sql: str) -> list[Token]:
    """Return the tokens of ``sql``; concatenating their texts gives ``sql`` back."""
    tokens: list[Token] = []
    text_start = 0
    word_start = 0  # where a word may start: after a literal or comment, not inside it
    pos = 0
    line = 1
    text_line = 1

    def flush_text(end: int) -> None:
        if end > text_start:
            tokens.append(Token(Kind.TEXT, sql[text_start:end], text_line))

    while pos < len(sql):
        char = sql[pos]
        found = _special_token(sql, pos, line, word_start)
        if found is None:
            if char == "\n":
                line += 1
            pos += 1
            continue
        kind, end = found
        token_start = pos
        flush_text(pos)
        token_text = sql[pos:end]
        tokens.append(Token(kind, token_text, line))
        line += token_text.count("\n")
        pos = text_start = end
        word_start = token_start + 1 if kind is Kind.PARAM else end  # `:a` ends in a word
        text_line = line
    flush_text(len(sql))
    return tokens


def _special_token(sql: str, pos: int, line: int, word_start: int) -> tuple[Kind, int] | None:
    """The kind and end of a non-TEXT token starting at ``pos``, if one starts there;
    an identifier before ``pos`` can start no earlier than ``word_start``."""
    char = sql[pos]
    pair = sql[pos : pos + 2]
    if pair == "--":
        end = _LINE_END.search(sql, pos)
        return Kind.COMMENT, len(sql) if end is None else end.start()
    if pair == "/*":
        return Kind.COMMENT, _block_comment_end(sql, pos, line)
    if pair == "::":
        return Kind.CAST, pos + 2
    if char == "'":
        escapes = (
            pos > word_start
            and sql[pos - 1] in "eE"
            and not _is_word_before(sql, pos - 1, word_start)
        )
        return Kind.STRING, _quoted_end(sql, pos, "'", line, backslash_escapes=escapes)
    if char == '"':
        return Kind.QUOTED_IDENTIFIER, _quoted_end(sql, pos, '"', line, backslash_escapes=False)
    if char == "$" and not _is_word_before(sql, pos, word_start):
        tag = _DOLLAR_TAG.match(sql, pos)
        if tag:
            close = sql.find(tag.group(), tag.end())
            if close == -1:
                raise LexError(f"unterminated dollar-quoted string {tag.group()}", line)
            return Kind.DOLLAR_QUOTED, close + len(tag.group())
    if char == ":" and not _is_word_before(sql, pos, word_start):
        param = _PARAM.match(sql, pos)
        if param:
            return Kind.PARAM, param.end()
    if char == "{":
        slot = _SLOT.match(sql, pos)
        if slot:
            return Kind.SLOT, slot.end()
    return None


def _is_word_before(sql: str, pos: int, word_start: int) -> bool:
    """True when ``sql[pos]`` continues an identifier (``E'..'`` vs ``nice'``, ``a$1``).

    Only plain text (and a parameter's name) counts: the ``$`` closing ``$$…$$`` or the
    quote closing ``'…'`` ends a token, so ``$$a$$$$b$$`` is two literals, as
    PostgreSQL's scanner reads it.
    """
    return pos > word_start and bool(_IDENTIFIER_CHAR.match(sql[pos - 1]))


def _quoted_end(sql: str, start: int, quote: str, line: int, *, backslash_escapes: bool) -> int:
    pos = start + 1
    while pos < len(sql):
        char = sql[pos]
        if backslash_escapes and char == "\\":
            pos += 2
            continue
        if char == quote:
            if sql[pos + 1 : pos + 2] == quote:  # doubled quote stands for itself
                pos += 2
                continue
            return pos + 1
        pos += 1
    what = "string" if quote == "'" else "quoted identifier"
    raise LexError(f"unterminated {what}", line)


def _block_comment_end(sql: str, start: int, line: int) -> int:
    depth = 0
    pos = start
    while pos < len(sql):
        pair = sql[pos : pos + 2]
        if pair == "/*":
            depth += 1
            pos += 2
        elif pair == "*/":
            depth -= 1
            pos += 2
            if depth == 0:
                return pos
        else:
            pos += 1
    raise LexError("unterminated /* comment", line)
