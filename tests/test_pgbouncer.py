"""``Database(url)`` behind a real pgbouncer (issue 15, item 1): nothing to pass.

- Detection both ways: a direct connection is not taken for a pooler and keeps its
  behaviour (prepared statements, settings at login); behind pgbouncer (transaction and
  session pooling) the pooler is detected and nothing is left in the server session.
- Without the detection (``pooler="none"``) the issue's failure is back: two clients
  preparing on the same server connection collide.
- The repository operations that matter, through pgbouncer in transaction pooling:
  create/get/find/update/delete of a user-owned table under RLS, ``upsert_many`` with
  COPY, a statement repeated past psycopg's prepare threshold, ``act_as`` with a
  superuser login (refused without it), the database's and a session's
  ``statement_timeout``, a savepoint.
- The context-leak test (tests/test_pgbouncer_leaks.py) runs 10,000 checkouts through it.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ims_repo import Database, NewCrawlSession, NewIssue, NewUser
from ims_repo.errors import (
    DatabaseError,
    Duplicate,
    InvalidInput,
    StatementTimeout,
    UnsafeLogin,
)
from tests.conftest import ReportFigure
from tests.fix_pgbouncer import POOL_SIZE, StartBouncer
from tests.seed import people

REPEATS = 8
"""Runs of one statement: past psycopg's prepare threshold (5)."""

PREPARED = "SELECT count(*) AS n FROM pg_catalog.pg_prepared_statements"


def test_a_direct_connection_is_not_taken_for_a_pooler(ims_app_url: str) -> None:
    for pooler in ("auto", "none"):
        with Database(ims_app_url, max_size=1, statement_timeout=3, pooler=pooler) as db:
            assert db.behind_pooler is False
            assert "statement_timeout=3000" in db.conninfo  # at login, as before
            for _ in range(REPEATS):
                with db.session() as s:
                    s.users.find()
            with db.session() as s:  # the only connection: it prepared the repeated ones
                [row] = s.execute(PREPARED)
                assert row["n"] >= 1
                # outside any transaction: the login's setting, no transaction-local one
                assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "3s"}]


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_pgbouncer_is_detected_and_nothing_stays_in_the_server_session(
    pgbouncer: StartBouncer, ims_app_url: str, pool_mode: str, report_figure: ReportFigure
) -> None:
    url = pgbouncer(pool_mode).url(ims_app_url)
    with Database(url, max_size=2, statement_timeout=3) as db:
        assert db.behind_pooler is True
        assert "options" not in db.conninfo and "statement_timeout" not in db.conninfo
        for _ in range(REPEATS):
            with db.session() as s:
                assert s.users.find() == []
        with db.session() as s:
            assert s.execute(PREPARED) == [{"n": 0}]
            assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "3s"}]
    with Database(url, pooler="pgbouncer", prepare_threshold=2, max_size=1) as db:
        assert db.behind_pooler is True  # named; an explicit threshold is the caller's
        for _ in range(3):
            with db.session() as s:
                s.users.find()
        with db.session() as s:
            [row] = s.execute(PREPARED)
            assert row["n"] >= 1
    report_figure(f"pgbouncer ({pool_mode} pooling) detected", "yes")


def test_without_detection_two_clients_collide_on_a_prepared_statement(
    pgbouncer: StartBouncer, ims_app_url: str
) -> None:
    """The failure of issue 15, reproduced so the test above is known to matter: psycopg
    names its prepared statements per client connection (``_pg3_0``, …); pgbouncer hands
    the second client the server connection where the first one prepared its own (a pool
    of one server connection: always the same one)."""
    url = pgbouncer("transaction", pool_size=1).url(ims_app_url)
    with (
        Database(url, pooler="none", max_size=1) as first,
        Database(url, pooler="none", max_size=1) as second,
    ):
        assert not first.behind_pooler and not second.behind_pooler
        for _ in range(REPEATS):  # the first client prepares on the server connection
            with first.session() as s:
                s.users.find()
        with pytest.raises(DatabaseError, match='prepared statement "_pg3_0" already exists'):
            for _ in range(REPEATS):
                with second.session() as s:
                    s.users.find()


def test_the_repository_operations_that_matter_work_through_pgbouncer(
    pgbouncer: StartBouncer, ims_app_url: str, ims_admin_url: str, report_figure: ReportFigure
) -> None:
    with Database(pgbouncer("transaction").url(ims_app_url), min_size=2, max_size=4) as db:
        assert db.behind_pooler
        p = people(db, ims_admin_url)
        # a user-owned table under RLS: create, get, find, update, delete
        with db.session(user_id=p.alice) as s:
            crawl = s.crawl_sessions.create(
                NewCrawlSession(user_id=p.alice, product="OpenFrame", original_query="q")
            )
            assert s.crawl_sessions.get(crawl.session_id) == crawl
            updated = s.crawl_sessions.update(crawl.session_id, status="running")
            assert updated.status == "running"
        with db.session(user_id=p.bob) as s:  # RLS: another user sees nothing of it
            assert s.crawl_sessions.get(crawl.session_id) is None
            assert s.crawl_sessions.find() == []
            assert s.crawl_sessions.delete(crawl.session_id) is False
        with db.session(user_id=p.alice) as s:
            assert [c.session_id for c in s.crawl_sessions.find(status="running")] == [
                crawl.session_id
            ]
            assert s.crawl_sessions.delete(crawl.session_id) is True
            assert s.crawl_sessions.find() == []
        # upsert_many (COPY into a staging table, in the session's transaction)
        items = [NewIssue(issue_id=f"PGB-{n:04d}", title=f"t{n}", product="P") for n in range(300)]
        with db.session() as s:
            first = s.issues.upsert_many(items)
        with db.session() as s:
            again = s.issues.upsert_many(items[:100])
            stored = s.issues.find(product_like="P", limit=1000)
        assert (first.inserted, again.inserted) == (300, 0)
        assert len(stored) == 300
        assert {i.crawl_count for i in stored if i.issue_id < "PGB-0100"} == {2}
        # a statement repeated past the prepare threshold, from several connections
        for n in range(3 * REPEATS):
            with db.session(user_id=p.alice) as s:
                assert s.users.get(p.alice) is not None
                assert s.users.get_by_username("bob") is not None
                s.users.update(p.alice, department=f"d{n}")
        # a savepoint: a failed statement undone alone, the transaction goes on
        with db.session() as s:
            s.users.create(NewUser(username="carol", email="carol@example.com"))
            with pytest.raises(Duplicate), s.savepoint():
                s.users.create(NewUser(username="carol", email="carol2@example.com"))
            s.users.create(NewUser(username="dave", email="dave@example.com"))
        with db.session() as s:
            assert {u.username for u in s.users.find()} >= {"carol", "dave"}
    report_figure("pgbouncer: repository operations through transaction pooling", "passed")


