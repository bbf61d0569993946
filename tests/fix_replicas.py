"""Fixtures of the replica and failover tests (``tests/test_*replicas.py``,
``tests/test_failover.py``): private primaries with streaming standbys, from the local
PostgreSQL binaries (``ims_repo.services.local_server``), on free ports of 127.0.0.1,
stopped at the end. Imported by ``tests/conftest.py``.

- ``replica_cluster`` (session): a primary with database ``ims`` migrated, the runtime
  login and the sample data, and an asynchronous hot standby of it. Tests that pause
  replay resume it (``Cluster.replay_paused()``).
- ``start_cluster(synchronous=True)``: a new primary whose commits wait for its
  synchronous standby, for a test that kills the primary (the failover test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import monotonic, sleep
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ims_repo import Database
from ims_repo.faces.pytest_plugin import RUNTIME_LOGIN, RUNTIME_PASSWORD
from ims_repo.services import sample_data
from ims_repo.services.local_server import (
    LocalServer,
    PgServer,
    find_bindir,
    free_port,
    why_unavailable,
)
from ims_repo.services.migrations import grant_login, migrate

DBNAME = "ims"
WAIT = 30.0
"""Seconds any wait for the servers may take before the test fails (never reached when
things work: replication on loopback takes milliseconds)."""


@dataclass
class Cluster:
    """A private primary and its streaming standby, both on database ``ims``."""

    primary: LocalServer
    standby: LocalServer

    @property
    def primary_server(self) -> PgServer:
        assert self.primary.server is not None
        return self.primary.server

    @property
    def standby_server(self) -> PgServer:
        assert self.standby.server is not None
        return self.standby.server

    def admin_url(self, server: PgServer) -> str:
        return server.url(DBNAME)

    def app_url(self, server: PgServer) -> str:
        """The runtime login's URL on ``server`` (RLS applies)."""
        return server.url(DBNAME, user=RUNTIME_LOGIN, password=RUNTIME_PASSWORD)

    def unreachable_url(self) -> str:
        """The runtime login's URL on a free port of 127.0.0.1, where no server listens."""
        server = self.standby_server
        return self.app_url(server).replace(f":{server.port}/", f":{free_port()}/")

    def query(self, server: PgServer, text: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Rows of one statement run as the superuser, in autocommit."""
        with psycopg.connect(self.admin_url(server), autocommit=True) as conn:
            cursor = conn.execute(text, params)
            return cursor.fetchall() if cursor.description else []

    def wait_replayed(self) -> None:
        """Until the standby has replayed everything the primary has written so far.

        A synchronous commit of a transaction with an id flushes all the WAL before it
        (WAL sitting unflushed in a partial page is not sent to standbys)."""
        with psycopg.connect(self.admin_url(self.primary_server)) as conn:
            conn.execute("SET synchronous_commit = on")
            conn.execute("SELECT pg_current_xact_id()")
            conn.commit()
            (target,) = conn.execute("SELECT pg_current_wal_flush_lsn()").fetchall()[0]
        _until(
            lambda: self.query(
                self.standby_server, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            )[0][0],
            "the standby to replay the primary's WAL",
        )

    @contextmanager
    def replay_paused(self) -> Iterator[None]:
        """The standby receives WAL but replays none of it inside the block."""
        self.query(self.standby_server, "SELECT pg_wal_replay_pause()")
        try:
            _until(
                lambda: (
                    self.query(self.standby_server, "SELECT pg_get_wal_replay_pause_state()")[0][0]
                    == "paused"
                ),
                "replay to pause",
            )
            yield
        finally:
            self.resume()

    def resume(self) -> None:
        self.query(self.standby_server, "SELECT pg_wal_replay_resume()")

    def stop(self) -> None:
        try:
            self.standby.stop()
        finally:
            self.primary.stop()


def start_cluster(*, synchronous: bool, sample: bool = False) -> Cluster:
    """A primary (database ``ims`` migrated, the runtime login, the sample data when
    ``sample``) and a hot standby streaming from it, synchronous when ``synchronous``
    (a commit returns once the standby has its WAL on disk). Skips the test where no private server can be started."""
    bindir = find_bindir()
    reason = why_unavailable(bindir)
    if reason or bindir is None:
        pytest.skip(f"no private PostgreSQL server: {reason}")
    # synchronous_commit=on (the throwaway default is off): a commit's WAL is flushed,
    # so standbys are sent it at once, as on a production server.
    primary = LocalServer(bindir, settings=("synchronous_commit=on",))
    server = primary.start()
    standby: LocalServer | None = None
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)))
        migrate(server.url(DBNAME))
        grant_login(server.url(DBNAME), RUNTIME_LOGIN, RUNTIME_PASSWORD)
        if sample:
            app_url = server.url(DBNAME, user=RUNTIME_LOGIN, password=RUNTIME_PASSWORD)
            with Database(app_url, min_size=1, max_size=1) as db:
                sample_data.load(db, owner_url=server.url(DBNAME))
        standby = primary.standby()
        standby.start()
        cluster = Cluster(primary, standby)
        if synchronous:
            # Set after the copy, so the standby (promoted later) does not inherit it.
            cluster.query(server, "ALTER SYSTEM SET synchronous_standby_names = '*'")
            cluster.query(server, "SELECT pg_reload_conf()")
            _until(
                lambda: (
                    cluster.query(
                        server, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
                    )[0][0]
                    == 1
                ),
                "the standby to become synchronous",
            )
        cluster.wait_replayed()
        return cluster
    except BaseException:
        if standby is not None:
            standby.stop()
        primary.stop()
        raise


@pytest.fixture(scope="session")
def replica_cluster() -> Iterator[Cluster]:
    """A primary with the sample data and an asynchronous hot standby, for this session."""
    cluster = start_cluster(synchronous=False, sample=True)
    try:
        yield cluster
    finally:
        cluster.stop()


def _until(done: Callable[[], object], what: str) -> None:
    """Poll ``done()`` every 10 ms until it is true; fail after ``WAIT`` seconds."""
    deadline = monotonic() + WAIT
    while not done():
        if monotonic() > deadline:
            raise AssertionError(f"waited {WAIT:g} s for {what}")
        sleep(0.01)
