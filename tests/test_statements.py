"""The statement check: every named statement against the migrated schema, and proof
that the check fails for each kind of mistake it is there to catch.

Adding a column to a record without adding it to the SQL makes
``test_every_packaged_statement_matches_the_schema`` fail, naming the file, line,
statement and field.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import pytest
from pydantic import BaseModel, create_model

from ims_repo import User
from ims_repo.core import loader
from ims_repo.core.loader import QueryFile
from ims_repo.services.checks import Problem, check_statements


def probe(tmp_path: Path, text: str, name: str = "probe") -> QueryFile:
    """A throwaway query file, as an application would write one."""
    path = tmp_path / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return QueryFile(path)


def users_copy(tmp_path: Path) -> QueryFile:
    """``users.sql`` loaded a second time, so a test can pair it with other records."""
    source = loader.load("users").path
    return QueryFile(tmp_path / "users.sql", source.read_text(encoding="utf-8"))


def messages(problems: list[Problem]) -> list[str]:
    return [problem.message for problem in problems]


# --- the real thing -------------------------------------------------------------------


def test_every_packaged_statement_matches_the_schema(ims_admin_url: str) -> None:
    problems = check_statements(ims_admin_url)
    print("\n".join(map(str, problems)))
    assert problems == []
    # The check did look at the statements that fill records (not a vacuous pass).
    statements = [s for f in loader.packaged_files() for s in f.statements.values()]
    assert len(statements) >= 20
    assert loader.load("users").statements["get"].record is User


def test_the_check_passes_when_connected_as_the_runtime_login(ims_app_url: str) -> None:
    assert check_statements(ims_app_url, [loader.load("users")]) == []


def test_the_check_changes_nothing(ims_admin_url: str) -> None:
    """Statements are described and planned, never run: the INSERTs insert nothing."""
    import psycopg

    check_statements(ims_admin_url)
    with psycopg.connect(ims_admin_url) as conn:
        count = conn.execute("SELECT count(*) FROM ims.users").fetchone()
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert count == (0,) and prepared == (0,)


def test_problem_reads_file_line_statement_message() -> None:
    problem = Problem("users.sql:4", "users.get", "something is wrong")
    assert str(problem) == "users.sql:4: users.get: something is wrong"


def test_positional_text_numbers_parameters_in_order_and_fills_slots() -> None:
    [statement] = loader.parse(
        "t.sql",
        "-- name: q :many\n-- Q.\nSELECT :b, '%:x', :a FROM t WHERE {filters} AND x = :b "
        "ORDER BY {order_by};",
    )
    assert statement.params == ("b", "a")
    assert statement.positional() == (
        "/* ims_repo t.q */\nSELECT $1, '%:x', $2 FROM t WHERE TRUE AND x = $1 ORDER BY 1"
    )


# --- the check can fail ---------------------------------------------------------------


def test_a_statement_that_does_not_parse(ims_admin_url: str, tmp_path: Path) -> None:
    queries = probe(
        tmp_path,
        "-- name: broken :many\n-- Forgot the condition.\n"
        "SELECT user_id\nFROM ims.users\nWHERE username =\nORDER BY user_id;\n",
    )
    [problem] = check_statements(ims_admin_url, [queries])
    assert (problem.location, problem.statement) == ("probe.sql:1", "probe.broken")
    assert problem.message == 'syntax error at or near "ORDER" (line 4 of its SQL)'


def test_a_statement_naming_a_column_that_does_not_exist(
    ims_admin_url: str, tmp_path: Path
) -> None:
    queries = probe(
        tmp_path,
        "-- name: ok :scalar\n-- Fine.\nSELECT count(*) FROM ims.users;\n\n"
        "-- name: nickname :one\n-- The nickname column was never migrated.\n"
        "SELECT user_id,\n       nickname\nFROM ims.users\nWHERE user_id = :user_id;\n",
    )
    assert [str(p) for p in check_statements(ims_admin_url, [queries])] == [
        'probe.sql:5: probe.nickname: column "nickname" does not exist (line 2 of its SQL)'
    ]


def test_a_parameter_count_the_server_disagrees_with(ims_admin_url: str, tmp_path: Path) -> None:
    # The loader numbers exactly the parameters it finds, so this cannot come from a file;
    # a statement whose parameter list was tampered with stands in for a loader bug.
    queries = probe(
        tmp_path,
        "-- name: get :one\n-- One user.\nSELECT user_id FROM ims.users WHERE user_id = :id;",
    )
    statement = queries.statements["get"]
    queries.statements["get"] = replace(statement, params=("id", "ghost"))
    assert messages(check_statements(ims_admin_url, [queries])) == [
        "the server counts 1 parameter(s), the statement names 2 (:id, :ghost)"
    ]


class UserPlus(User):
    nickname: str


def test_a_record_field_the_sql_does_not_select(ims_admin_url: str, tmp_path: Path) -> None:
    queries = users_copy(tmp_path)
    get = queries.statement("get", "user_id", record=UserPlus)
    assert [str(p) for p in check_statements(ims_admin_url, [queries])] == [
        f"{get.location}: users.get: UserPlus has field 'nickname' that the statement "
        "does not return"
    ]


def test_a_column_the_record_has_no_field_for(ims_admin_url: str, tmp_path: Path) -> None:
    queries = probe(
        tmp_path,
        "-- name: get :one\n-- One user, and a column too many.\n"
        "SELECT user_id, username, email, full_name, department, role, is_active,\n"
        "       preferences, created_at, updated_at, last_login_at, 1 AS extra\n"
        "FROM ims.users\nWHERE user_id = :user_id;\n",
    )
    queries.statement("get", "user_id", record=User)
    assert messages(check_statements(ims_admin_url, [queries])) == [
        "returns column 'extra' that User has no field for"
    ]


class NumericName(User):
    username: int  # type: ignore[assignment]


def test_a_column_type_the_field_cannot_hold(ims_admin_url: str, tmp_path: Path) -> None:
    queries = users_copy(tmp_path)
    queries.statement("get_by_username", "username", record=NumericName)
    assert messages(check_statements(ims_admin_url, [queries])) == [
        "column 'username' is text but NumericName.username is int"
    ]


class RequiredFullName(User):
    full_name: str


def test_a_nullable_column_into_a_field_that_is_not_optional(
    ims_admin_url: str, tmp_path: Path
) -> None:
    queries = users_copy(tmp_path)
    queries.statement("get", "user_id", record=RequiredFullName)
    assert messages(check_statements(ims_admin_url, [queries])) == [
        "RequiredFullName.full_name is str (not optional) but column ims.users.full_name "
        "allows NULL"
    ]


def test_a_statement_the_runtime_role_may_not_run(ims_admin_url: str, tmp_path: Path) -> None:
    queries = probe(
        tmp_path,
        "-- name: forget :rowcount\n-- Erase audit rows (nobody but the owner may).\n"
        "DELETE FROM ims.audit_log\nWHERE audit_id = :audit_id;\n\n"
        "-- name: promote :rowcount\n-- Make an admin (only the owner may).\n"
        "UPDATE ims.users\nSET role = 'admin'\nWHERE user_id = :user_id;\n",
    )
    assert messages(check_statements(ims_admin_url, [queries])) == [
        "as ims_app: permission denied for table audit_log",
        "as ims_app: permission denied for table users",
    ]
    # The same statements are fine for the superuser: the role is what is checked.
    assert check_statements(ims_admin_url, [queries], role=None) == []


def test_unused_statements_are_reported(ims_admin_url: str, tmp_path: Path) -> None:
    queries = probe(
        tmp_path,
        "-- name: used :scalar\n-- Used.\nSELECT 1;\n\n"
        "-- name: forgotten :scalar\n-- Nobody calls it.\nSELECT 2;\n",
    )
    queries.statement("used")
    assert check_statements(ims_admin_url, [queries]) == []  # off for files passed in
    assert [str(p) for p in check_statements(ims_admin_url, [queries], report_unused=True)] == [
        "probe.sql:5: probe.forgotten: unused: no code calls QueryFile.statement() for it"
    ]


def test_the_result_kind_must_fit_the_columns(ims_admin_url: str, tmp_path: Path) -> None:
    queries = probe(
        tmp_path,
        "-- name: two :scalar\n-- Two values where one is promised.\nSELECT 1 AS a, 2 AS b;\n\n"
        "-- name: nothing :many\n-- Rows promised, none returned.\n"
        "DELETE FROM ims.users\nWHERE user_id = :user_id;\n",
    )
    assert messages(check_statements(ims_admin_url, [queries])) == [
        ":scalar statement returns 2 columns, not 1",
        ":many statement returns no columns",
    ]


# --- the type map ---------------------------------------------------------------------


class Nested(BaseModel):
    a: int


class Colour(StrEnum):
    RED = "red"


EVERY_TYPE = """
-- name: every :one
-- One value of every type the check maps.
SELECT 1::smallint AS i2, 2 AS i4, 3::bigint AS i8, 4::bigint AS widened,
       1.5::numeric AS n, 2.5::float8 AS f8, 2.5::real AS f4,
       'x'::text AS t, 'y'::varchar(3) AS vc, 'z'::name AS nm, 'user' AS lit, 'red' AS colour,
       true AS b, now() AS ts, now()::timestamp AS ts_local, current_date AS d,
       gen_random_uuid() AS u, '{"a": 1}'::jsonb AS jb, '[{"a": 1}]'::json AS js,
       '{"a": 1}'::jsonb AS model, '{}'::jsonb AS anything, '10.0.0.1'::inet AS ip,
       ARRAY[1, 2] AS ints, ARRAY['a'] AS texts, ARRAY[now()] AS times,
       NULL::text AS maybe;
