"""The yoyo migrations and the runner in ims_repo.services.migrations, against a real server."""

from __future__ import annotations

import itertools
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from _scratch import drop_role, new_role_name, scratch_database, url_for
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import ims_repo
from ims_repo.services import migrations

ALL_IDS = [
    "0001.roles",
    "0002.tables",
    "0003.rls",
    "0004.functions",
    "0005.audit",
    "0006.search",
    "0007.issue_crawls",
    "0008.page_indexes",
    "0009.search_ranking",
    "0010.lean_writes",
    "0011.lazy_rank_bounds",
    "0012.search_backlog",
    "0013.phrase_gaps",
]

TABLES = [
    "users",
    "crawl_sessions",
    "issues",
    "issue_crawls",
    "issue_search_bounds",
    "issue_search_stale",
    "session_issues",
    "issue_comments",
    "issue_history",
    "attachments",
    "search_queries",
    "session_errors",
    "analytics_daily",
    "analytics_monthly",
    "audit_log",
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def db() -> Iterator[str]:
    """An empty scratch database; yields its connection string (superuser)."""
    with scratch_database() as name:
        yield url_for(name)


# --------------------------------------------------------------------------- helpers

# Everything a migration can create or change in schema ims, one text line per
# object: tables (owner, RLS flags, ACL), columns (type, default, identity,
# generation, ACL), constraints, indexes, policies, functions (definition,
# owner, ACL), triggers, comments, the extension, the schema itself, and the
# database-level privileges of the two roles (0001 grants one).
SNAPSHOT_SQL = """
SELECT 'database privilege ' || a.grantee::regrole::text || ' ' || a.privilege_type
FROM pg_database AS d
CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a
WHERE d.datname = current_database()
  AND a.grantee::regrole::text IN ('ims_owner', 'ims_app')
UNION ALL
SELECT 'schema ' || n.nspname || ' owner=' || pg_get_userbyid(n.nspowner)
       || ' acl=' || coalesce(n.nspacl::text, '')
FROM pg_namespace AS n
WHERE n.nspname = 'ims'
UNION ALL
SELECT 'extension ' || e.extname || ' ' || e.extversion || ' schema=' || e.extnamespace::regnamespace
       || ' owner=' || pg_get_userbyid(e.extowner)
FROM pg_extension AS e
WHERE e.extnamespace = to_regnamespace('ims')
UNION ALL
SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' owner=' || pg_get_userbyid(c.relowner)
       || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
       || ' acl=' || coalesce(c.relacl::text, '')
       || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class AS c
WHERE c.relnamespace = to_regnamespace('ims')
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' ident=' || a.attidentity::text || ' gen=' || a.attgenerated::text
       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
       || ' acl=' || coalesce(a.attacl::text, '')
       || ' comment=' || coalesce(col_description(c.oid, a.attnum), '')
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = to_regnamespace('ims')
  AND c.relkind IN ('r', 'p')
  AND a.attnum > 0
  AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE connamespace = to_regnamespace('ims')
UNION ALL
SELECT 'index ' || indexdef
FROM pg_indexes
WHERE schemaname = 'ims'
UNION ALL
SELECT 'policy ' || tablename || ' ' || policyname || ' ' || permissive || ' ' || cmd
       || ' roles=' || roles::text || ' using=' || coalesce(qual, '')
       || ' check=' || coalesce(with_check, '')
FROM pg_policies
WHERE schemaname = 'ims'
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' owner=' || pg_get_userbyid(p.proowner)
       || ' acl=' || coalesce(p.proacl::text, '')
       || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
       || ' def=' || pg_get_functiondef(p.oid)
FROM pg_proc AS p
WHERE p.pronamespace = to_regnamespace('ims')
  AND p.prokind IN ('f', 'p')
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid)
FROM pg_trigger AS t
JOIN pg_class AS c ON c.oid = t.tgrelid
WHERE c.relnamespace = to_regnamespace('ims')
  AND NOT t.tgisinternal
ORDER BY 1
"""


def snapshot(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(SNAPSHOT_SQL).fetchall()]


def pg_dump_schema(url: str) -> str | None:
    """``pg_dump --schema-only --schema=ims``, minus per-run noise; None without pg_dump."""
    if shutil.which("pg_dump") is None:
        return None
    out = subprocess.run(
        ["pg_dump", "--schema-only", "--schema=ims", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # pg_dump >= 15.14 brackets its output with a random \restrict key.
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def database_acl(url: str) -> list[tuple[str, str, str]]:
    """The database's effective privileges (NULL ACL expanded to the defaults)."""
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                """
                SELECT a.grantor::regrole::text, a.grantee::regrole::text, a.privilege_type
                FROM pg_database AS d
                CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a
                WHERE d.datname = current_database()
                ORDER BY 1, 2, 3
                """
            )
        ]


def has_schema_ims(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regnamespace('ims') IS NOT NULL").fetchone()
        assert row is not None
        return bool(row[0])


# Objects in schema ims not owned by ims_owner, leaving out members of an
# extension (pg_trgm's functions, operators and operator classes belong to the
# extension; PostgreSQL gives them to the bootstrap superuser when a trusted
# extension is created by a non-superuser).
FOREIGN_OWNED_SQL = """
WITH objects (kind, classid, objid, name, owner) AS (
    SELECT 'schema', 'pg_namespace'::regclass, n.oid, n.nspname::text, n.nspowner
    FROM pg_namespace AS n WHERE n.nspname = 'ims'
    UNION ALL
    SELECT 'relation', 'pg_class'::regclass, c.oid, c.relname::text, c.relowner
    FROM pg_class AS c WHERE c.relnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'function', 'pg_proc'::regclass, p.oid, p.proname::text, p.proowner
    FROM pg_proc AS p WHERE p.pronamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'type', 'pg_type'::regclass, t.oid, t.typname::text, t.typowner
    FROM pg_type AS t WHERE t.typnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'operator', 'pg_operator'::regclass, o.oid, o.oprname::text, o.oprowner
    FROM pg_operator AS o WHERE o.oprnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'opclass', 'pg_opclass'::regclass, oc.oid, oc.opcname::text, oc.opcowner
    FROM pg_opclass AS oc WHERE oc.opcnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'opfamily', 'pg_opfamily'::regclass, f.oid, f.opfname::text, f.opfowner
    FROM pg_opfamily AS f WHERE f.opfnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'collation', 'pg_collation'::regclass, co.oid, co.collname::text, co.collowner
    FROM pg_collation AS co WHERE co.collnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'statistics', 'pg_statistic_ext'::regclass, s.oid, s.stxname::text, s.stxowner
    FROM pg_statistic_ext AS s WHERE s.stxnamespace = 'ims'::regnamespace
    UNION ALL
    SELECT 'extension', 'pg_extension'::regclass, e.oid, e.extname::text, e.extowner
    FROM pg_extension AS e WHERE e.extnamespace = 'ims'::regnamespace
)
SELECT o.kind, o.name, pg_get_userbyid(o.owner)
FROM objects AS o
WHERE pg_get_userbyid(o.owner) <> 'ims_owner'
  AND NOT EXISTS (
      -- a member of an extension, or internal to one (pg_trgm's array type _gtrgm)
      SELECT FROM pg_depend AS d
      WHERE d.classid = o.classid AND d.objid = o.objid
        AND (d.deptype = 'e'
             OR (d.deptype = 'i'
                 AND EXISTS (
                     SELECT FROM pg_depend AS m
                     WHERE m.classid = d.refclassid AND m.objid = d.refobjid
                       AND m.deptype = 'e'
                 )))
  )
ORDER BY 1, 2
"""


def foreign_owned(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(FOREIGN_OWNED_SQL).fetchall()]


# --------------------------------------------------------------------------- tests


def test_migrations_path_is_the_checkout_directory() -> None:
    path = migrations.migrations_path()
    assert path.name == "migrations"
    ids = sorted(p.name.removesuffix(".sql") for p in path.glob("*.sql"))
    assert [i for i in ids if not i.endswith(".rollback")] == ALL_IDS
    # every migration has its rollback
    assert sorted(i.removesuffix(".rollback") for i in ids if i.endswith(".rollback")) == ALL_IDS


def test_migrations_path_in_an_installed_package(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed wheel: no migrations/ next to the package, the files are the
    # package ims_repo._migrations (a namespace package: no __init__.py).
    package = tmp_path / "site-packages" / "ims_repo"
    packaged = package / "_migrations"
    shutil.copytree(migrations.migrations_path(), packaged)
    monkeypatch.setattr(migrations, "__file__", str(package / "services" / "migrations.py"))
    monkeypatch.setattr(ims_repo, "__path__", [str(package)])
    monkeypatch.delitem(sys.modules, "ims_repo._migrations", raising=False)
    try:
        assert migrations.migrations_path() == packaged
    finally:
        sys.modules.pop("ims_repo._migrations", None)


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMS_DATABASE_URL", "postgresql://env/db")
    assert migrations.database_url("postgresql://explicit/db") == "postgresql://explicit/db"
    assert migrations.database_url(None) == "postgresql://env/db"
    monkeypatch.delenv("IMS_DATABASE_URL")
    assert migrations.database_url(None) == ""


def test_migrate_applies_all_then_is_a_no_op(db: str) -> None:
    assert migrations.status(db) == [(i, False) for i in ALL_IDS]
    # status is read-only: it created no yoyo bookkeeping tables
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%yoyo%'"
        ).fetchone() == (0,)

    assert migrations.migrate(db) == ALL_IDS
    assert migrations.status(db) == [(i, True) for i in ALL_IDS]
    before = snapshot(db)
    dump_before = pg_dump_schema(db)

    assert migrations.migrate(db) == []
    assert migrations.status(db) == [(i, True) for i in ALL_IDS]
    assert snapshot(db) == before
    assert pg_dump_schema(db) == dump_before

    with psycopg.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'ims' ORDER BY 1"
            )
        ]
    assert tables == sorted(TABLES)


