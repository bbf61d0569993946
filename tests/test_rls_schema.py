"""Row-level security, constraints, audit and database functions, at SQL level.

Every RLS assertion runs connected as a runtime login (a LOGIN member of ims_app,
created with grant_login), never as a superuser: superusers bypass RLS. The seed data
is loaded as the superuser.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from _scratch import drop_role, new_role_name, scratch_database, url_for
from psycopg import errors

from ims_repo.services import migrations

ALICE, BOB, ROOT, CAROL = 1, 2, 3, 4  # ROOT is the admin; CAROL has no data

UTC = dt.UTC

SEED_SQL = """
INSERT INTO ims.users (user_id, username, email, role)
VALUES (1, 'alice', 'alice@example.com', 'user'),
       (2, 'bob', 'bob@example.com', 'user'),
       (3, 'root', 'root@example.com', 'admin'),
       (4, 'carol', 'carol@example.com', 'user');

INSERT INTO ims.crawl_sessions
    (session_id, user_id, product, original_query, status, started_at, duration_seconds,
     total_issues, created_at)
VALUES (10, 1, 'OpenFrame', 'timeout', 'completed', '2024-05-03 10:00Z', 60, 2, '2024-05-03 10:00Z'),
       (11, 1, 'OpenFrame', 'login', 'failed', '2024-05-03 23:30Z', 30, 1, '2024-05-03 23:30Z'),
       (12, 1, 'OpenFrame', 'later', 'pending', NULL, NULL, 0, '2024-05-20 08:00Z'),
       (20, 2, 'OpenFrame', 'korean', 'completed', '2024-05-03 12:00Z', 100, 2, '2024-05-03 12:00Z');

INSERT INTO ims.issues (issue_pk, issue_id, title, description, product, status)
VALUES (100, 'SAMPLE-001', 'Database connection timeout',
        'The pool gives up after 30 seconds.', 'OpenFrame', 'Open'),
       (101, 'SAMPLE-002', 'Login page error',
        'Fails when connecting through the proxy.', 'OpenFrame', 'Closed'),
       (102, 'SAMPLE-003', '데이터베이스 연결 오류',
        '서버 연결 이 끊어짐', 'OpenFrame', 'Open'),
       (103, 'OTHER-001', 'Connection reset by peer', NULL, 'Tmax', 'Open');

INSERT INTO ims.session_issues (session_id, issue_pk, user_id, crawl_order)
VALUES (10, 100, 1, 1), (10, 101, 1, 2), (11, 100, 1, 1),
       (20, 100, 2, 1), (20, 102, 2, 2);

INSERT INTO ims.session_errors (session_id, user_id, severity, error_type, error_message)
VALUES (10, 1, 'error', 'Timeout', 'IMS did not answer'),
       (20, 2, 'warning', 'Parse', 'odd date');

INSERT INTO ims.search_queries (user_id, session_id, query_text, result_count)
VALUES (1, 10, 'timeout', 2), (2, 20, 'korean', 2);

INSERT INTO ims.audit_log (user_id, action, table_name, record_id)
VALUES (1, 'UPDATE', 'issues', '100'), (2, 'UPDATE', 'issues', '102');

-- The identity sequences move past the fixed ids loaded above.
SELECT setval(pg_get_serial_sequence('ims.' || t, c), 1000)
FROM (VALUES ('users', 'user_id'), ('crawl_sessions', 'session_id'), ('issues', 'issue_pk'),
             ('session_errors', 'error_id'), ('search_queries', 'query_id'),
             ('audit_log', 'audit_id')) AS s (t, c);
