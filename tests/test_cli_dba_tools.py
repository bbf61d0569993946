"""The DBA's machine-readable tools: ``explain --format json``, ``queries --format json``,
shell completion of statement names, ``check --citus`` (services/citus_checks.py) and
``break-lock`` (services/migration_lock.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
from click.shell_completion import ShellComplete
from click.testing import CliRunner, Result

from ims_repo.core import loader
from ims_repo.faces.cli import main
from ims_repo.services import migrations
from ims_repo.services.citus_checks import check_distribution


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- explain / queries --format json -----------------------------------------------------


def test_explain_json_is_explains_own_document_on_stdout(ims_admin_url: str) -> None:
    result = run(
        "explain",
        "crawl_sessions.list_for_user",
        "--user",
        "1",
        "--format",
        "json",
        "--database",
        ims_admin_url,
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # the circumstances went to stderr
    assert isinstance(document, list)
    assert set(document[0]) >= {"Plan"}
    assert "Node Type" in document[0]["Plan"]
    assert "-- as role ims_app" in result.stderr


def test_explain_analyze_json_carries_actual_figures(ims_admin_url: str) -> None:
    result = run(
        "explain", "users.get", "--analyze", "--format", "json", "--database", ims_admin_url
    )
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert "Actual Rows" in entry["Plan"]
    assert "Execution Time" in entry


def test_queries_json_lists_every_statement() -> None:
    result = run("queries", "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    every = [s for f in loader.packaged_files() for s in f.statements.values()]
    assert [item["name"] for item in document] == [s.label for s in every]
    get = loader.load("users").statements["get"]
    assert document[[item["name"] for item in document].index("users.get")] == {
        "name": "users.get",
        "file": "users.sql",
        "line": get.line,
        "kind": "one",
        "doc": get.doc,
        "params": ["user_id"],
        "slots": [],
        "read_only": True,
        "sql": get.sql,
    }
    one = json.loads(run("queries", "users.get", "--format", "json").stdout)
    assert one["name"] == "users.get"


# --- shell completion ---------------------------------------------------------------------


def completions(args: list[str], incomplete: str) -> list[str]:
    complete = ShellComplete(main, {}, "ims-repo", "_IMS_REPO_COMPLETE")
    return [item.value for item in complete.get_completions(args, incomplete)]


def test_statement_names_complete() -> None:
    users = loader.load("users").statements
    assert completions(["explain"], "users.get") == sorted(
        f"users.{name}" for name in users if name.startswith("get")
    )
    # a bare name only one file has completes too; one several files have does not
    assert "get_by_username" in completions(["queries"], "get_by")
    assert "get" not in completions(["queries"], "ge")
    assert completions(["explain"], "no_such") == []


def test_completion_through_the_shell_protocol() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ims_repo"],
        env={
            "_IMS_REPO_COMPLETE": "bash_complete",
            "COMP_WORDS": "ims-repo explain users.get_b",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == ["plain,users.get_by_username"]


# --- check --citus ------------------------------------------------------------------------

# What docs/SCALING.md lists as multi-shard under the user_id distribution.
PACKAGED_MULTI_SHARD = {
    "crawl_sessions.delete",
    "crawl_sessions.duration_stats",
    "crawl_sessions.find",
    "crawl_sessions.get",
    "crawl_sessions.get_by_uuid",
    "crawl_sessions.issues",
    "crawl_sessions.metadata_contains",
    "crawl_sessions.update",
    "crawl_sessions.with_metadata_key",
    "imports.link_issues",
    "issues.sessions",
    "search_queries.delete",
    "search_queries.find",
    "search_queries.get",
    "session_errors.delete",
    "session_errors.delete_by_severity",
    "session_errors.find",
    "session_errors.for_session",
    "session_errors.get",
    "session_issues.find",
    "session_issues.for_session",
    "session_issues.get",
    "session_issues.link",
    "session_issues.link_many",
    "session_issues.unlink",
}


def test_citus_flags_the_packaged_statements_the_doc_lists() -> None:
    flagged = {problem.statement for problem in check_distribution()}
    assert flagged == PACKAGED_MULTI_SHARD
    scaling = (Path(__file__).parents[1] / "docs" / "SCALING.md").read_text(encoding="utf-8")
    assert all(f"`{label}`" in scaling for label in PACKAGED_MULTI_SHARD)
    # routed by user_id: kept single-shard
    assert {"crawl_sessions.list_for_user", "crawl_sessions.create", "analytics.daily"}.isdisjoint(
        flagged
    )


def test_citus_flags_an_application_statement_with_file_and_line(
    tmp_path: Path, ims_admin_url: str
) -> None:
    path = tmp_path / "app.sql"
    path.write_text(
        textwrap.dedent(
            """\
            -- An application's statements.

            -- name: recent_errors :many
            -- Every recent error, whoever's (multi-shard).
            SELECT e.error_id, e.error_message
            FROM ims.session_errors AS e
            WHERE e.occurred_at > :since;

            -- name: my_errors :many
            -- One user's errors (one shard).
            SELECT e.error_id, e.error_message
            FROM ims.session_errors AS e
            WHERE e.user_id = :user_id
              AND e.occurred_at > :since;
            """
        ),
        encoding="utf-8",
    )
    problems = check_distribution([loader.QueryFile(path)])
    assert [str(p) for p in problems] == [
        "app.sql:3: app.recent_errors: SELECT on ims.session_errors (line 2 of its SQL) "
        "neither filters nor joins it on user_id: multi-shard when distributed by user_id"
    ]
    result = run("check", "--citus", "--file", str(path), "--database", ims_admin_url)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert str(problems[0]) in lines
    assert not any("app.my_errors" in line for line in lines)
    assert any(line.startswith("crawl_sessions.sql:") for line in lines)  # packaged too


# --- break-lock ---------------------------------------------------------------------------

CRASH = """
import os, sys
from yoyo import get_backend
backend = get_backend(sys.argv[1], migration_table="_yoyo_migration")
lock = backend.lock()       # kept referenced: collecting it would release the lock
lock.__enter__()             # the lock row is committed, as in migrate()
print(os.getpid(), flush=True)
os._exit(1)                  # killed mid-migration: the row stays
"""


def test_break_lock_removes_the_lock_of_a_crashed_run(ims_admin_url: str) -> None:
    result = run("break-lock", "--database", ims_admin_url)
    assert result.exit_code == 1
    assert "no migration lock is held: nothing to break" in result.output

    crashed = subprocess.run(
        [sys.executable, "-c", CRASH, migrations._yoyo_uri(ims_admin_url)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == 1, crashed.stderr
    pid = int(crashed.stdout)
    with psycopg.connect(ims_admin_url) as conn:
        assert conn.execute("SELECT pid FROM yoyo_lock").fetchall() == [(pid,)]

    status = run("status", "--database", ims_admin_url)
    assert status.output.splitlines()[-1].startswith(f"locked by process {pid} since ")
    assert status.output.rstrip().endswith("(if that run has died: ims-repo break-lock)")

    result = run("break-lock", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"removed the migration lock held by process {pid} since ")
    assert result.output.rstrip().endswith(" UTC")
    with psycopg.connect(ims_admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone() == (0,)
    # and migrations run again without waiting for the lock
    assert run("migrate", "--database", ims_admin_url).exit_code == 0
    assert "locked by" not in run("status", "--database", ims_admin_url).output