def test_rollback_all_then_migrate_gives_the_identical_schema(db: str) -> None:
    acl_before = database_acl(db)
    migrations.migrate(db)
    before = snapshot(db)
    dump_before = pg_dump_schema(db)
    assert len(before) > 300  # the snapshot really covers the schema

    assert migrations.rollback(db, None) == list(reversed(ALL_IDS))
    assert migrations.status(db) == [(i, False) for i in ALL_IDS]
    assert not has_schema_ims(db)
    assert snapshot(db) == []
    # 0001's per-database grant is undone ...
    assert database_acl(db) == acl_before
    # ... but the cluster-wide roles stay (other databases may use them).
    with psycopg.connect(db) as conn:
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('ims_owner', 'ims_app') ORDER BY 1"
        ).fetchall()
    assert [r[0] for r in roles] == ["ims_app", "ims_owner"]

    assert migrations.migrate(db) == ALL_IDS
    assert snapshot(db) == before
    assert pg_dump_schema(db) == dump_before


def test_rollback_one_at_a_time_undoes_exactly_that_file(db: str) -> None:
    # Roll back one file at a time from the top: every step changes something
    # and the last leaves nothing; re-applying restores the identical schema,
    # and a partial rollback reaches the same state as the stepwise one.
    migrations.migrate(db)
    full = snapshot(db)
    states = [full]
    for expected in reversed(ALL_IDS):
        assert migrations.rollback(db) == [expected]
        states.append(snapshot(db))
    assert migrations.rollback(db) == []  # nothing left
    # every step removed something, and the last left nothing
    assert all(a != b for a, b in itertools.pairwise(states))
    assert states[-1] == []
    assert states[-2] == ["database privilege ims_owner CREATE"]

    assert migrations.migrate(db) == ALL_IDS
    assert snapshot(db) == full

    # Back to before 0004, whatever came after it (later migrations are rolled back too).
    after_0003 = ALL_IDS[ALL_IDS.index("0004.functions") :]
    assert migrations.rollback(db, count=len(after_0003)) == list(reversed(after_0003))
    assert snapshot(db) == states[len(after_0003)]
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%audit%'"
        ).fetchone() == (0,)
    assert migrations.migrate(db) == after_0003
    assert snapshot(db) == full