def test_act_as_holds_in_every_transaction_behind_pgbouncer(
    pgbouncer: StartBouncer, ims_admin_url: str, report_figure: ReportFigure
) -> None:
    """A superuser login reaches the server as itself: only the transaction-local role
    keeps row-level security on, so every transaction must carry it (also the lone
    read-only statement sent without BEGIN), on every server connection, and the login
    check still refuses the superuser without ``act_as``."""
    url = pgbouncer("transaction").url(ims_admin_url)
    with pytest.raises(UnsafeLogin, match="superuser"), Database(url):
        pass
    roles: set[str] = set()
    servers: set[int] = set()
    with Database(url, act_as="ims_app", min_size=4, max_size=4) as db:
        assert db.behind_pooler
        with db.session() as s:
            owner = s.users.create(NewUser(username="erin", email="erin@example.com")).user_id
        with db.session(user_id=owner) as s:  # a row a superuser would see without context
            s.crawl_sessions.create(
                NewCrawlSession(user_id=owner, product="OpenFrame", original_query="q")
            )
        for n in range(40):
            with db.session() as s:
                if n % 2:  # an explicit transaction (raw SQL begins one)
                    [row] = s.execute("SELECT current_user AS r, pg_backend_pid() AS pid")
                    roles.add(row["r"])
                    servers.add(row["pid"])
                assert s.crawl_sessions.find() == []  # the implicit one: RLS applies too
                [row] = s.execute("SELECT current_user AS r, pg_backend_pid() AS pid")
                roles.add(row["r"])
                servers.add(row["pid"])
                s.commit()  # a new transaction, the role again
                [row] = s.execute("SELECT current_user AS r")
                roles.add(row["r"])
    assert roles == {"ims_app"}
    assert 1 <= len(servers) <= POOL_SIZE
    report_figure("pgbouncer: act_as, roles seen over 40 checkouts", ",".join(sorted(roles)))


def test_a_login_that_may_not_act_as_the_role_is_refused_clearly(
    pgbouncer: StartBouncer, ims_app_url: str
) -> None:
    with pytest.raises(UnsafeLogin, match="may not act as 'ims_owner'"):
        Database(pgbouncer("transaction").url(ims_app_url), act_as="ims_owner").open()


def test_statement_timeouts_fire_behind_pgbouncer(
    pgbouncer: StartBouncer, ims_app_url: str, report_figure: ReportFigure
) -> None:
    url = pgbouncer("transaction").url(ims_app_url)
    with Database(url, max_size=1, statement_timeout=0.2) as db:
        assert db.behind_pooler
        with db.session() as s:
            assert s.execute("SHOW statement_timeout") == [{"statement_timeout": "200ms"}]
            started = time.perf_counter()
            with pytest.raises(StatementTimeout):
                s.execute("SELECT pg_sleep(5)")
            waited = time.perf_counter() - started
            s.rollback()
            assert s.execute("SELECT 1 AS one") == [{"one": 1}]
        with db.session(statement_timeout=2) as s:  # a session's own one wins
            assert s.execute("SELECT 4 AS four FROM pg_sleep(0.4)") == [{"four": 4}]
        with pytest.raises(StatementTimeout), db.session(statement_timeout=0.1) as s:
            s.execute("SELECT pg_sleep(5)")
    with psycopg.connect(url, prepare_threshold=None, autocommit=True) as plain:
        [(default,)] = plain.execute("SHOW statement_timeout").fetchall()
    assert default == "0"  # nothing stayed on the server connections
    assert 0.2 <= waited < 2
    report_figure("pgbouncer: statement_timeout=0.2 s (database) raised after (s)", f"{waited:.2f}")


def test_the_urls_options_are_carried_in_every_transaction_or_refused(
    pgbouncer: StartBouncer, ims_app_url: str
) -> None:
    url = pgbouncer("transaction").url(ims_app_url)
    with_options = make_conninfo(
        url, options="-c application_name=crawler --search-path=ims,public"
    )
    with pytest.raises(DatabaseError, match="pooler='pgbouncer'"):
        Database(with_options).open()  # detection connects as told: pgbouncer refuses
    with Database(with_options, pooler="pgbouncer", max_size=1) as db, db.session() as s:
        [row] = s.execute("SHOW search_path")
        assert row == {"search_path": "ims,public"}
        assert s.execute("SHOW application_name") == [{"application_name": "crawler"}]
    with pytest.raises(InvalidInput, match="-B"):
        Database(make_conninfo(url, options="-B 100"), pooler="pgbouncer")
