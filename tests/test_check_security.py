"""``ims-repo check``, RLS-aware (services/security_checks.py), and ``check --plans``
(services/plan_checks.py): each rule is broken on purpose in the per-test database and
the check must name what broke; the migrated schema passes."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from click.testing import CliRunner, Result

from ims_repo.core import loader
from ims_repo.core.sql_refs import references
from ims_repo.faces.cli import main
from ims_repo.services.plan_checks import check_plans
from ims_repo.services.security_checks import Finding, check_security

OWN_ROWS = "user_id BETWEEN (SELECT ims.rls_min_user_id()) AND (SELECT ims.rls_max_user_id())"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def alter(url: str, *statements: str) -> None:
    """Change the test database as its owner would (the superuser login)."""
    with psycopg.connect(url) as conn:
        for statement in statements:
            conn.execute(statement)


def findings(url: str) -> list[Finding]:
    return check_security(url)


def test_the_migrated_schema_passes_every_check(ims_admin_url: str) -> None:
    assert findings(ims_admin_url) == []
    result = run("check", "--plans", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "row-level security OK: tables, policies, definer functions, grants of ims_app",
        "plans OK: no statement reads a whole user-owned table for an ordinary user",
    ]


def test_rls_not_forced_fails_naming_the_table(ims_admin_url: str) -> None:
    alter(ims_admin_url, "ALTER TABLE ims.crawl_sessions NO FORCE ROW LEVEL SECURITY")
    result = run("check", "--database", ims_admin_url)
    assert result.exit_code == 1
    assert (
        "ims.crawl_sessions: row-level security is not forced (FORCE ROW LEVEL SECURITY): "
        "its owner, and what runs as the owner, bypass the policies"
    ) in result.output.splitlines()
    assert result.output.splitlines()[-1].startswith("Error: 1 problem(s) in ")


def test_rls_disabled_fails(ims_admin_url: str) -> None:
    alter(ims_admin_url, "ALTER TABLE ims.audit_log DISABLE ROW LEVEL SECURITY")
    assert Finding("rls", "ims.audit_log", "row-level security is not enabled") in findings(
        ims_admin_url
    )


def test_a_policy_without_with_check_fails(ims_admin_url: str) -> None:
    alter(
        ims_admin_url,
        "DROP POLICY crawl_sessions_app_own_rows ON ims.crawl_sessions",
        f"CREATE POLICY crawl_sessions_app ON ims.crawl_sessions FOR ALL TO ims_app "
        f"USING ({OWN_ROWS})",
    )
    where = "policy crawl_sessions_app on ims.crawl_sessions"
    assert findings(ims_admin_url) == [
        Finding("policy", where, "has no WITH CHECK expression (INSERT)"),
        Finding("policy", where, "has no WITH CHECK expression (UPDATE)"),
    ]


def test_a_missing_policy_fails_for_each_command_granted(ims_admin_url: str) -> None:
    alter(ims_admin_url, "DROP POLICY search_queries_app_own_rows ON ims.search_queries")
    assert findings(ims_admin_url) == [
        Finding(
            "policy",
            "ims.search_queries",
            f"ims_app may {command} but no permissive policy for {command} applies to it",
        )
        for command in ("SELECT", "INSERT", "DELETE")  # search_queries has no UPDATE grant
    ]


def test_a_policy_to_public_that_lets_every_row_through_fails(ims_admin_url: str) -> None:
    alter(ims_admin_url, "CREATE POLICY leak ON ims.session_errors FOR SELECT USING (TRUE)")
    assert findings(ims_admin_url) == [
        Finding(
            "policy",
            "policy leak on ims.session_errors",
            "USING (true) does not compare user_id with the context",
        )
    ]


def test_a_context_read_per_row_fails(ims_admin_url: str) -> None:
    per_row = "user_id = nullif(current_setting('ims.current_user_id', true), '')::bigint"
    once = f"user_id = (SELECT {per_row.split(' = ', 1)[1]})"
    alter(
        ims_admin_url,
        "DROP POLICY analytics_daily_app_own_rows ON ims.analytics_daily",
        f"CREATE POLICY analytics_daily_app ON ims.analytics_daily FOR ALL TO ims_app "
        f"USING ({per_row}) WITH CHECK ({once})",
    )
    found = findings(ims_admin_url)
    assert [(f.check, f.object) for f in found] == [
        ("context", "policy analytics_daily_app on ims.analytics_daily")
    ]
    assert found[0].message.startswith("USING (")
    assert found[0].message.endswith(
        "calls current_setting() outside a (SELECT …) sub-query: it is evaluated for every "
        "row instead of once per statement"
    )


def test_a_definer_function_without_search_path_fails(ims_admin_url: str) -> None:
    alter(
        ims_admin_url,
        "SET ROLE ims_owner",
        "CREATE FUNCTION ims.touch(bigint) RETURNS bigint LANGUAGE sql SECURITY DEFINER "
        "AS 'SELECT $1'",
        "REVOKE EXECUTE ON FUNCTION ims.touch(bigint) FROM PUBLIC",
        "CREATE FUNCTION ims.pinned() RETURNS int LANGUAGE sql SECURITY DEFINER "
        "SET search_path = pg_catalog, ims AS 'SELECT 1'",
        "REVOKE EXECUTE ON FUNCTION ims.pinned() FROM PUBLIC",
    )
    assert findings(ims_admin_url) == [
        Finding(
            "definer",
            "function ims.touch(bigint)",
            "is SECURITY DEFINER without a fixed search_path "
            "(add SET search_path = pg_catalog, ims)",
        )
    ]


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (
            "GRANT UPDATE ON ims.search_queries TO ims_app",
            Finding(
                "grant",
                "ims.search_queries",
                "ims_app has UPDATE, which no named statement needs "
                "(they need: DELETE, INSERT, SELECT)",
            ),
        ),
        (
            "GRANT TRUNCATE ON ims.issues TO ims_app",
            Finding(
                "grant",
                "ims.issues",
                "ims_app has TRUNCATE: TRUNCATE bypasses row-level security and the audit triggers",
            ),
        ),
        (
            "GRANT DELETE ON ims.audit_log TO PUBLIC",
            Finding(
                "grant",
                "ims.audit_log",
                "ims_app has DELETE: audit rows are written by the owner's trigger and never "
                "changed by the runtime",
            ),
        ),
        (
            "GRANT UPDATE (role) ON ims.users TO ims_app",
            Finding(
                "grant",
                "ims.users.role",
                "ims_app may UPDATE it: only the owner makes or unmakes an admin",
            ),
        ),
        (
            "GRANT EXECUTE ON FUNCTION ims.audit_changes() TO ims_app",
            Finding(
                "grant",
                "function ims.audit_changes",
                "ims_app has EXECUTE, which no named statement or policy needs",
            ),
        ),
        (
            "GRANT CREATE ON SCHEMA ims TO ims_app",
            Finding("grant", "schema ims", "ims_app has CREATE on it"),
        ),
    ],
)
def test_an_extra_grant_fails(ims_admin_url: str, grant: str, expected: Finding) -> None:
    alter(ims_admin_url, grant)
    found = findings(ims_admin_url)
    assert expected in found
    # nothing else, but for a write on audit_log also the missing policy for it
    assert {f.object for f in found} == {expected.object}


def test_a_view_that_is_not_security_invoker_fails(ims_admin_url: str) -> None:
    alter(ims_admin_url, "ALTER VIEW ims.issues_with_crawls RESET (security_invoker)")
    assert [(f.check, f.object) for f in findings(ims_admin_url)] == [
        ("view", "ims.issues_with_crawls")
    ]


def test_plans_catch_a_statement_no_index_serves(ims_admin_url: str) -> None:
    alter(ims_admin_url, "DROP INDEX ims.session_errors_user_id_occurred_at_idx")
    find = loader.load("session_errors").statements["find"]
    result = run("check", "--plans", "--database", ims_admin_url)
    assert result.exit_code == 1
    assert (
        f"session_errors.sql:{find.line}: session_errors.find: reads all of "
        "ims.session_errors through index session_errors_pkey (no Index Cond): no index "
        "serves its conditions for user 0"
    ) in result.output.splitlines()
    # without --plans the same schema passes: the plan check is what found it
    assert run("check", "--database", ims_admin_url).exit_code == 0


def test_plans_catch_a_sequential_scan(ims_admin_url: str) -> None:
    # analytics_monthly's only index is its primary key (user_id, month): without it
    # nothing but a sequential scan can read the table.
    alter(ims_admin_url, "ALTER TABLE ims.analytics_monthly DROP CONSTRAINT analytics_monthly_pkey")
    problems = check_plans(ims_admin_url, [loader.load("analytics")], user_id=5)
    monthly = loader.load("analytics").statements["monthly"]
    assert [(p.location, p.statement) for p in problems] == [
        (monthly.location, "analytics.monthly")
    ]
    assert problems[0].message.startswith("reads all of ims.analytics_monthly (Seq Scan")


def test_check_json_is_a_stable_document(ims_admin_url: str) -> None:
    result = run("check", "--format", "json", "--database", ims_admin_url)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    count = sum(len(f.statements) for f in loader.packaged_files())
    assert document == {
        "ok": True,
        "role": "ims_app",
        "checks": ["statements", "security"],
        "statements": count,
        "problems": [],
    }
    alter(
        ims_admin_url,
        "ALTER TABLE ims.crawl_sessions NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE ims.users RENAME COLUMN full_name TO display_name",
    )
    result = run("check", "--format", "json", "--database", ims_admin_url)
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False
    problems = document["problems"]
    assert all(set(p) == {"check", "location", "object", "message"} for p in problems)
    get = loader.load("users").statements["get"]
    assert {
        "check": "statement",
        "location": f"users.sql:{get.line}",
        "object": "users.get",
        "message": 'column "full_name" does not exist (line 1 of its SQL)',
    } in problems
    assert [p["object"] for p in problems if p["check"] == "rls"] == ["ims.crawl_sessions"]
    assert all(
        re.fullmatch(r"\w+\.sql:\d+", p["location"]) for p in problems if p["check"] == "statement"
    )


def test_check_runs_as_a_runtime_login(ims_app_url: str) -> None:
    # the catalogs and has_*_privilege('ims_app', …) are readable without any ownership
    result = run("check", "--plans", "--database", ims_app_url)
    assert result.exit_code == 0, result.output


def test_a_locking_clause_needs_update_on_the_tables_it_locks() -> None:
    """``SELECT … FOR UPDATE`` (0011's refresh takes its stale rows so) needs UPDATE on
    what it locks: every table read before it in its statement, or those ``OF`` names."""
    refresh = references(
        "DELETE FROM ims.issue_search_stale AS s WHERE s.issue_pk IN ("
        "SELECT t.issue_pk FROM ims.issue_search_stale AS t FOR UPDATE SKIP LOCKED); "
        "SELECT 1 FROM ims.issues"
    )
    assert ("issue_search_stale", "UPDATE") in refresh.privileges()
    assert ("issues", "UPDATE") not in refresh.privileges()
    joined = references("SELECT 1 FROM ims.users AS u JOIN ims.issues AS i ON true FOR SHARE OF i")
    assert ("issues", "UPDATE") in joined.privileges()
    assert ("users", "UPDATE") not in joined.privileges()