"""

USER_OWNED = [
    "crawl_sessions",
    "session_issues",
    "search_queries",
    "session_errors",
    "analytics_daily",
    "analytics_monthly",
    "audit_log",
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    """A migrated database, cloned for each test (migrating once saves time)."""
    with scratch_database() as name:
        migrations.migrate(url_for(name))
        yield name


@pytest.fixture(scope="module")
def login(template: str) -> Iterator[str]:
    """A runtime login (LOGIN, member of ims_app), cluster-wide, for this module."""
    name = new_role_name()
    migrations.grant_login(url_for(template), name)
    yield name
    drop_role(name)


@pytest.fixture
def dbname(template: str) -> Iterator[str]:
    """A fresh migrated, seeded database for one test."""
    with scratch_database(template=template) as name:
        with psycopg.connect(url_for(name)) as conn:
            conn.execute(SEED_SQL)
        yield name


@pytest.fixture
def admin(dbname: str) -> Iterator[psycopg.Connection[Any]]:
    """Superuser connection (bypasses RLS): for arranging and checking only."""
    with psycopg.connect(url_for(dbname), autocommit=True) as conn:
        yield conn


@pytest.fixture
def app(dbname: str, login: str) -> Iterator[psycopg.Connection[Any]]:
    """The runtime login's connection; autocommit, so a statement outside
    `acting_as` runs in its own transaction, without context."""
    with psycopg.connect(url_for(dbname, user=login), autocommit=True) as conn:
        yield conn


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any], user_id: int | None
) -> Iterator[psycopg.Connection[Any]]:
    """One transaction with the RLS context set, as the application does it."""
    with conn.transaction():
        conn.execute("SELECT ims.set_current_user(%s)", (user_id,))
        yield conn


def ids(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[Any]:
    return [row[0] for row in conn.execute(query, params).fetchall()]


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------------------- sanity


def test_the_login_is_a_plain_runtime_login(app: psycopg.Connection[Any], login: str) -> None:
    row = app.execute(
        """
        SELECT current_user, r.rolsuper, r.rolbypassrls, r.rolinherit,
               pg_has_role(current_user, 'ims_app', 'MEMBER')
        FROM pg_roles AS r
        WHERE r.rolname = current_user
        """
    ).fetchone()
    assert row == (login, False, False, True, True)


def test_grant_login_is_idempotent_and_refuses_superusers(dbname: str, login: str) -> None:
    url = url_for(dbname)
    migrations.grant_login(url, login)  # again: no error
    migrations.grant_login(url, login, password="s3cret'; DROP ROLE x; --")
    with pytest.raises(ValueError, match="superuser"):
        migrations.grant_login(url, "postgres")


# --------------------------------------------------------------------------- context


def test_context_is_transaction_local(app: psycopg.Connection[Any]) -> None:
    assert scalar(app, "SELECT ims.current_user_id()") is None
    with acting_as(app, ALICE):
        assert scalar(app, "SELECT ims.current_user_id()") == ALICE
    # after commit: gone ('' internally, NULL through the function)
    assert scalar(app, "SELECT ims.current_user_id()") is None
    with pytest.raises(RuntimeError), acting_as(app, BOB):
        raise RuntimeError  # rollback
    assert scalar(app, "SELECT ims.current_user_id()") is None
    with acting_as(app, ALICE):
        app.execute("SELECT ims.set_current_user(NULL)")
        assert scalar(app, "SELECT ims.current_user_id()") is None
        assert ids(app, "SELECT session_id FROM ims.crawl_sessions") == []


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("table", USER_OWNED)
def test_no_context_sees_no_rows(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any], table: str
) -> None:
    admin.execute("SELECT ims.refresh_analytics('2024-05-03')")
    assert scalar(admin, f"SELECT count(*) FROM ims.{table}") > 0
    assert scalar(app, f"SELECT count(*) FROM ims.{table}") == 0


@pytest.mark.parametrize("table", USER_OWNED)
def test_ordinary_user_sees_own_rows_admin_sees_all(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any], table: str
) -> None:
    admin.execute("SELECT ims.refresh_analytics('2024-05-03')")
    everyone = sorted(set(ids(admin, f"SELECT user_id FROM ims.{table} WHERE user_id IS NOT NULL")))
    assert everyone == [ALICE, BOB]
    with acting_as(app, ALICE):
        assert set(ids(app, f"SELECT user_id FROM ims.{table}")) == {ALICE}
    with acting_as(app, BOB):
        assert set(ids(app, f"SELECT user_id FROM ims.{table}")) == {BOB}
    with acting_as(app, CAROL):
        assert ids(app, f"SELECT user_id FROM ims.{table}") == []
    with acting_as(app, ROOT):
        assert sorted(set(ids(app, f"SELECT user_id FROM ims.{table}"))) == [ALICE, BOB]
    # a context naming no user sees nothing
    with acting_as(app, 999):
        assert ids(app, f"SELECT user_id FROM ims.{table}") == []


def test_shared_tables_are_readable_by_everyone(app: psycopg.Connection[Any]) -> None:
    with acting_as(app, ALICE):
        assert scalar(app, "SELECT count(*) FROM ims.users") == 4
        assert scalar(app, "SELECT count(*) FROM ims.issues") == 4
    # even without context
    assert scalar(app, "SELECT count(*) FROM ims.issues") == 4


# --------------------------------------------------------------------------- writing


def test_writing_for_another_user_is_refused(app: psycopg.Connection[Any]) -> None:
    statements = [
        "INSERT INTO ims.crawl_sessions (user_id, product, original_query) VALUES (2, 'p', 'q')",
        "INSERT INTO ims.search_queries (user_id, query_text) VALUES (2, 'q')",
        "INSERT INTO ims.session_errors (session_id, user_id, error_type, error_message)"
        " VALUES (20, 2, 't', 'm')",
        "INSERT INTO ims.session_issues (session_id, issue_pk, user_id) VALUES (20, 101, 2)",
        "INSERT INTO ims.analytics_daily (user_id, stat_date) VALUES (2, '2024-01-01')",
        "INSERT INTO ims.analytics_monthly (user_id, month) VALUES (2, '2024-01-01')",
        # moving an own row to another user
        "UPDATE ims.crawl_sessions SET user_id = 2 WHERE session_id = 12",
    ]
    for statement in statements:
        with pytest.raises(errors.InsufficientPrivilege), acting_as(app, ALICE):
            app.execute(statement)
    # without context nothing can be written either
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO ims.crawl_sessions (user_id, product, original_query) VALUES (1, 'p', 'q')"
        )


def test_other_users_rows_cannot_be_updated_or_deleted(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, ALICE):
        assert app.execute("UPDATE ims.crawl_sessions SET status = 'cancelled'").rowcount == 3
        assert app.execute("DELETE FROM ims.session_errors").rowcount == 1
        assert app.execute("DELETE FROM ims.crawl_sessions WHERE session_id = 20").rowcount == 0
    assert scalar(admin, "SELECT status FROM ims.crawl_sessions WHERE session_id = 20") == (
        "completed"
    )
    assert ids(admin, "SELECT user_id FROM ims.session_errors") == [BOB]


def test_own_writes_work_and_identity_defaults_need_no_sequence_privilege(
    app: psycopg.Connection[Any],
) -> None:
    with acting_as(app, ALICE):
        session_id = scalar(
            app,
            "INSERT INTO ims.crawl_sessions (user_id, product, original_query)"
            " VALUES (1, 'OpenFrame', 'new') RETURNING session_id",
        )
        app.execute(
            "INSERT INTO ims.session_issues (session_id, issue_pk, user_id) VALUES (%s, 102, 1)",
            (session_id,),
        )
        app.execute(
            "INSERT INTO ims.issues (issue_id, title, product) VALUES ('NEW-1', 'New', 'OpenFrame')"
        )
        app.execute("INSERT INTO ims.users (username, email) VALUES ('dave', 'dave@example.com')")
        assert session_id > 1000


def test_admin_may_write_for_anyone(app: psycopg.Connection[Any]) -> None:
    with acting_as(app, ROOT):
        app.execute(
            "INSERT INTO ims.crawl_sessions (user_id, product, original_query) VALUES (2, 'p', 'q')"
        )
        assert app.execute("UPDATE ims.crawl_sessions SET status = 'running'").rowcount == 5


def test_runtime_role_cannot_create_an_admin_or_change_a_role(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    for user_id in (None, ALICE, ROOT):  # not even an admin context
        with pytest.raises(errors.InsufficientPrivilege), acting_as(app, user_id):
            app.execute(
                "INSERT INTO ims.users (username, email, role) VALUES ('evil', 'e@x', 'admin')"
            )
        with pytest.raises(errors.InsufficientPrivilege), acting_as(app, user_id):
            app.execute("UPDATE ims.users SET role = 'admin' WHERE user_id = 1")
        with pytest.raises(errors.InsufficientPrivilege), acting_as(app, user_id):
            app.execute("UPDATE ims.users SET role = 'user' WHERE user_id = 3")
        with pytest.raises(errors.InsufficientPrivilege), acting_as(app, user_id):
            app.execute(
                "INSERT INTO ims.users (username, email) VALUES ('alice', 'x@x')"
                " ON CONFLICT (username) DO UPDATE SET role = 'admin'"
            )
    # other columns of any user, admins included, stay updatable
    with acting_as(app, ALICE):
        assert app.execute("UPDATE ims.users SET last_login_at = now()").rowcount == 4
    assert ids(admin, "SELECT username FROM ims.users WHERE role = 'admin'") == ["root"]


def test_set_role_is_the_owners_path(dbname: str, app: psycopg.Connection[Any]) -> None:
    url = url_for(dbname)
    migrations.set_role(url, "alice", "admin")
    with acting_as(app, ALICE):
        assert scalar(app, "SELECT count(DISTINCT user_id) FROM ims.crawl_sessions") == 2
    migrations.set_role(url, "alice", "user")
    migrations.set_role(url, "alice", "user")  # idempotent
    with acting_as(app, ALICE):
        assert scalar(app, "SELECT count(DISTINCT user_id) FROM ims.crawl_sessions") == 1
    with pytest.raises(migrations.UnknownUser, match="nobody"):
        migrations.set_role(url, "nobody", "admin")
    with pytest.raises(ValueError, match="unknown role"):
        migrations.set_role(url, "alice", "superuser")
    # the runtime login cannot take the owner's path
    app_url = url_for(dbname, user=scalar(app, "SELECT current_user"))
    with pytest.raises(errors.InsufficientPrivilege):
        migrations.set_role(app_url, "alice", "admin")


# --------------------------------------------------------------------------- foreign keys


def test_copied_user_id_must_match_the_session(app: psycopg.Connection[Any]) -> None:
    statements = [
        "INSERT INTO ims.session_issues (session_id, issue_pk, user_id) VALUES (20, 101, 1)",
        "INSERT INTO ims.session_errors (session_id, user_id, error_type, error_message)"
        " VALUES (20, 1, 't', 'm')",
        "INSERT INTO ims.search_queries (user_id, session_id, query_text) VALUES (1, 20, 'q')",
    ]
    for statement in statements:
        # as the admin, so RLS lets the row through and the foreign key decides
        with pytest.raises(errors.ForeignKeyViolation), acting_as(app, ROOT):
            app.execute(statement)


def test_no_cascade_through_rows_the_caller_cannot_see(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    # bob has crawl data alice cannot see: deleting bob is refused
    with pytest.raises(errors.ForeignKeyViolation), acting_as(app, ALICE):
        app.execute("DELETE FROM ims.users WHERE user_id = 2")
    # issue 102 is referenced only by bob's session: deleting it is refused
    with pytest.raises(errors.ForeignKeyViolation), acting_as(app, ALICE):
        app.execute("DELETE FROM ims.issues WHERE issue_pk = 102")
    # an issue nobody's session references goes, with its comments
    admin.execute("INSERT INTO ims.issue_comments (issue_pk, content) VALUES (103, 'c')")
    with acting_as(app, ALICE):
        assert app.execute("DELETE FROM ims.issues WHERE issue_pk = 103").rowcount == 1
    assert scalar(admin, "SELECT count(*) FROM ims.issue_comments") == 0
    # a user without data can be deleted
    with acting_as(app, ALICE):
        assert app.execute("DELETE FROM ims.users WHERE user_id = 4").rowcount == 1


def test_deleting_own_session_cascades_to_its_rows(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, ALICE):
        assert app.execute("DELETE FROM ims.crawl_sessions WHERE session_id = 10").rowcount == 1
    assert scalar(admin, "SELECT count(*) FROM ims.session_issues WHERE session_id = 10") == 0
    assert scalar(admin, "SELECT count(*) FROM ims.session_errors WHERE session_id = 10") == 0
    # the logged query stays, without its session
    assert admin.execute(
        "SELECT user_id, session_id FROM ims.search_queries WHERE query_text = 'timeout'"
    ).fetchall() == [(ALICE, None)]


def test_attachments_do_not_depend_on_or_reveal_sessions(
    app: psycopg.Connection[Any],
) -> None:
    with acting_as(app, ALICE):
        # bob's session (invisible to alice) and a session that does not exist
        # are both accepted: no foreign key to tell them apart
        app.execute(
            "INSERT INTO ims.attachments (issue_pk, session_id, filename) VALUES"
            " (100, 20, 'a.log'), (100, 424242, 'b.log')"
        )
    with acting_as(app, BOB):
        assert app.execute("DELETE FROM ims.crawl_sessions WHERE session_id = 20").rowcount == 1
        assert scalar(app, "SELECT count(*) FROM ims.attachments") == 2


def test_checks(app: psycopg.Connection[Any]) -> None:
    bad = [
        "INSERT INTO ims.attachments (issue_pk, filename, checksum_sha256) VALUES (100, 'f', 'ABC')",
        "INSERT INTO ims.attachments (issue_pk, filename, file_size) VALUES (100, 'f', -1)",
        "INSERT INTO ims.analytics_monthly (user_id, month) VALUES (1, '2024-05-02')",
        "INSERT INTO ims.crawl_sessions (user_id, product, original_query, status)"
        " VALUES (1, 'p', 'q', 'done')",
        "INSERT INTO ims.crawl_sessions (user_id, product, original_query, started_at,"
        " completed_at) VALUES (1, 'p', 'q', '2024-01-02', '2024-01-01')",
        "INSERT INTO ims.session_errors (session_id, user_id, severity, error_type,"
        " error_message) VALUES (10, 1, 'fatal', 't', 'm')",
    ]
    for statement in bad:
        with pytest.raises(errors.CheckViolation), acting_as(app, ALICE):
            app.execute(statement)
    with pytest.raises(errors.UniqueViolation), acting_as(app, ALICE):
        app.execute("INSERT INTO ims.users (username, email) VALUES ('x', 'ALICE@example.com')")


# --------------------------------------------------------------------------- privileges


def test_runtime_role_has_no_ddl_and_no_truncate(app: psycopg.Connection[Any]) -> None:
    statements = [
        "CREATE TABLE ims.x (a int)",
        "CREATE TABLE public.x (a int)",
        "TRUNCATE ims.issues",
        "TRUNCATE ims.crawl_sessions",
        "ALTER TABLE ims.issues DISABLE ROW LEVEL SECURITY",
        "DROP POLICY crawl_sessions_app_own_rows ON ims.crawl_sessions",
        "SELECT ims.audit_changes()",
    ]
    for statement in statements:
        with pytest.raises(errors.InsufficientPrivilege), acting_as(app, ROOT):
            app.execute(statement)


# --------------------------------------------------------------------------- index use


def test_ordinary_users_list_uses_the_user_id_index(dbname: str, login: str) -> None:
    with psycopg.connect(url_for(dbname), autocommit=True) as admin:
        admin.execute(
            "INSERT INTO ims.users (user_id, username, email)"
            " SELECT g, 'u' || g, 'u' || g || '@example.com'"
            " FROM generate_series(5, 1000) AS g"
        )
        # 100k sessions over 1000 users; triggers off for the bulk load only
        admin.execute("SET session_replication_role = replica")
        admin.execute(
            "INSERT INTO ims.crawl_sessions (user_id, product, original_query, status, started_at)"
            " SELECT 1 + g % 1000, 'OpenFrame', 'q' || g, 'completed',"
            "        timestamptz '2024-01-01' + g * interval '1 minute'"
            " FROM generate_series(1, 100000) AS g"
        )
        admin.execute("RESET session_replication_role")
        admin.execute("ANALYZE ims.users")
        admin.execute("ANALYZE ims.crawl_sessions")
    queries = [
        "SELECT session_id, status FROM ims.crawl_sessions",
        "SELECT session_id, status FROM ims.crawl_sessions ORDER BY session_id DESC LIMIT 20",
        "SELECT session_id, status FROM ims.crawl_sessions WHERE user_id = 7"
        " ORDER BY started_at DESC",
        "SELECT count(*) FROM ims.crawl_sessions WHERE status = 'completed'",
    ]
    with psycopg.connect(url_for(dbname, user=login), autocommit=True) as app:
        for query in queries:
            with acting_as(app, 7):
                plan = "\n".join(r[0] for r in app.execute("EXPLAIN " + query))
                rows = app.execute(query).fetchall()
            assert "Seq Scan on crawl_sessions" not in plan, plan
            # the policy's range is an index condition, not a filter
            assert "Index Cond: ((user_id >= $0) AND (user_id <= $1)" in plan, plan
            assert rows
        with acting_as(app, 7):
            assert scalar(app, "SELECT count(*) FROM ims.crawl_sessions") == 100


# --------------------------------------------------------------------------- audit


def audit_rows(admin: psycopg.Connection[Any], table: str, since: int = 1000) -> list[Any]:
    return admin.execute(
        "SELECT user_id, action, record_id, old_values, new_values"
        " FROM ims.audit_log WHERE table_name = %s AND audit_id > %s ORDER BY audit_id",
        (table, since),
    ).fetchall()


def test_audit_insert_update_delete_with_context(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, ALICE):
        pk = scalar(
            app,
            "INSERT INTO ims.issues (issue_id, title, product) VALUES ('A-1', 'First', 'P')"
            " RETURNING issue_pk",
        )
    with acting_as(app, ALICE):
        app.execute("UPDATE ims.issues SET title = 'Second' WHERE issue_pk = %s", (pk,))
    with acting_as(app, ALICE):
        app.execute("DELETE FROM ims.issues WHERE issue_pk = %s", (pk,))
    rows = audit_rows(admin, "issues")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (ALICE, "INSERT", str(pk)),
        (ALICE, "UPDATE", str(pk)),
        (ALICE, "DELETE", str(pk)),
    ]
    insert, update, delete = rows
    # 0010: an inserted issue is audited by its key and IMS id (the row is in ims.issues)
    assert insert[3] is None and insert[4] == {"issue_id": "A-1"}
    # an update carries only the columns that changed, old -> new
    assert (update[3], update[4]) == ({"title": "First"}, {"title": "Second"})
    assert delete[3]["title"] == "Second" and delete[4] is None
    assert "search_vector" not in delete[3]
    ip = scalar(admin, "SELECT ip_address FROM ims.audit_log ORDER BY audit_id DESC LIMIT 1")
    assert ip is not None  # TCP connection: the client address is recorded


def test_audit_without_context_records_a_null_actor(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    app.execute("INSERT INTO ims.issues (issue_id, title, product) VALUES ('A-2', 'T', 'P')")
    app.execute("UPDATE ims.users SET full_name = 'Alice A.' WHERE user_id = 1")
    assert [(r[0], r[1]) for r in audit_rows(admin, "issues")] == [(None, "INSERT")]
    assert [(r[0], r[1], r[2]) for r in audit_rows(admin, "users")] == [(None, "UPDATE", "1")]


def test_audit_skips_writes_that_change_nothing(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, ALICE):
        app.execute("UPDATE ims.issues SET title = title")  # identical rows
        app.execute("UPDATE ims.issues SET title = 'x' WHERE false")  # no rows
        app.execute("DELETE FROM ims.crawl_sessions WHERE session_id = 20")  # invisible
        app.execute("UPDATE ims.users SET email = email, full_name = full_name")
        # a re-crawl that only moves the crawl bookkeeping is not a change
        app.execute("UPDATE ims.issues SET last_crawled_at = now(), crawl_count = crawl_count + 1")
    assert scalar(admin, "SELECT count(*) FROM ims.audit_log WHERE audit_id > 1000") == 0
    # ... while one real change in a multi-row statement audits exactly that row
    with acting_as(app, ALICE):
        app.execute(
            "UPDATE ims.issues SET status = 'Closed', crawl_count = crawl_count + 1"
            " WHERE product = 'OpenFrame'"
        )
    assert sorted(r[2] for r in audit_rows(admin, "issues")) == ["100", "102"]


def test_an_audited_update_carries_only_the_columns_that_changed(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    """0010: old -> new of the changed columns, the crawl bookkeeping included when it
    moved along with a change; a column set to its own value is left out."""
    with acting_as(app, ALICE):
        app.execute(
            "UPDATE ims.issues SET status = 'Closed', crawl_count = crawl_count + 1,"
            " title = title WHERE issue_pk = 100"
        )
    [(actor, action, record, old, new)] = audit_rows(admin, "issues")
    assert (actor, action, record) == (ALICE, "UPDATE", "100")
    assert set(old) == set(new) == {"status", "crawl_count"}
    assert new["crawl_count"] == old["crawl_count"] + 1 and new["status"] == "Closed"


def test_audit_is_per_row_for_bulk_statements(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, BOB):
        app.execute(
            "INSERT INTO ims.issues (issue_id, title, product)"
            " SELECT 'BULK-' || g, 'Bulk ' || g, 'P' FROM generate_series(1, 50) AS g"
            " ON CONFLICT (issue_id) DO UPDATE SET title = EXCLUDED.title"
        )
        app.execute(
            "INSERT INTO ims.issues (issue_id, title, product)"
            " SELECT 'BULK-' || g, 'Bulk ' || g || CASE WHEN g <= 10 THEN '!' ELSE '' END, 'P'"
            " FROM generate_series(1, 60) AS g"
            " ON CONFLICT (issue_id) DO UPDATE SET title = EXCLUDED.title"
        )
    rows = audit_rows(admin, "issues")
    actions = [r[1] for r in rows]
    assert actions.count("INSERT") == 60
    assert actions.count("UPDATE") == 10  # 40 re-written rows were identical
    assert {r[0] for r in rows} == {BOB}


def test_audit_rows_survive_deletion_of_their_user(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, CAROL):
        app.execute("INSERT INTO ims.issues (issue_id, title, product) VALUES ('C-1', 'T', 'P')")
        app.execute("DELETE FROM ims.users WHERE user_id = %s", (CAROL,))
    rows = admin.execute(
        "SELECT user_id, action, table_name FROM ims.audit_log WHERE audit_id > 1000"
        " ORDER BY audit_id"
    ).fetchall()
    assert rows == [(CAROL, "INSERT", "issues"), (CAROL, "DELETE", "users")]
    assert scalar(admin, "SELECT count(*) FROM ims.users WHERE user_id = %s", (CAROL,)) == 0


def test_runtime_role_cannot_change_audit_rows(app: psycopg.Connection[Any]) -> None:
    statements = [
        "INSERT INTO ims.audit_log (user_id, action, table_name) VALUES (1, 'INSERT', 'x')",
        "UPDATE ims.audit_log SET record_id = 'x'",
        "DELETE FROM ims.audit_log",
        "TRUNCATE ims.audit_log",
    ]
    for user_id in (ALICE, ROOT):
        for statement in statements:
            with pytest.raises(errors.InsufficientPrivilege), acting_as(app, user_id):
                app.execute(statement)


def test_audit_rows_are_visible_to_their_actor_only(app: psycopg.Connection[Any]) -> None:
    with acting_as(app, ALICE):
        app.execute("UPDATE ims.crawl_sessions SET status = 'cancelled' WHERE session_id = 12")
        rows = app.execute("SELECT user_id, table_name, record_id FROM ims.audit_log").fetchall()
    assert sorted(rows, key=str) == [(ALICE, "crawl_sessions", "12"), (ALICE, "issues", "100")]


# --------------------------------------------------------------------------- functions


def test_get_user_stats(app: psycopg.Connection[Any]) -> None:
    with acting_as(app, ALICE):
        row = app.execute("SELECT * FROM ims.get_user_stats(%s)", (ALICE,)).fetchone()
        # another user's figures are invisible: zeros
        other = app.execute("SELECT * FROM ims.get_user_stats(%s)", (BOB,)).fetchone()
    assert row == (3, 1, 1, 3, Decimal("45.00"), dt.datetime(2024, 5, 20, 8, tzinfo=UTC))
    assert other == (0, 0, 0, 0, None, None)
    with acting_as(app, ROOT):
        row = app.execute("SELECT * FROM ims.get_user_stats(%s)", (BOB,)).fetchone()
    assert row == (1, 1, 0, 2, Decimal("100.00"), dt.datetime(2024, 5, 3, 12, tzinfo=UTC))


def search(app: psycopg.Connection[Any], *args: Any) -> list[str]:
    placeholders = ", ".join(["%s"] * len(args))
    with acting_as(app, ALICE):
        return [
            row[1] for row in app.execute(f"SELECT * FROM ims.search_issues({placeholders})", args)
        ]


def test_search_issues_stems_and_ranks(app: psycopg.Connection[Any]) -> None:
    # 'connections' finds 'connection' (titles) and 'connecting' (a description)
    hits = search(app, "connections")
    assert set(hits) == {"SAMPLE-001", "SAMPLE-002", "OTHER-001"}
    # a title match outranks a description match
    assert hits[-1] == "SAMPLE-002"
    with acting_as(app, ALICE):
        ranks = [
            r[0]
            for r in app.execute("SELECT rank FROM ims.search_issues('connections')").fetchall()
        ]
        columns = [
            c.name for c in app.execute("SELECT * FROM ims.search_issues('x')").description or []
        ]
    assert ranks == sorted(ranks, reverse=True)
    assert columns == ["issue_pk", "issue_id", "title", "product", "status", "rank"]


def test_search_issues_filters_and_limits(app: psycopg.Connection[Any]) -> None:
    assert search(app, "connection", "Tmax") == ["OTHER-001"]
    assert len(search(app, "connection", None, 1)) == 1
    assert search(app, "connection", None, 0) == []
    # web-search syntax: -word excludes, quotes make a phrase
    assert "SAMPLE-001" not in search(app, "connection -timeout")
    assert search(app, '"connection timeout"') == ["SAMPLE-001"]
    assert set(search(app, "timeout or login")) == {"SAMPLE-001", "SAMPLE-002"}


def test_search_issues_finds_korean_as_typed(app: psycopg.Connection[Any]) -> None:
    assert search(app, "연결") == ["SAMPLE-003"]
    assert search(app, "데이터베이스") == ["SAMPLE-003"]


def test_search_issues_takes_any_text(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    for text in ["", "   ", "'); DROP TABLE ims.issues; --", "&|!:*()<->", "\\", "'", None]:
        assert isinstance(search(app, text), list)
    assert search(app, "") == []
    assert scalar(admin, "SELECT count(*) FROM ims.issues") == 4


def analytics(conn: psycopg.Connection[Any], table: str) -> list[Any]:
    key = "stat_date" if table == "analytics_daily" else "month"
    return conn.execute(
        f"SELECT user_id, {key}, sessions_count, completed_sessions, failed_sessions,"
        " issues_crawled, unique_issues, errors_count, avg_duration_seconds,"
        f" total_duration_seconds FROM ims.{table} ORDER BY user_id, {key}"
    ).fetchall()


MAY3 = dt.date(2024, 5, 3)
MAY = dt.date(2024, 5, 1)


def test_refresh_analytics_for_an_ordinary_user(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    with acting_as(app, ALICE):
        # a time zone east of UTC must not move session 11 (23:30 UTC) to May 4
        app.execute("SET LOCAL TIME ZONE 'Asia/Seoul'")
        app.execute("SELECT ims.refresh_analytics(%s)", (MAY3,))
    assert analytics(admin, "analytics_daily") == [
        (ALICE, MAY3, 2, 1, 1, 3, 2, 1, Decimal("45.00"), 90),
    ]
    # the month includes session 12 (not started; counted by created_at)
    assert analytics(admin, "analytics_monthly") == [
        (ALICE, MAY, 3, 1, 1, 3, 2, 1, Decimal("45.00"), 90),
    ]


def test_refresh_analytics_as_admin_covers_everyone_and_removes_stale_rows(
    app: psycopg.Connection[Any], admin: psycopg.Connection[Any]
) -> None:
    may5 = dt.date(2024, 5, 5)
    admin.execute(
        "INSERT INTO ims.analytics_daily (user_id, stat_date, sessions_count)"
        " VALUES (1, %s, 9), (2, %s, 9), (1, %s, 9)",
        (may5, may5, MAY3),
    )
    # alice's refresh of May 5 removes only her own stale row
    with acting_as(app, ALICE):
        app.execute("SELECT ims.refresh_analytics(%s)", (may5,))
    assert [(r[0], r[1]) for r in analytics(admin, "analytics_daily")] == [
        (ALICE, MAY3),
        (BOB, may5),
    ]
    with acting_as(app, ROOT):
        app.execute("SELECT ims.refresh_analytics(%s)", (may5,))
        app.execute("SELECT ims.refresh_analytics(%s)", (MAY3,))
        app.execute("SELECT ims.refresh_analytics(%s)", (MAY3,))  # idempotent
    assert analytics(admin, "analytics_daily") == [
        (ALICE, MAY3, 2, 1, 1, 3, 2, 1, Decimal("45.00"), 90),
        (BOB, MAY3, 1, 1, 0, 2, 2, 1, Decimal("100.00"), 100),
    ]
    assert analytics(admin, "analytics_monthly") == [
        (ALICE, MAY, 3, 1, 1, 3, 2, 1, Decimal("45.00"), 90),
        (BOB, MAY, 1, 1, 0, 2, 2, 1, Decimal("100.00"), 100),
    ]
    # without context nothing is visible, so nothing is computed or removed
    app.execute("SELECT ims.refresh_analytics(%s)", (MAY3,))
    assert len(analytics(admin, "analytics_daily")) == 2
