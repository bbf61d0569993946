"""Property tests of the SQL loader's tokenizer (``ims_repo.core.lexer``) and rendering.

Statements are generated from pieces: plain SQL words, ``:name`` parameters, ``::`` casts,
and opaque pieces holding arbitrary text (any Unicode but U+0000, which no SQL text can
hold): string literals (plain and ``E''``), quoted identifiers, ``$$`` and ``$tag$`` bodies,
line and block comments. Whatever the text, every opaque piece must come out as one token,
unchanged, and every ``:name`` outside them, and only those, must become a parameter. The
loader must render each statement for psycopg (``%(name)s``, ``%%``) and for the server
(``$n``) without touching the rest, and PostgreSQL must read every literal back unchanged.

The lexer is also compared with PostgreSQL's own scanner (``pglast.parser.scan``, a dev
dependency) on generated SQL: both must find the same comments, literals, quoted
identifiers, casts and ``:name`` parameters, at the same places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pglast import parser as pg_parser

from ims_repo.core.lexer import Kind, LexError, tokenize
from ims_repo.core.loader import parse

# Any text SQL can carry (no NUL), surrogates excluded: they are not Unicode text.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
ANY_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=SURROGATES))
# What Python's str.splitlines breaks lines at, besides "\n": the loader splits a file at
# "\n" only, so a literal keeps these (test_line_boundaries_survive_a_file below).
LINE_BOUNDARIES = "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
# Plain SQL: no character that starts a literal, comment, parameter, cast, slot or `;`.
PLAIN = st.from_regex(r"[A-Za-z0-9_ ,.()=<>+*\n]{1,12}", fullmatch=True)


@dataclass(frozen=True)
class Piece:
    """A piece of a generated statement: its SQL text (``prefix`` + ``text``), what the
    tokenizer must make of ``text`` (``kind`` None for plain SQL), and for literals the
    value the server reads from it."""

    text: str
    kind: Kind | None = None
    value: str | None = None
    prefix: str = ""  # the E of an escape string: not part of the string token
    suffix: str = ""  # the newline ending a line comment: not part of the comment token

    @property
    def sql(self) -> str:
        return self.prefix + self.text + self.suffix

    @property
    def param(self) -> str | None:
        return self.text[1:] if self.kind is Kind.PARAM else None

    @property
    def token(self) -> tuple[Kind, str] | None:
        """The token the piece must start with (a cast's type name is plain SQL)."""
        if self.kind is None:
            return None
        return (self.kind, "::" if self.kind is Kind.CAST else self.text)


def string_literal(body: str) -> Piece:
    return Piece("'" + body.replace("'", "''") + "'", Kind.STRING, body)


def escape_string(body: str) -> Piece:
    escaped = body.replace("\\", "\\\\").replace("'", "\\'")
    return Piece("'" + escaped + "'", Kind.STRING, body, prefix="E")


def quoted_identifier(body: str) -> Piece:
    return Piece('"' + body.replace('"', '""') + '"', Kind.QUOTED_IDENTIFIER)


@st.composite
def dollar_quoted(
    draw: st.DrawFn, text: st.SearchStrategy[str] = ANY_TEXT, tags: st.SearchStrategy[str] = NAMES
) -> Piece:
    tag = "$" + draw(st.one_of(st.just(""), tags)) + "$"
    body = draw(text.filter(lambda body: tag not in body + "$"))
    return Piece(tag + body + tag, Kind.DOLLAR_QUOTED, body)


def line_comment(body: str, end: str = "\n") -> Piece:
    """A ``--`` comment, ended by ``end``: PostgreSQL ends one at a line feed or a carriage return."""
    text = "--" + body.replace("\n", " ").replace("\r", " ")
    return Piece(text, Kind.COMMENT, suffix=end)


def block_comment(body: str) -> Piece:
    return Piece("/* " + body.replace("/*", "/ *").replace("*/", "* /") + " */", Kind.COMMENT)


def pieces_of(text: st.SearchStrategy[str], line_ends: str = "\n") -> st.SearchStrategy[Piece]:
    """Every kind of piece, opaque ones holding ``text``; ``--`` comments end with one
    of ``line_ends`` (``\r`` only where no file is read line by line)."""
    return st.one_of(
        PLAIN.map(Piece),
        NAMES.map(lambda name: Piece(":" + name, Kind.PARAM)),
        NAMES.map(lambda name: Piece("::" + name, Kind.CAST)),
        text.map(string_literal),
        text.map(escape_string),
        text.filter(bool).map(quoted_identifier),
        dollar_quoted(text),
        st.builds(line_comment, text, st.sampled_from(line_ends)),
        text.map(block_comment),
    )


def join(pieces: list[Piece]) -> str:
    """The statement: the pieces, separated by a space."""
    return " ".join(piece.sql for piece in pieces)


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces_of(ANY_TEXT, line_ends="\n\r"), max_size=12))
def test_every_opaque_piece_is_one_unchanged_token_and_every_param_a_parameter(
    pieces: list[Piece],
) -> None:
    sql = join(pieces)
    tokens = tokenize(sql)
    assert "".join(token.text for token in tokens) == sql
    special = [(t.kind, t.text) for t in tokens if t.kind is not Kind.TEXT]
    assert special == [p.token for p in pieces if p.token is not None]
    params = [t.name for t in tokens if t.kind is Kind.PARAM]
    assert params == [p.param for p in pieces if p.param is not None]


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces_of(ANY_TEXT), max_size=12))
def test_the_loader_renders_parameters_for_psycopg_and_leaves_the_rest_as_written(
    pieces: list[Piece],
) -> None:
    [statement] = parse(
        "t.sql", f"-- name: q :many\n-- Generated.\nSELECT {join(pieces)} FROM t;\n"
    )
    params = [p.param for p in pieces if p.param is not None]
    assert statement.params == tuple(dict.fromkeys(params))
    number = {name: n for n, name in enumerate(statement.params, 1)}
    # For psycopg: :name -> %(name)s and every other % doubled; for the server: $n.
    rendered = [f"%({p.param})s" if p.param else p.sql.replace("%", "%%") for p in pieces]
    positional = [f"${number[p.param]}" if p.param else p.sql for p in pieces]
    head = "/* ims_repo t.q */\nSELECT "
    assert statement.render({}) == head + " ".join(rendered) + " FROM t"
    assert statement.positional() == head + " ".join(positional) + " FROM t"


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_any_text_either_tokenizes_back_to_itself_or_is_refused_as_unterminated(text: str) -> None:
    try:
        tokens = tokenize(text)
    except LexError as error:
        assert "unterminated" in str(error) and error.line >= 1
        return
    assert "".join(token.text for token in tokens) == text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    literals=st.lists(
        st.one_of(
            ANY_TEXT.map(string_literal), ANY_TEXT.map(escape_string), dollar_quoted(ANY_TEXT)
        ),
        min_size=1,
        max_size=4,
    ),
    comment=ANY_TEXT.map(block_comment),
    value=ANY_TEXT,
)
def test_the_server_reads_every_literal_back_unchanged_and_binds_every_parameter(
    ims_admin_url: str, literals: list[Piece], comment: Piece, value: str
) -> None:
    columns = [f"{p.sql}::text AS c{n}" for n, p in enumerate(literals)]
    body = f"SELECT {', '.join(columns)}, :value::text AS v {comment.text} WHERE :value = :value"
    [statement] = parse("t.sql", "-- name: q :one\n-- Generated.\n" + body + ";\n")
    assert statement.params == ("value",)
    with psycopg.connect(ims_admin_url, autocommit=True) as conn:
        row = conn.execute(statement.render({}), {"value": value}).fetchone()
    assert row == (*[p.value for p in literals], value)


