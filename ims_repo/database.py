"""The pooled database: where sessions come from.

``Database`` owns a psycopg-pool ``ConnectionPool`` of autocommit connections (each
session opens its own transaction, see ``session.py``) and refuses to run as a login
that would bypass row-level security, unless told to act as the runtime role or to
bypass on purpose.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from time import monotonic
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ims_repo import parallel_upsert
from ims_repo.errors import DatabaseUnavailable, InvalidInput, PoolExhausted, UnsafeLogin
from ims_repo.records import UpsertResult
from ims_repo.session import Session, timeout_ms

URL_VARIABLE = "IMS_DATABASE_URL"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_LOGIN_CHECK = """
SELECT current_user AS role, rolsuper AS superuser, rolbypassrls AS bypass_rls
FROM pg_catalog.pg_roles
WHERE rolname = current_user
"""


class Database:
    """A pool of connections to one database, handing out RLS-scoped sessions.

    ``url`` is a libpq URL or conninfo string; ``None`` reads ``IMS_DATABASE_URL``, and
    when that is unset libpq's ``PG*`` variables apply. ``act_as`` names the role every
    connection switches to at start (``options=-c role=…``), for a login that may do
    more than the runtime role; ``bypass_rls=True`` allows a login that bypasses RLS
    (maintenance jobs only).

    ``statement_timeout`` (seconds) caps every statement of every session; it goes in
    the connection options (``-c statement_timeout=…``), so no reset can lose it. A
    statement that runs longer raises ``StatementTimeout`` and leaves the connection
    usable after a rollback. ``timeout`` (seconds) bounds the wait for a free pooled
    connection: past it, ``session()`` raises ``PoolExhausted`` instead of hanging.

    A lost connection (server restart, network cut) fails the statement that meets it
    with ``DatabaseUnavailable``, and the pool drops that connection. The caller's next
    ``session()`` gets a working connection: every connection opened before the loss is
    tested once (an empty query) at its next checkout and replaced if it is dead too,
    waiting for the server while it restarts. Healthy checkouts pay no check.

    ``prepare_threshold`` is psycopg's: a statement run that many times on a connection
    is prepared on the server. ``None`` never prepares, which a transaction-pooling
    pgbouncer older than 1.21 needs (each transaction may run on another server
    connection, which lacks the prepared statement); see docs/SECURITY.md.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        act_as: str | None = None,
        bypass_rls: bool = False,
        timeout: float = 30.0,
        name: str = "ims_repo",
        statement_timeout: float | None = None,
        prepare_threshold: int | None = 5,
    ) -> None:
        self._act_as = act_as
        self._bypass_rls = bypass_rls
        # Connection losses seen so far, and for each live connection the count it was
        # last known good at: a connection older than the last loss is tested once.
        self._losses = 0
        self._good_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], int] = (
            weakref.WeakKeyDictionary()
        )
        self.conninfo = _conninfo(url if url is not None else os.environ.get(URL_VARIABLE, ""))
        if act_as is not None:
            if not _ROLE_NAME.match(act_as):
                raise InvalidInput(f"act_as must be a plain role name, not {act_as!r}")
            self.conninfo = _with_option(self.conninfo, f"-c role={act_as}")
        if statement_timeout is not None:
            milliseconds = timeout_ms(statement_timeout, "statement_timeout")
            self.conninfo = _with_option(self.conninfo, f"-c statement_timeout={milliseconds}")
        try:
            connection = psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.OperationalError as error:
            message = " ".join(str(error).split())
            raise DatabaseUnavailable(f"cannot connect to the database: {message}") from error
        with connection:
            self._check_login(connection)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name=name,
            kwargs={"autocommit": True, "prepare_threshold": prepare_threshold},
            configure=self._configure,
            open=True,
        )

    @classmethod
    def from_env(cls, **options: Any) -> Database:
        """A database from ``IMS_DATABASE_URL`` (else libpq's ``PG*`` variables)."""
        return cls(None, **options)

    @contextmanager
    def session(
        self, user_id: int | None = None, *, statement_timeout: float | None = None
    ) -> Iterator[Session]:
        """A session on one pooled connection with the RLS context ``user_id``.

        Leaving the block commits; an exception rolls back and propagates.
        ``statement_timeout`` (seconds) caps each statement of this session only: it is
        set transaction-locally with the context, so it never reaches the next checkout.
        """
        connection = self._checkout()
        try:
            session = Session(connection, user_id, statement_timeout=statement_timeout)
            try:
                yield session
            except BaseException:
                session.close(failed=True)
                raise
            session.close(failed=False)
        finally:
            if connection.broken:
                # The server went away (restart, network cut), maybe for every connection:
                # the pool drops this one, the others are tested at their next checkout.
                self._losses += 1
            self._pool.putconn(connection)

    def upsert_issues(
        self,
        issues: Iterable[Any],
        *,
        user_id: int | None = None,
        connections: int = 2,
        batch_size: int = 5000,
    ) -> UpsertResult:
        """``s.issues.upsert_many`` over ``connections`` sessions at once, for a bulk
        ingest that one connection cannot feed fast enough (the server works on each
        connection with one core). Each session has the context ``user_id``.

        Items are dealt to the sessions by the lock bucket of their ``issue_id`` (the
        lock order of ``repositories/issues.py``), so the items of one issue stay on one
        connection, in order (the merge rules of ``upsert_many`` hold), and the sessions
        never wait for each other's locks. Each session commits every batch it writes: this is not
        one transaction. When an item is refused (``InvalidInput``, naming its position
        in ``issues``) or a session fails, the others stop after their current batch
        and the error is raised here; the batches committed before stay committed (a
        re-run of the same input is safe: an item already stored counts one more crawl
        and changes nothing else). The pool needs ``connections`` free connections.
        Memory holds a few batches per connection, whatever the input's length.
        """
        return parallel_upsert.upsert_issues(
            self,
            issues,
            user_id=user_id,
            connections=connections,
            batch_size=batch_size,
        )

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()

    def _checkout(self) -> psycopg.Connection[Any]:
        """A working connection from the pool; ``PoolExhausted`` after ``timeout`` s."""
        deadline = monotonic() + self._pool.timeout
        try:
            while True:
                connection = self._pool.getconn(max(deadline - monotonic(), 0.0))
                losses = self._losses
                if self._good_at.get(connection, -1) >= losses:
                    return connection
                try:  # opened before the last loss: make sure it survived it
                    connection.execute("")
                except psycopg.Error:
                    self._pool.putconn(connection)  # broken: the pool replaces it
                    continue
                self._good_at[connection] = losses
                return connection
        except PoolTimeout as error:
            stats = self._pool.get_stats()
            in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
            why = (
                f"all {self._pool.max_size} connections are in use"
                if in_use >= self._pool.max_size
                else f"{in_use} of {self._pool.max_size} connections are in use and no new "
                "one could be opened (is the server up?)"
            )
            raise PoolExhausted(
                f"no connection of pool {self._pool.name!r} became free within "
                f"{self._pool.timeout:g} s: {why}. Return sessions sooner, raise "
                "max_size, or pass a longer timeout."
            ) from error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        """Set up a new pooled connection: refuse an unsafe login, mark it good."""
        self._check_login(connection)
        self._good_at[connection] = self._losses

    def _check_login(self, connection: psycopg.Connection[Any]) -> None:
        """Fail closed: refuse a connection whose role would see every row."""
        row = connection.execute(_LOGIN_CHECK).fetchone()
        role, superuser, bypass_rls = row if row is not None else ("?", True, True)
        if self._act_as is not None and role != self._act_as:
            raise UnsafeLogin(f"connection runs as {role!r}, not as act_as={self._act_as!r}")
        if (superuser or bypass_rls) and not self._bypass_rls:
            what = "a superuser" if superuser else "a BYPASSRLS role"
            raise UnsafeLogin(
                f"the login {role!r} is {what}, so row-level security would not apply. "
                "Connect as a runtime login (`ims-repo grant-login NAME` creates one), "
                "or pass act_as='ims_app' to run as the runtime role, or bypass_rls=True "
                "for a maintenance job that must see every row."
            )


def _conninfo(url: str) -> str:
    try:
        return make_conninfo(url)
    except psycopg.ProgrammingError as error:
        raise InvalidInput(f"not a valid database URL: {error}") from error


def _with_option(conninfo: str, option: str) -> str:
    """``conninfo`` with ``option`` (``-c name=value``) added to its server options."""
    options = conninfo_to_dict(conninfo).get("options") or ""
    return make_conninfo(conninfo, options=f"{options} {option}".strip())


_default: Database | None = None
_default_lock = threading.Lock()


def default_database() -> Database:
    """The module-level database used by ``get_session``, created from the environment
    on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Database.from_env()
        return _default


@contextmanager
def get_session(user_id: int | None = None) -> Iterator[Session]:
    """``Database.session`` on the module-level database from the environment."""
    with default_database().session(user_id) as session:
        yield session