def test_rollback_refuses_a_negative_count(db: str) -> None:
    with pytest.raises(ValueError, match="count"):
        migrations.rollback(db, -1)


def test_every_object_in_ims_is_owned_by_ims_owner(db: str) -> None:
    migrations.migrate(db)
    assert foreign_owned(db) == []
    with psycopg.connect(db) as conn:
        # the exception above really is pg_trgm's members, and only them
        members = conn.execute(
            """
            SELECT count(*)
            FROM pg_proc AS p
            JOIN pg_depend AS d
              ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
            JOIN pg_extension AS e ON e.oid = d.refobjid
            WHERE p.pronamespace = 'ims'::regnamespace AND e.extname = 'pg_trgm'
            """
        ).fetchone()
        assert members is not None and members[0] > 10
        owner = conn.execute(
            "SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'pg_trgm'"
        ).fetchone()
        assert owner == ("ims_owner",)
        # yoyo's bookkeeping stays outside schema ims, with the connecting user
        yoyo = conn.execute(
            "SELECT DISTINCT schemaname FROM pg_tables WHERE tablename LIKE '%yoyo%'"
        ).fetchall()
        assert yoyo == [("public",)]


def test_a_non_superuser_member_of_ims_owner_can_migrate_and_ownership_holds() -> None:
    # Roles must exist first (only a role creator can make them).
    with scratch_database() as first:
        migrations.migrate(url_for(first))
    migrator = new_role_name("ims_t_migrator")
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(migrator)))
        conn.execute(sql.SQL("GRANT ims_owner TO {}").format(sql.Identifier(migrator)))
    try:
        with scratch_database(owner=migrator) as name:
            url = url_for(name, user=migrator)
            assert migrations.migrate(url) == ALL_IDS
            assert foreign_owned(url_for(name)) == []
            assert migrations.rollback(url, None) == list(reversed(ALL_IDS))
            assert not has_schema_ims(url)
    finally:
        drop_role(migrator)