# --- compared with PostgreSQL's own scanner ---------------------------------------------

# Plain SQL for the scanner: no digits (PostgreSQL refuses "1abc" as trailing junk after a
# number; the lexer need not), and non-ASCII letters, which PostgreSQL reads as letters
# of identifiers and dollar-quote tags.
PG_PLAIN = st.from_regex(r"[A-Za-zé한_ ,.()=<>+*\n]{1,12}", fullmatch=True)
PG_TAGS = st.from_regex(r"[A-Za-zé한_][A-Za-z0-9é한_]{0,5}", fullmatch=True)


def in_parentheses(piece: Piece) -> str:
    """A quoted string, kept from touching its neighbours: PostgreSQL joins ``'a'`` and
    ``'b'`` separated by a newline into one literal, and reads ``b'…'`` as a bit string."""
    return f"({piece.prefix}{piece.text})"


PG_PIECES = st.one_of(
    PG_PLAIN,
    NAMES.map(lambda name: ":" + name),
    NAMES.map(lambda name: "::" + name),
    ANY_TEXT.map(lambda body: in_parentheses(string_literal(body))),
    ANY_TEXT.map(lambda body: in_parentheses(escape_string(body))),
    ANY_TEXT.filter(bool).map(lambda body: quoted_identifier(body).text),
    dollar_quoted(ANY_TEXT, PG_TAGS).map(lambda piece: piece.text),
    st.builds(line_comment, ANY_TEXT, st.sampled_from("\n\r")).map(lambda piece: piece.sql),
    ANY_TEXT.map(lambda body: block_comment(body).text),
)
# Pieces may touch (""): a `$` or `:` right after a word is where the rules are subtle.
PG_SQL = st.lists(st.tuples(PG_PIECES, st.sampled_from(["", " ", "\n"])), max_size=10).map(
    lambda parts: "".join(piece + separator for piece, separator in parts)
)
_PG_KINDS = {
    "SQL_COMMENT": "comment",
    "C_COMMENT": "comment",
    "SCONST": "string",
    "TYPECAST": "cast",
}
_LEXER_KINDS = {
    Kind.COMMENT: "comment",
    Kind.STRING: "string",
    Kind.DOLLAR_QUOTED: "string",
    Kind.QUOTED_IDENTIFIER: "quoted identifier",
    Kind.CAST: "cast",
    Kind.PARAM: "parameter",
}
_WORD_CHAR = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$\u0080-\U0010ffff]*")


