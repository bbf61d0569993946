"""The DBA's commands of ims_repo.faces.cli: ``queries``, ``explain`` and ``check``, through
click's CliRunner, on the plugin's per-test database."""

from __future__ import annotations

import re

import psycopg
import pytest
from _scratch import drop_role, new_role_name
from click.testing import CliRunner, Result
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from seed import crawl, people

from ims_repo import Database
from ims_repo.core import loader
from ims_repo.faces.cli import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def scan_rows(output: str, table: str) -> int:
    """The actual row count of the plan node scanning ``table`` (EXPLAIN ANALYZE)."""
    [line] = [line for line in output.splitlines() if re.search(rf"Scan .*on {table}\b", line)]
    match = re.search(r"actual time=\S+ rows=(\d+)", line)
    assert match, line
    return int(match.group(1))


def every_statement() -> list[loader.Statement]:
    return [s for f in loader.packaged_files() for s in f.statements.values()]


def test_help_lists_the_dba_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("queries", "explain", "check"):
        assert re.search(rf"^\s+{command}\s", result.output, re.MULTILINE), command


# --- queries --------------------------------------------------------------------------


def test_queries_lists_every_statement_with_kind_location_and_comment() -> None:
    result = run("queries")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    statements = every_statement()
    assert len(lines) == len(statements) + 1
    assert lines[-1] == f"{len(statements)} statements in {len(loader.packaged_files())} files"
    [row] = [line for line in lines if line.startswith("users.get_by_username ")]
    header = loader.load("users").statements["get_by_username"].line
    assert row.split() == [
        "users.get_by_username",
        ":one",
        f"users.sql:{header}",
        *["The", "user", "with", "this", "username,", "or", "nothing."],
    ]
    # One line each, first sentence only ("e.g." does not end it).
    [by_id] = [line for line in lines if line.startswith("issues.get_by_issue_id ")]
    assert by_id.endswith("The issue with this IMS id (e.g. SAMPLE-001), or nothing.")
    [update] = [line for line in lines if line.startswith("users.update ")]
    assert update.endswith("fields it leaves out keep their value.")


def test_queries_name_prints_the_statement_as_written() -> None:
    users = loader.load("users")
    statement = users.statements["get_by_username"]
    source = users.path.read_text(encoding="utf-8").splitlines()
    first = statement.line - 1
    expected = source[first : first + 6]  # header, comment, four lines of SQL
    assert expected[0] == "-- name: get_by_username :one"
    assert expected[-1] == "WHERE username = :username;"

    for name in ("users.get_by_username", "get_by_username"):
        result = run("queries", name)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert re.fullmatch(rf"-- \S*users\.sql:{statement.line}", lines[0])
        assert lines[1:] == expected


def test_queries_name_of_the_last_statement_in_a_file_stops_at_its_end() -> None:
    result = run("queries", "users.stats")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "FROM ims.get_user_stats(:user_id);"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("users.nope", "no statement named 'users.nope'"),
        ("get_by_usrname", "did you mean users.get_by_username?"),
        ("get", "'get' is in more than one file: attachments.get, "),
    ],
)
def test_queries_unknown_or_ambiguous_name_exits_1(name: str, message: str) -> None:
    result = run("queries", name)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


# --- explain --------------------------------------------------------------------------


