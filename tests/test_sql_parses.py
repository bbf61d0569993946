"""Every piece of SQL the project ships, read by PostgreSQL's own parser (``pglast``).

The schema check (``test_statements.py``) prepares every named statement on a live
server; this needs no server and also covers what the check cannot prepare: the
migrations and their rollbacks, which hold DDL, ``DO`` blocks and function bodies. A
named statement is parsed as the schema check prepares it (``Statement.positional``:
``:name`` as ``$n``, slots at their defaults), so it must be exactly one statement.

``pglast`` is a dev dependency only (it is GPL): nothing under ``ims_repo/`` imports it.
"""

from __future__ import annotations

from pathlib import Path

import pglast
import pytest
from pglast.parser import ParseError

from ims_repo.core import loader
from ims_repo.core.loader import QueryFile, Statement
from ims_repo.services.migrations import migrations_path

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
MIGRATIONS = sorted(migrations_path().glob("*.sql"))
STATEMENTS: list[Statement] = [
    statement
    for query_file in [*loader.packaged_files(), *map(QueryFile, EXAMPLES.glob("*.sql"))]
    for statement in query_file.statements.values()
]


def parse_one(statement: Statement) -> None:
    """Parse the statement as it is prepared; fail naming its file:line otherwise."""
    try:
        parsed = pglast.parse_sql(statement.positional())
    except ParseError as error:
        pytest.fail(f"{statement.location}: {statement.label}: {error}")
    assert len(parsed) == 1, f"{statement.location}: {statement.label} is not one statement"


@pytest.mark.parametrize("statement", STATEMENTS, ids=lambda statement: statement.label)
def test_every_named_statement_parses_as_one_statement(statement: Statement) -> None:
    parse_one(statement)


def test_the_statements_and_migrations_were_found() -> None:
    """Not a vacuous pass: the packaged files, the examples and both migration halves."""
    assert len(STATEMENTS) >= 90
    assert any(statement.file == "reports.sql" for statement in STATEMENTS)
    assert len(MIGRATIONS) >= 20
    assert len([path for path in MIGRATIONS if path.name.endswith(".rollback.sql")]) * 2 == len(
        MIGRATIONS
    )


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda path: path.name)
def test_every_migration_and_rollback_parses(path: Path) -> None:
    """The whole file, as yoyo sends it (its ``-- depends:`` directives are comments)."""
    try:
        parsed = pglast.parse_sql(path.read_text(encoding="utf-8"))
    except ParseError as error:
        pytest.fail(f"{path.name}: {error}")
    assert parsed, f"{path.name} holds no statement"


def test_a_statement_the_parser_refuses_fails_naming_its_file_and_line(tmp_path: Path) -> None:
    """The check can fail: a misspelt keyword passes the loader but not the parser."""
    path = tmp_path / "probe.sql"
    path.write_text("-- name: broken :many\n-- Misspelt.\nSELECT 1\nFORM ims.users;\n")
    [statement] = QueryFile(path).statements.values()
    with pytest.raises(pytest.fail.Exception, match=r"probe\.sql:1: probe\.broken: syntax error"):
        parse_one(statement)


def test_slots_and_parameters_are_parsed_in_the_form_the_server_prepares() -> None:
    """``{filters}``/``{order_by}`` and ``:name`` become SQL the parser accepts."""
    [statement] = loader.parse(
        "t.sql",
        "-- name: q :many\n-- Doc.\nSELECT 1 FROM ims.users\nWHERE {filters} AND user_id = :u\n"
        "ORDER BY {order_by}\nLIMIT :limit;\n",
    )
    parse_one(statement)
    assert "$1" in statement.positional() and "{filters}" not in statement.positional()
