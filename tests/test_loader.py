"""The SQL loader: file format, tokenizer, parameters and load-time errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ims_repo.core import loader
from ims_repo.core.lexer import Kind, tokenize
from ims_repo.core.loader import Fragment, QueryFile, ResultKind, parse
from ims_repo.errors import QueryFileError


def one(sql_body: str, header: str = "-- name: q :many\n-- Does q.\n") -> loader.Statement:
    [statement] = parse("t.sql", header + sql_body)
    return statement


def test_statement_header_doc_and_kind() -> None:
    statement = one("SELECT 1;", "-- name: get_it :one\n-- Gets it.\n-- Really.\n")
    assert (statement.name, statement.kind, statement.doc) == (
        "get_it",
        ResultKind.ONE,
        "Gets it. Really.",
    )
    assert statement.location == "t.sql:1"
    assert statement.label == "t.get_it"


def test_named_parameters_become_psycopg_placeholders_in_order_of_first_use() -> None:
    statement = one("SELECT :b, :a, :b FROM x WHERE y = :a;")
    assert statement.params == ("b", "a")
    assert statement.query.endswith("SELECT %(b)s, %(a)s, %(b)s FROM x WHERE y = %(a)s")


def test_the_text_sent_starts_with_a_comment_naming_the_statement() -> None:
    assert one("SELECT 1;").query.startswith("/* ims_repo t.q */\n")


@pytest.mark.parametrize(
    "sql, survives",
    [
        ("SELECT 'a:b' AS x", "'a:b'"),  # quoted colon
        ("SELECT now()::text", "::text"),  # cast
        ("SELECT x::int[] FROM t", "::int[]"),
        ("SELECT 'it''s :not' AS x", "'it''s :not'"),  # doubled quote
        ("SELECT E'\\' :not' AS x", "E'\\' :not'"),  # backslash escape in E''
        ('SELECT 1 AS ":not"', '":not"'),  # quoted identifier
        ("SELECT $$ :not ; 'x $$", "$$ :not ; 'x $$"),  # dollar body
        ("SELECT $tag$ :not $$ $tag$", "$tag$ :not $$ $tag$"),
        ("SELECT 1 -- :not ; it's\nFROM t", "-- :not ; it's"),  # line comment
        ("SELECT /* :not /* nested ; */ ' */ 1", "/* :not /* nested ; */ ' */"),
        ("SELECT '{1,2}'::int[]", "'{1,2}'::int[]"),  # braces in a literal are no slot
    ],
)
def test_tokenizer_leaves_quotes_comments_casts_and_dollar_bodies_alone(
    sql: str, survives: str
) -> None:
    statement = one(sql)
    assert statement.params == ()
    assert survives in statement.query


def test_percent_is_doubled_for_psycopg_but_written_plainly_in_the_file() -> None:
    statement = one("SELECT x FROM t WHERE x LIKE 'a%' AND y = :y;")
    assert "LIKE 'a%%'" in statement.query
    assert "LIKE 'a%'" in statement.sql


def test_tokens_concatenate_back_to_the_source() -> None:
    sql = "SELECT :a::int, 'x:y', $q$ $$ $q$ /* c */ -- d\n FROM t"
    assert "".join(token.text for token in tokenize(sql)) == sql
    kinds = [token.kind for token in tokenize(sql)]
    assert kinds.count(Kind.PARAM) == 1 and Kind.CAST in kinds


def test_a_file_with_crlf_line_ends_loads_with_its_names_docs_and_lines() -> None:
    """Lines end at ``\\n``; the ``\\r`` of a ``\\r\\n`` file stays in the SQL, as space."""
    source = "-- name: a :one\r\n-- First.\r\nSELECT 1;\r\n\r\n-- name: b :many\r\n-- Second.\r\nSELECT :x\r\nFROM t;\r\n"
    a, b = parse("crlf.sql", source)
    assert (a.name, a.doc, a.line, b.name, b.doc, b.line) == ("a", "First.", 1, "b", "Second.", 5)
    assert b.params == ("x",)
    assert a.render({}) == "/* ims_repo crlf.a */\nSELECT 1"
    assert b.render({}) == "/* ims_repo crlf.b */\nSELECT %(x)s\r\nFROM t"


def test_a_file_is_read_as_written_every_line_break_in_a_literal_kept(tmp_path: Path) -> None:
    path = tmp_path / "breaks.sql"
    path.write_bytes("-- name: q :one\r\n-- Doc.\r\nSELECT 'a\rb\r\nc\u2028d' AS x;\r\n".encode())
    [statement] = QueryFile(path).statements.values()
    assert "'a\rb\r\nc\u2028d'" in statement.render({})


def test_slots_are_filled_and_their_parameters_merged() -> None:
    statement = one("SELECT x FROM t WHERE {filters} ORDER BY {order_by} LIMIT :limit;")
    assert statement.slots == ("filters", "order_by")
    assert "WHERE TRUE ORDER BY 1" in statement.query
    bound = statement.bind(
        {"limit": 5}, filters=Fragment("x = %(f_x)s", {"f_x": 1}), order_by=Fragment("x DESC")
    )
    assert "WHERE x = %(f_x)s ORDER BY x DESC LIMIT %(limit)s" in bound.text
    assert bound.params == {"limit": 5, "f_x": 1}


def test_bind_refuses_a_missing_or_extra_parameter() -> None:
    statement = one("SELECT :a;")
    with pytest.raises(QueryFileError, match=r"t\.sql:1: t\.q takes :a but was given :b"):
        statement.bind({"b": 1})


@pytest.mark.parametrize(
    "text, message",
    [
        ("-- name: Bad-Name :one\n-- x\nSELECT 1;", r"t\.sql:1: malformed header"),
        ("-- name: q\n-- x\nSELECT 1;", r"t\.sql:1: malformed header"),
        ("-- name: q :lots\n-- x\nSELECT 1;", r"t\.sql:1: unknown result kind ':lots'"),
        ("-- name: q :one\nSELECT 1;", r"t\.sql:1: statement 'q' needs a comment line"),
        ("-- name: q :one\n-- x\n", r"t\.sql:1: statement 'q' has no SQL"),
        ("SELECT 1;\n-- name: q :one\n-- x\nSELECT 1;", r"t\.sql:1: SQL before the first"),
        (
            "-- name: q :one\n-- x\nSELECT 1;\n\n-- name: q :many\n-- y\nSELECT 2;",
            r"t\.sql:5: duplicate statement name 'q' \(first defined at line 1\)",
        ),
        ("-- name: q :one\n-- x\nSELECT 1;\nSELECT 2;", r"t\.sql:3: .*more than one SQL statement"),
        ("-- name: q :one\n-- x\nSELECT\n 'oops;", r"t\.sql:4: unterminated string"),
        ("-- name: q :one\n-- x\nSELECT $$ x;", r"t\.sql:3: unterminated dollar-quoted"),
        ("-- name: q :one\n-- x\nSELECT /* x;", r"t\.sql:3: unterminated /\* comment"),
        ("-- name: q :one\n-- x\nSELECT\n$1;", r"t\.sql:4: .*positional parameter"),
        ("-- name: q :one\n-- x\nSELECT {where};", r"t\.sql:3: .*unknown slot \{where\}"),
    ],
)
def test_malformed_files_fail_at_load_naming_file_and_line(text: str, message: str) -> None:
    with pytest.raises(QueryFileError, match=message):
        parse("t.sql", text)


def test_a_parameter_the_method_does_not_pass_fails_when_the_caller_declares_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "things.sql"
    path.write_text("-- first\n\n-- name: get :one\n-- A thing.\nSELECT :thing_id, :extra;\n")
    queries = QueryFile(path)
    with pytest.raises(
        QueryFileError,
        match=r"things\.sql:3: things\.get uses :extra, :thing_id but its caller passes :thing_id",
    ):
        queries.statement("get", "thing_id")
    with pytest.raises(QueryFileError, match=r"no statement named 'got'"):
        queries.statement("got", "thing_id")
    assert queries.statement("get", "thing_id", "extra").params == ("thing_id", "extra")


def test_every_packaged_file_loads_and_every_statement_is_documented() -> None:
    files = loader.packaged_files()
    names = {file.path.name for file in files}
    assert {"users.sql", "crawl_sessions.sql", "context.sql"} <= names
    for file in files:
        for statement in file.statements.values():
            assert statement.doc, statement.location


@pytest.mark.parametrize(
    "header, sql, read_only",
    [
        (":one", "SELECT a FROM t WHERE b = :b", True),
        (":many", "SELECT updated_at, deleted FROM t", True),  # names that contain words
        (":scalar", "SELECT count(*) FROM t", True),
        (":none", "SELECT ims.refresh_analytics(:day)", False),  # run for its effect
        (":one", "INSERT INTO t (a) VALUES (:a) RETURNING a", False),
        (":one", "WITH x AS (DELETE FROM t RETURNING a) SELECT a FROM x", False),
        (":many", "SELECT a FROM t FOR UPDATE", False),
        (":rowcount", "DELETE FROM t", False),
        # A WITH whose every part reads is a read; a data-modifying CTE is a write.
        (":many", "WITH x AS (SELECT a FROM t) SELECT a FROM x", True),
        (
            ":many",
            "WITH RECURSIVE x AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM x) SELECT n FROM x",
            True,
        ),
        (":one", "WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM x", False),
        (":one", "WITH x AS (INSERT INTO t (a) VALUES (1) RETURNING a) SELECT a FROM x", False),
        (
            ":one",
            "WITH x AS (SELECT a FROM t) MERGE INTO u USING x ON TRUE WHEN MATCHED THEN DO NOTHING",
            False,
        ),
        (":one", "WITH x AS (SELECT a FROM t FOR UPDATE) SELECT a FROM x", False),
        # Words in strings, quoted names and comments are not keywords.
        (
            ":many",
            "WITH x AS (SELECT 'DELETE' AS \"update\" FROM t) /* INSERT */ SELECT 1 FROM x",
            True,
        ),
        # Built-in functions that change state make a SELECT a write.
        (":one", "SELECT pg_catalog.set_config('a.b', :v, TRUE)", False),
        (":one", "WITH l AS (SELECT pg_advisory_xact_lock(1)) SELECT 1 FROM l", False),
        (":scalar", "SELECT nextval('s')", False),
        (":one", "SELECT a INTO new_table FROM t", False),
        # What the text cannot show is declared in the header.
        (":one :write", "SELECT ims.refresh_analytics(:day)", False),
    ],
)
def test_read_only_statements_only_read(header: str, sql: str, read_only: bool) -> None:
    assert one(sql, f"-- name: q {header}\n-- Does q.\n").read_only is read_only


def test_the_write_flag_is_the_only_header_flag() -> None:
    with pytest.raises(QueryFileError, match=r"q\.sql:1: unknown header flag ':writes'"):
        parse("q.sql", "-- name: q :one :writes\n-- Does q.\nSELECT 1\n")
    assert parse("q.sql", "-- name: q :many :write\n-- Does q.\nSELECT 1\n")[0].writes
