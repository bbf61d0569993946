"""Read replicas (SPEC §9): ``Database(url, replicas=[…])`` against a real streaming hot
standby of a private primary (``tests/fix_replicas.py``), as the runtime login.

Which server a session ran on is asked of the server itself (``pg_is_in_recovery()``);
the lag that read-your-writes must wait out is made on purpose by pausing the standby's
replay (``pg_wal_replay_pause()``), so no test depends on timing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from ims_repo import (
    CommitPosition,
    Database,
    DatabaseUnavailable,
    InvalidInput,
    NewUser,
    ReadOnlySession,
    Session,
    UnsafeLogin,
)
from tests.conftest import ReportFigure
from tests.fix_replicas import Cluster

YIJAE = 2  # the sample data's ordinary user with crawl sessions (ids fixed on a new database)
JOHN = 3


def on_standby(s: Session) -> bool:
    """Whether the session's connection is on a standby (raw SQL: allowed, it reads)."""
    return bool(s.execute("SELECT pg_is_in_recovery() AS standby")[0]["standby"])


def new_user() -> NewUser:
    name = f"ryw_{uuid.uuid4().hex[:12]}"
    return NewUser(username=name, email=f"{name}@company.com")


@pytest.fixture
def rdb(replica_cluster: Cluster) -> Iterator[Database]:
    """A database on the cluster's primary with its standby as the replica."""
    c = replica_cluster
    db = Database(
        c.app_url(c.primary_server),
        replicas=[c.app_url(c.standby_server)],
        min_size=1,
        max_size=2,
    )
    yield db
    db.close()


# --- routing, RLS and search on the replica --------------------------------------------


def test_replica_session_runs_on_the_standby_under_rls(rdb: Database) -> None:
    with rdb.session(user_id=YIJAE) as primary:
        expected = primary.crawl_sessions.list_for_user(YIJAE)
        assert not on_standby(primary)
    with rdb.session(user_id=YIJAE, replica=True) as s:
        assert on_standby(s)
        assert s.read_only
        mine = s.crawl_sessions.list_for_user(YIJAE)
        theirs = s.crawl_sessions.list_for_user(JOHN)
        everything = s.crawl_sessions.find()
        s.set_user(JOHN)  # in the open READ ONLY transaction: allowed, it changes no data
        johns = s.crawl_sessions.find()
    assert mine == expected and len(mine) == 3
    assert johns and {c.user_id for c in johns} == {JOHN}
    assert theirs == []  # RLS on the standby, as the runtime login: only user 2's rows
    assert {c.user_id for c in everything} == {YIJAE}


def test_search_works_on_the_standby(rdb: Database) -> None:
    with rdb.session(user_id=YIJAE) as primary:
        expected = primary.search.issues("timeout")
    with rdb.session(user_id=YIJAE, replica=True) as s:
        assert on_standby(s)
        hits = s.search.issues("timeout")
    assert hits == expected and hits


# --- writes refused --------------------------------------------------------------------


def test_a_named_write_is_refused_before_it_is_sent(rdb: Database) -> None:
    with rdb.session(user_id=YIJAE, replica=True) as s:
        with pytest.raises(ReadOnlySession, match=r"users\.create .*nothing was sent"):
            s.users.create(new_user())
        # Nothing reached the server: no transaction was begun (the opening goes with the
        # first statement), none aborted, and the session goes on reading.
        assert s.statements_sent == 0 and not s.in_transaction
        with pytest.raises(ReadOnlySession):
            s.session_errors.delete_by_severity("info")
        assert s.users.get(YIJAE) is not None


def test_a_replica_session_without_replicas_is_read_only_on_the_primary(
    replica_cluster: Cluster,
) -> None:
    """Code written for replicas behaves the same where none is configured."""
    c = replica_cluster
    user = new_user()
    with Database(c.app_url(c.primary_server), min_size=1, max_size=1) as db:
        with db.session(replica=True) as s:
            assert not on_standby(s)
            with pytest.raises(ReadOnlySession):
                s.users.create(user)
            # Raw SQL runs in a READ ONLY transaction: the primary itself refuses it.
            with pytest.raises(ReadOnlySession, match="read-only"):
                s.execute(
                    "INSERT INTO ims.users (username, email) VALUES (%(u)s, %(e)s)",
                    {"u": user.username, "e": user.email},
                )
            s.rollback()
        with db.session() as s:
            assert s.users.get_by_username(user.username) is None