def test_roles_are_created_idempotently_and_survive_rollback_elsewhere() -> None:
    with scratch_database() as a, scratch_database() as b:
        url_a, url_b = url_for(a), url_for(b)
        assert migrations.migrate(url_a) == ALL_IDS
        # The roles already exist now: the second database migrates all the same.
        assert migrations.migrate(url_b) == ALL_IDS
        assert migrations.rollback(url_b, None) == list(reversed(ALL_IDS))
        with psycopg.connect(url_a) as conn:
            roles = conn.execute(
                """
                SELECT rolname, rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb
                FROM pg_roles
                WHERE rolname IN ('ims_owner', 'ims_app')
                ORDER BY rolname
                """
            ).fetchall()
            assert roles == [
                ("ims_app", False, False, False, False, False),
                ("ims_owner", False, False, False, False, False),
            ]
            # database a is untouched by b's rollback
            assert conn.execute(
                "SELECT has_table_privilege('ims_app', 'ims.crawl_sessions', 'SELECT')"
            ).fetchone() == (True,)
        assert migrations.status(url_a) == [(i, True) for i in ALL_IDS]


def test_connection_string_forms(db: str) -> None:
    params = conninfo_to_dict(db)
    url = "postgresql://{user}@{host}:{port}/{dbname}".format(**params)
    yoyo_style = url.replace("postgresql://", "postgresql+psycopg://")
    expected = [(i, False) for i in ALL_IDS]
    assert migrations.status(url) == expected
    assert migrations.status(yoyo_style) == expected
    assert migrations.status(db) == expected  # key=value form