def scanner_spans(sql: str) -> list[tuple[str, int, int]]:
    """What PostgreSQL's scanner finds in ``sql``: (kind, start, end) of every comment,
    literal, quoted identifier and cast, and of every ``:`` that starts a parameter (a
    ``:`` token, not after a word, right before a name; psql substitutes those)."""
    tokens = pg_parser.scan(sql)
    spans = []
    for before, token, after in zip([None, *tokens], tokens, [*tokens[1:], None], strict=False):
        text = sql[token.start : token.end + 1]
        if token.name in _PG_KINDS:
            spans.append((_PG_KINDS[token.name], token.start, token.end + 1))
        elif token.name == "IDENT" and text.startswith('"'):
            spans.append(("quoted identifier", token.start, token.end + 1))
        elif (
            token.name == "ASCII_58"
            and after is not None
            and after.start == token.end + 1
            and _PARAM_NAME.fullmatch(sql[after.start : after.end + 1])
            and not ends_a_word(sql, before, token.start)
        ):
            spans.append(("parameter", token.start, token.start + 1))
    return spans


def ends_a_word(sql: str, token: Any, at: int) -> bool:
    """True when ``token`` is a word (identifier, keyword, number) ending right at ``at``."""
    if token is None or token.end + 1 != at or token.name in ("SCONST", *_PG_KINDS):
        return False
    text = sql[token.start : token.end + 1]
    return not text.startswith('"') and bool(_WORD_CHAR.match(text[-1]))


def lexer_spans(sql: str) -> list[tuple[str, int, int]]:
    """The same, from ``ims_repo.core.lexer`` (an ``E`` prefix belongs to its string)."""
    spans = []
    start = 0
    before = ""  # the plain text right before the token
    for token in tokenize(sql):
        end = start + len(token.text)
        kind = _LEXER_KINDS.get(token.kind)
        if kind == "parameter":
            spans.append((kind, start, start + 1))
        elif token.kind is Kind.STRING and re.search(r"(?:^|[^\w$\u0080-\U0010ffff])[eE]$", before):
            spans.append(("string", start - 1, end))
        elif kind is not None:
            spans.append((kind, start, end))
        before = token.text if token.kind is Kind.TEXT else ""
        start = end
    return spans


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(PG_SQL)
def test_the_lexer_finds_what_postgresqls_scanner_finds(sql: str) -> None:
    """Same comments, literals, quoted identifiers, casts and parameters, same places.

    Text that PostgreSQL's scanner refuses is skipped (the lexer may be more lenient:
    it does not check numbers); text it accepts, the lexer must accept too.
    """
    try:
        expected = scanner_spans(sql)
    except pg_parser.ParseError:
        assume(False)
    assert lexer_spans(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 -- note\r, :param",  # a -- comment ends at \r
        "SELECT é$$ x",  # $ after a non-ASCII letter continues the identifier
        "SELECT $é$ :x $é$, :y",  # a non-ASCII dollar-quote tag
        "SELECT éE'\\', :z",  # E after a letter is not an escape-string prefix
        "SELECT $$a$$$$:b$$, :c",  # a closing $ is no letter: two literals
        "SELECT a:b, (:c), x::int, E'\\'' || $$:d$$ /* :e /* :f */ */ \"g:h\"",
    ],
)
def test_the_lexer_agrees_with_postgresql_on_the_subtle_cases(sql: str) -> None:
    assert lexer_spans(sql) == scanner_spans(sql)


# --- gaps once kept visible as strict xfails, now closed --------------------------------


def test_line_boundaries_survive_a_file() -> None:
    """The loader splits a file at ``\\n`` only, so a literal keeps every other line break."""
    for char in LINE_BOUNDARIES:
        [statement] = parse("t.sql", f"-- name: q :one\n-- Doc.\nSELECT 'a{char}b' AS x;\n")
        assert f"'a{char}b'" in statement.render({}), repr(char)


def test_a_line_comment_ends_at_a_carriage_return_as_in_postgresql() -> None:
    """scan.l: ``comment ("--"{non_newline}*)``, ``non_newline [^\\n\\r]``."""
    tokens = tokenize("SELECT 1 -- note\r, :param")
    assert [token.name for token in tokens if token.kind is Kind.PARAM] == ["param"]