def test_raw_sql_that_writes_is_refused_by_the_standby(rdb: Database) -> None:
    with rdb.session(replica=True) as s:
        with pytest.raises(ReadOnlySession):
            s.execute("DELETE FROM ims.search_queries")
        s.rollback()  # the server refused it: the transaction is aborted, as any failure


# --- read-your-writes -------------------------------------------------------------------


def test_commit_position_after_a_commit(rdb: Database) -> None:
    with rdb.session() as s:
        assert s.commit_position is None  # nothing committed yet
        s.users.create(new_user())
        s.commit()
        first = s.commit_position
        s.users.create(new_user())
    assert isinstance(first, CommitPosition) and s.commit_position is not None
    assert s.commit_position > first  # the block's own commit, later in the WAL
    assert CommitPosition.parse(str(first)) == first


def test_read_your_writes_waits_for_the_replica_else_uses_the_primary(
    replica_cluster: Cluster,
    rdb: Database,
    caplog: pytest.LogCaptureFixture,
    report_figure: ReportFigure,
) -> None:
    c = replica_cluster
    user = new_user()
    with c.replay_paused():
        with rdb.session() as s:
            s.users.create(user)
        position = s.commit_position
        assert position is not None

        # Without after=: the standby, which has not replayed the commit.
        with rdb.session(replica=True) as r:
            assert on_standby(r)
            assert r.users.get_by_username(user.username) is None

        # after=, replay still paused: waits replica_wait, then runs on the primary.
        quick = Database(
            c.app_url(c.primary_server),
            replicas=[c.app_url(c.standby_server)],
            replica_wait=0.2,
            min_size=1,
            max_size=1,
        )
        with (
            quick,
            caplog.at_level(logging.INFO, logger="ims_repo.replicas"),
            quick.session(replica=True, after=position) as r,
        ):
            assert not on_standby(r)
            assert r.read_only
            assert r.users.get_by_username(user.username) is not None
        assert any(f"commit position {position}" in m for m in caplog.messages)

        # after=, replay resumed while the session waits: it runs on the standby.
        patient = Database(
            c.app_url(c.primary_server),
            replicas=[c.app_url(c.standby_server)],
            replica_wait=30,
            min_size=1,
            max_size=1,
        )
        with patient:
            timer = threading.Timer(0.2, c.resume)
            timer.start()
            try:
                with patient.session(replica=True, after=position) as r:
                    assert on_standby(r)
                    assert r.users.get_by_username(user.username) is not None
            finally:
                timer.join()
    report_figure("read-your-writes: sessions routed right (standby/primary/standby)", 3)


def test_after_needs_a_replica_session(rdb: Database) -> None:
    with pytest.raises(InvalidInput, match="after="), rdb.session(after=CommitPosition(1)):
        pass


def test_no_commit_position_without_replicas(replica_cluster: Cluster) -> None:
    c = replica_cluster
    with Database(c.app_url(c.primary_server), min_size=1, max_size=1) as db:
        with db.session() as s:
            s.users.create(new_user())
        assert s.commit_position is None


# --- replicas that are down or unsafe -------------------------------------------------