def test_pg_trgm_in_another_schema_is_refused_clearly(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_trgm WITH SCHEMA public")
    with pytest.raises(psycopg.Error, match="pg_trgm is already installed in another schema"):
        migrations.migrate(db)
    # the failed file left nothing behind
    assert not has_schema_ims(db)
    assert migrations.status(db)[1] == ("0002.tables", False)


# Exactly the runtime privileges of SPEC §3.
APP_WRITABLE = [
    "crawl_sessions",
    "issues",
    "session_issues",
    "issue_comments",
    "attachments",
    "analytics_daily",
    "analytics_monthly",
]
APP_APPEND_ONLY = ["issue_history", "search_queries", "session_errors"]  # logs: no UPDATE


def test_ims_app_has_exactly_the_runtime_privileges(db: str) -> None:
    migrations.migrate(db)
    with psycopg.connect(db) as conn:
        table_privs = {
            (r[0], r[1])
            for r in conn.execute(
                """
                SELECT table_name, privilege_type
                FROM information_schema.role_table_grants
                WHERE grantee = 'ims_app' AND table_schema = 'ims'
                """
            )
        }
        expected = {(t, p) for t in APP_WRITABLE for p in ("SELECT", "INSERT", "UPDATE", "DELETE")}
        expected |= {(t, p) for t in APP_APPEND_ONLY for p in ("SELECT", "INSERT", "DELETE")}
        expected |= {("users", p) for p in ("SELECT", "INSERT", "DELETE")}
        expected |= {("audit_log", "SELECT")}
        # crawl bookkeeping (0007): rows go with their issue (ON DELETE CASCADE)
        expected |= {("issue_crawls", p) for p in ("SELECT", "INSERT", "UPDATE")}
        expected |= {("issues_with_crawls", "SELECT")}
        # lazy rank bounds (0011): the runtime role refreshes them; stale rows come from
        # a trigger, bounds go with their issue (ON DELETE CASCADE)
        expected |= {("issue_search_bounds", p) for p in ("SELECT", "INSERT", "UPDATE")}
        expected |= {("issue_search_stale", p) for p in ("SELECT", "UPDATE", "DELETE")}
        assert table_privs == expected

        users_update = {
            r[0]
            for r in conn.execute(
                """
                SELECT column_name
                FROM information_schema.column_privileges
                WHERE grantee = 'ims_app' AND table_schema = 'ims'
                  AND table_name = 'users' AND privilege_type = 'UPDATE'
                """
            )
        }
        assert users_update == {
            "username",
            "email",
            "full_name",
            "department",
            "is_active",
            "preferences",
            "updated_at",
            "last_login_at",
        }
        assert "role" not in users_update and "user_id" not in users_update

        schema_privs = conn.execute(
            """
            SELECT has_schema_privilege('ims_app', 'ims', 'USAGE'),
                   has_schema_privilege('ims_app', 'ims', 'CREATE'),
                   has_schema_privilege('ims_app', 'public', 'CREATE'),
                   has_database_privilege('ims_app', current_database(), 'CREATE')
            """
        ).fetchone()
        assert schema_privs == (True, False, False, False)

        # No sequence privileges are needed (identity columns) nor granted.
        assert conn.execute(
            """
            SELECT count(*)
            FROM pg_class AS c
            WHERE c.relnamespace = 'ims'::regnamespace AND c.relkind = 'S'
              AND (has_sequence_privilege('ims_app', c.oid, 'USAGE')
                   OR has_sequence_privilege('ims_app', c.oid, 'UPDATE'))
            """
        ).fetchone() == (0,)

        functions = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                """
                SELECT p.oid::regprocedure::text,
                       has_function_privilege('ims_app', p.oid, 'EXECUTE'),
                       coalesce(p.proacl::text, '') ~ '(^|[{,])=X'
                FROM pg_proc AS p
                WHERE p.pronamespace = 'ims'::regnamespace
                  AND NOT EXISTS (
                      SELECT FROM pg_depend AS d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e'
                  )
                """
            )
        }
        assert functions == {
            "ims.set_current_user(bigint)": (True, False),
            "ims.current_user_id()": (True, False),
            "ims.rls_min_user_id()": (True, False),
            "ims.rls_max_user_id()": (True, False),
            "ims.get_user_stats(bigint)": (True, False),
            "ims.search_issues(text,text,integer)": (True, False),
            # 0009: the search's helpers, run by ims.search_issues as the caller
            "ims.search_tsquery(text)": (True, False),
            "ims.search_quote(text)": (True, False),
            "ims.search_impacts(tsvector)": (True, False),
            "ims.search_bigrams(text)": (True, False),
            "ims.search_operands(tsquery)": (True, False),
            "ims.search_candidates(text[],boolean[],integer[],double precision)": (True, False),
            "ims.search_estimate(tsquery,text)": (True, False),
            "ims.search_full_text(text,text,integer)": (True, False),
            "ims.search_title_text(text,text,integer,bigint[])": (True, False),
            "ims.refresh_search_bounds(integer)": (True, False),  # 0011
            # 0012: called by the refresh, maintains the bounds' tables as their owner
            "ims.maintain_search_bounds(boolean)": (True, False),
            "ims.analytics_figures(date,date)": (True, False),
            "ims.refresh_analytics(date)": (True, False),
            # the trigger functions need nobody's EXECUTE
            "ims.audit_changes()": (False, False),
            "ims.audit_issue_inserts()": (False, False),
            "ims.forget_content_hash()": (False, False),
            "ims.mark_search_stale()": (False, False),
        }

        definers = conn.execute(
            """
            SELECT p.proname, p.proconfig
            FROM pg_proc AS p
            WHERE p.pronamespace = 'ims'::regnamespace AND p.prosecdef
            """
        ).fetchall()
        assert sorted(definers) == [
            ("audit_changes", ["search_path=pg_catalog, ims"]),
            ("audit_issue_inserts", ["search_path=pg_catalog, ims"]),
            ("forget_content_hash", ["search_path=pg_catalog, ims"]),
            ("maintain_search_bounds", ["search_path=pg_catalog, ims"]),
            ("mark_search_stale", ["search_path=pg_catalog, ims"]),
        ]


def test_every_table_forces_row_level_security(db: str) -> None:
    migrations.migrate(db)
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
            FROM pg_class AS c
            WHERE c.relnamespace = 'ims'::regnamespace AND c.relkind = 'r'
            ORDER BY 1
            """
        ).fetchall()
    assert rows == [(t, True, True) for t in sorted(TABLES)]


def test_every_table_and_most_columns_are_commented(db: str) -> None:
    migrations.migrate(db)
    with psycopg.connect(db) as conn:
        uncommented = conn.execute(
            """
            SELECT c.relname
            FROM pg_class AS c
            WHERE c.relnamespace = 'ims'::regnamespace AND c.relkind = 'r'
              AND obj_description(c.oid, 'pg_class') IS NULL
            """
        ).fetchall()
        assert uncommented == []
        functions = conn.execute(
            """
            SELECT p.proname
            FROM pg_proc AS p
            WHERE p.pronamespace = 'ims'::regnamespace
              AND p.proowner = 'ims_owner'::regrole
              AND obj_description(p.oid, 'pg_proc') IS NULL
            """
        ).fetchall()
        assert functions == []