"""

EVERY_FIELD: dict[str, Any] = {
    "i2": int,
    "i4": int,
    "i8": int,
    "widened": Decimal,
    "n": Decimal,
    "f8": float,
    "f4": float,
    "t": str,
    "vc": str,
    "nm": str,
    "lit": Literal["admin", "user"],
    "colour": Colour,
    "b": bool,
    "ts": datetime,
    "ts_local": datetime,
    "d": date,
    "u": UUID,
    "jb": dict[str, object],
    "js": list[Nested],
    "model": Nested,
    "anything": Any,
    "ip": IPv4Address | IPv6Address | None,
    "ints": list[int],
    "texts": list[str] | None,
    "times": tuple[datetime, ...],
    "maybe": str | None,
}


def test_every_mapped_type_is_accepted(ims_admin_url: str, tmp_path: Path) -> None:
    queries = probe(tmp_path, EVERY_TYPE)
    record = create_model("Every", **{k: (v, ...) for k, v in EVERY_FIELD.items()})  # type: ignore[call-overload]
    queries.statement("every", record=record)
    assert check_statements(ims_admin_url, [queries]) == []


@pytest.mark.parametrize(
    "column, annotation, shown",
    [
        ("1.5::numeric", int, "numeric but Probe.v is int"),
        ("2.5::float8", int, "double precision but Probe.v is int"),
        ("'x'::text", int, "text but Probe.v is int"),
        ("'x'::text", Literal[1, 2], "text but Probe.v is Literal[1, 2]"),
        ("1", Literal["a"], "integer but Probe.v is Literal['a']"),
        ("1", bool, "integer but Probe.v is bool"),
        ("true", int, "boolean but Probe.v is int"),
        ("now()", date, "timestamp with time zone but Probe.v is date"),
        ("current_date", datetime, "date but Probe.v is datetime"),
        ("gen_random_uuid()", str, "uuid but Probe.v is str"),
        ("'{}'::jsonb", str, "jsonb but Probe.v is str"),
        ("'{}'::jsonb", int, "jsonb but Probe.v is int"),
        ("'{}'::jsonb", int | None, "jsonb but Probe.v is int | None"),
        ("'1.1.1.1'::inet", str, "inet but Probe.v is str"),
        ("ARRAY[1]", list[str], "integer[] but Probe.v is list[str]"),
        ("ARRAY[1]", int, "integer[] but Probe.v is int"),
        ("'x'::text", list[str], "text but Probe.v is list[str]"),
        ("'x'::text", Nested, "text but Probe.v is Nested"),
    ],
)
def test_incompatible_types_are_reported(
    ims_admin_url: str, tmp_path: Path, column: str, annotation: Any, shown: str
) -> None:
    queries = probe(tmp_path, f"-- name: v :one\n-- One value.\nSELECT {column} AS v;\n")
    record = create_model("Probe", v=(annotation, ...))
    queries.statement("v", record=record)
    assert messages(check_statements(ims_admin_url, [queries])) == [f"column 'v' is {shown}"]


def test_a_temporary_table_created_earlier_in_the_file_is_there_for_later_statements(
    ims_admin_url: str, tmp_path: Path
) -> None:
    stage = (
        "-- name: create_stage :none\n-- A staging table for this transaction.\n"
        "CREATE TEMP TABLE IF NOT EXISTS pg_temp.probe_stage (n integer NOT NULL) "
        "ON COMMIT DROP;\n\n"
    )
    read = "-- name: staged :scalar\n-- What was staged.\nSELECT sum(n) FROM pg_temp.probe_stage;\n"
    files = [probe(tmp_path, stage + read, "staging"), probe(tmp_path, read, "alone")]
    # In the first file the table exists when `staged` is checked; the second file
    # lacks the statement that creates it, and the first file's check left none behind.
    assert [str(p) for p in check_statements(ims_admin_url, files)] == [
        'alone.sql:1: alone.staged: relation "pg_temp.probe_stage" does not exist '
        "(line 1 of its SQL)"
    ]