def test_no_replica_reachable_runs_on_the_primary_and_logs(
    replica_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    c = replica_cluster
    nobody = c.unreachable_url()
    with (
        caplog.at_level(logging.INFO, logger="ims_repo.replicas"),
        Database(
            c.app_url(c.primary_server), replicas=[nobody], replica_wait=0.5, max_size=1
        ) as db,
    ):
        for _ in range(3):  # the first marks it down; the next ones skip it
            with db.session(user_id=YIJAE, replica=True) as s:
                assert not on_standby(s)
                assert len(s.crawl_sessions.list_for_user(YIJAE)) == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unreachable" in r.getMessage() for r in warnings)
    assert sum("runs on the primary" in r.getMessage() for r in warnings) == 3


@pytest.mark.parametrize(("retry_after", "outages_logged"), [(0, 4), (3600, 1)])
def test_an_unreachable_replica_is_tried_again_after_replica_retry_after(
    replica_cluster: Cluster,
    caplog: pytest.LogCaptureFixture,
    retry_after: float,
    outages_logged: int,
) -> None:
    """Opening the database finds the replica unreachable and logs it; then each session
    that tries it again and reaches nothing logs it once more: with
    ``replica_retry_after=0`` every session tries it (and waits ``replica_wait``), within
    the hour none does."""
    c = replica_cluster
    nobody = c.unreachable_url()
    with (
        caplog.at_level(logging.WARNING, logger="ims_repo.replicas"),
        Database(
            c.app_url(c.primary_server),
            replicas=[nobody],
            replica_wait=1.0,
            replica_retry_after=retry_after,
            max_size=1,
        ) as db,
    ):
        for _ in range(3):
            with db.session(user_id=YIJAE, replica=True) as s:
                assert not on_standby(s)
    assert sum("is unreachable" in m for m in caplog.messages) == outages_logged
    assert sum("runs on the primary" in m for m in caplog.messages) == 3


def test_a_replica_with_every_connection_in_use_is_not_marked_down(
    replica_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkout that finds the replica's one connection taken runs on the primary, and
    the next free one runs on the replica again (no outage logged, no skip)."""
    c = replica_cluster
    with (
        caplog.at_level(logging.WARNING, logger="ims_repo.replicas"),
        Database(
            c.app_url(c.primary_server),
            replicas=[c.app_url(c.standby_server)],
            replica_wait=0.3,
            max_size=1,
        ) as db,
    ):
        with db.session(user_id=YIJAE, replica=True) as holder:
            assert on_standby(holder)
            with db.session(user_id=YIJAE, replica=True) as s:
                assert not on_standby(s)  # the replica's connection is taken
        with db.session(user_id=YIJAE, replica=True) as s:
            assert on_standby(s)
    assert not any("is unreachable" in m for m in caplog.messages)


@pytest.mark.parametrize("seconds", [-1, True, float("inf"), "5"])
def test_replica_retry_after_must_be_seconds(replica_cluster: Cluster, seconds: object) -> None:
    c = replica_cluster
    with pytest.raises(InvalidInput, match="replica_retry_after must be seconds"):
        Database(c.app_url(c.primary_server), replica_retry_after=seconds)  # type: ignore[arg-type]


def test_a_replica_login_that_bypasses_rls_is_refused(replica_cluster: Cluster) -> None:
    c = replica_cluster
    with pytest.raises(UnsafeLogin, match="superuser"):
        Database(
            c.app_url(c.primary_server),
            replicas=[c.admin_url(c.standby_server)],
            min_size=1,
            max_size=1,
        )


def test_replicas_must_be_a_list(replica_cluster: Cluster) -> None:
    c = replica_cluster
    with pytest.raises(InvalidInput, match="list"):
        Database(c.app_url(c.primary_server), replicas=c.app_url(c.standby_server))


def test_a_lost_replica_connection_fails_its_session_only(
    replica_cluster: Cluster, rdb: Database
) -> None:
    c = replica_cluster
    with pytest.raises(DatabaseUnavailable), rdb.session(user_id=YIJAE, replica=True) as s:
        pid = s.execute("SELECT pg_backend_pid() AS pid")[0]["pid"]
        c.query(c.standby_server, "SELECT pg_terminate_backend(%s, 10000)", (pid,))
        s.users.get(YIJAE)
    with rdb.session(user_id=YIJAE, replica=True) as s:  # a new connection, same standby
        assert on_standby(s)
        assert s.execute("SELECT pg_backend_pid() AS pid")[0]["pid"] != pid
        assert len(s.crawl_sessions.list_for_user(YIJAE)) == 3