def test_explain_users_get_uses_the_primary_key_with_an_existing_key(
    ims_db: Database, ims_admin_url: str
) -> None:
    who = people(ims_db, ims_admin_url)
    result = run("explain", "users.get", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    login = conninfo_to_dict(ims_admin_url)["user"]
    assert (
        lines[0] == f"-- users.get (users.sql:{loader.load('users').statements['get'].line}) :one"
    )
    assert lines[1] == (
        f"-- as role ims_app (login {login}); context: no user (row-level security shows "
        "no per-user rows; give --user ID)"
    )
    # The first existing key: alice was created first.
    assert lines[2] == (
        f"-- :user_id = '{who.alice}'  (bigint, first ims.users.user_id the context sees)"
    )
    assert lines[3] == "-- EXPLAIN: planned, not run"
    assert lines[4].startswith("Index Scan using users_pkey on users ")
    assert lines[5].strip() == f"Index Cond: (user_id = '{who.alice}'::bigint)"


def test_explain_param_overrides_the_sample(ims_admin_url: str) -> None:
    result = run("explain", "users.get", "--param", "user_id=42", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert "-- :user_id = '42'  (bigint, given)" in result.output
    assert "Index Cond: (user_id = '42'::bigint)" in result.output


def test_explain_without_rows_samples_by_type(ims_admin_url: str) -> None:
    result = run("explain", "issues.set_status", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert "-- :issue_pks = '{1}'  (bigint[], a sample bigint[])" in result.output
    assert "-- :status = 'sample'  (text, a sample text)" in result.output
    assert "Index Cond: (issue_pk = ANY ('{1}'::bigint[]))" in result.output


def test_explain_null_and_find_defaults(ims_admin_url: str) -> None:
    result = run(
        "explain", "search.issues", "--null", "product", "--param", ":query=timeout",
        "--database", ims_admin_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "-- :query = 'timeout'  (text, given)" in result.output
    assert "-- :product = NULL  (text, given)" in result.output

    result = run("explain", "users.find", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert "-- :limit = NULL  (bigint, find()'s default)" in result.output
    assert "-- :offset = '0'  (bigint, find()'s default)" in result.output
    assert "-- {filters} = TRUE, {order_by} = 1 (defaults)" in result.output


def test_explain_user_context_is_the_one_rls_applies(ims_db: Database, ims_admin_url: str) -> None:
    who = people(ims_db, ims_admin_url)
    crawl(ims_db, who.alice, 3)
    crawl(ims_db, who.bob, 1)

    def explain(*user: str) -> Result:
        result = run(
            "explain", "crawl_sessions.find", "--analyze", *user, "--database", ims_admin_url
        )
        assert result.exit_code == 0, result.output
        return result

    nobody = explain()
    assert "context: no user" in nobody.output
    assert scan_rows(nobody.output, "crawl_sessions") == 0

    alice = explain("--user", str(who.alice))
    assert f"context: user {who.alice} (alice, role user)" in alice.output
    assert scan_rows(alice.output, "crawl_sessions") == 3

    admin = explain("--user", str(who.admin))
    assert f"context: user {who.admin} (root.admin, role admin)" in admin.output
    assert scan_rows(admin.output, "crawl_sessions") == 4


def test_explain_user_is_the_sample_for_user_id(ims_db: Database, ims_admin_url: str) -> None:
    who = people(ims_db, ims_admin_url)
    result = run("explain", "users.stats", "--user", str(who.bob), "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert f"-- :user_id = '{who.bob}'  (bigint, the context's user)" in result.output


def test_explain_analyze_of_a_write_changes_nothing(ims_db: Database, ims_admin_url: str) -> None:
    who = people(ims_db, ims_admin_url)
    with psycopg.connect(ims_admin_url) as conn:
        audited = conn.execute("SELECT count(*) FROM ims.audit_log").fetchone()
    result = run(
        "explain", "users.delete", "--param", f"user_id={who.bob}", "--analyze",
        "--user", str(who.alice), "--database", ims_admin_url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "-- EXPLAIN (ANALYZE, BUFFERS): it ran, in a transaction rolled back after" in (
        result.output
    )
    assert "Delete on users" in result.output
    assert scan_rows(result.output, "users") == 1  # the row was found and deleted …
    with ims_db.session(user_id=who.alice) as s:  # … and is still there
        assert s.users.get(who.bob) is not None
    with psycopg.connect(ims_admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM ims.audit_log").fetchone() == audited


def test_explain_plans_a_statement_reading_its_files_staging_table(ims_admin_url: str) -> None:
    result = run("explain", "issues.upsert_staged", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert "Insert on issues" in result.output
    assert "Seq Scan on ims_issue_upsert_stage" in result.output


def test_explain_as_the_runtime_login(ims_app_url: str) -> None:
    result = run("explain", "users.get_by_username", "--database", ims_app_url)
    assert result.exit_code == 0, result.output
    assert "-- as role ims_app (login ims_test_app)" in result.output
    assert "-- :username = 'sample'  (text, a sample text)" in result.output
    assert "Index Scan using users_username_key on users" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users.nope"], "no statement named 'users.nope'"),
        (["users.get", "--param", "id=1"], "users.get has no parameter :id (it takes :user_id)"),
        (["issues.copy_upsert_stage"], "issues.copy_upsert_stage is a COPY statement"),
        (["issues.create_upsert_stage"], "issues.create_upsert_stage is a CREATE statement"),
    ],
)
def test_explain_refusals_exit_1(ims_admin_url: str, args: list[str], message: str) -> None:
    result = run("explain", *args, "--database", ims_admin_url)
    assert result.exit_code == 1
    assert message in result.output


def test_explain_malformed_param_is_a_usage_error(ims_admin_url: str) -> None:
    result = run("explain", "users.get", "--param", "user_id", "--database", ims_admin_url)
    assert result.exit_code == 2
    assert "'user_id' is not NAME=VALUE" in result.output


# --- check ----------------------------------------------------------------------------


def test_check_passes_on_the_migrated_schema(ims_admin_url: str) -> None:
    result = run("check", "--database", ims_admin_url)
    assert result.output.splitlines() == [
        f"{len(every_statement())} statements OK (checked as role ims_app)",
        "row-level security OK: tables, policies, definer functions, grants of ims_app",
    ]
    assert result.exit_code == 0


def test_check_fails_with_file_and_line_when_the_schema_changed(ims_admin_url: str) -> None:
    with psycopg.connect(ims_admin_url) as conn:
        conn.execute("ALTER TABLE ims.users RENAME COLUMN full_name TO display_name")
    result = run("check", "--database", ims_admin_url)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    get = loader.load("users").statements["get"]
    assert (
        f'users.sql:{get.line}: users.get: column "full_name" does not exist (line 1 of its SQL)'
        in lines
    )
    reported = {line.split(": ")[1] for line in lines if "full_name" in line}
    writers = {"users.create", "users.update"}
    readers = {"users.get", "users.get_by_username", "users.find", "users.with_sessions"}
    assert readers | writers <= reported
    problems = [line for line in lines if re.match(r"\w+\.sql:\d+: ", line)]
    assert lines[-1] == (
        f"Error: {len(problems)} problem(s) in {len(every_statement())} statements and the "
        "schema (checked statements, security as role ims_app)"
    )


def test_check_and_explain_refuse_a_login_outside_the_runtime_role(ims_admin_url: str) -> None:
    name = new_role_name("ims_t_outsider")
    with psycopg.connect(ims_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        outsider = make_conninfo(ims_admin_url, user=name)
        result = run("check", "--database", outsider)
        assert result.exit_code == 1
        assert f"login {name!r} is neither a superuser nor a member" in result.output
        result = run("explain", "users.get", "--database", outsider)
        assert result.exit_code == 1
        assert 'permission denied to set role "ims_app"' in result.output
    finally:
        drop_role(name)
