"""The pooled database: where sessions come from.

The database owns a psycopg-pool pool of autocommit connections (each session opens its
own transactions, see ``runner.py``) and refuses to run as a login that would bypass
row-level security, unless told to act as the runtime role or to bypass on purpose.
``Database`` (threads) opens in its constructor; ``AsyncDatabase`` (asyncio) opens in
``await db.open()`` or ``async with``, or at its first session. Read replicas, when
given, have a pool each (``replicas.py``).
"""

from __future__ import annotations

import logging
import math
import re
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from time import monotonic
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ims_repo.core.errors import DatabaseUnavailable, InvalidInput, PoolExhausted, UnsafeLogin
from ims_repo.core.inputs import timeout_ms
from ims_repo.core.loader import BoundStatement
from ims_repo.core.pooler import (
    ConnectionPlan,
    Pooler,
    PrepareThreshold,
    Setting,
    behind_pooler,
    check_pooler,
    plan_connections,
    settings_statement,
)
from ims_repo.core.positions import CommitPosition
from ims_repo.core.records import UpsertResult
from ims_repo.db._acompat import AItems, ALock
from ims_repo.db._async import parallel_upsert
from ims_repo.db._async.replicas import DOWN_FOR, AsyncReplica, AsyncReplicas
from ims_repo.db._async.session import AsyncSession
from ims_repo.db.environment import url_from_env

_log = logging.getLogger("ims_repo.db.pool")  # one name for both twins
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_LOGIN_CHECK = """
SELECT current_user AS role, rolsuper AS superuser, rolbypassrls AS bypass_rls,
    pg_catalog.pg_backend_pid() AS backend_pid
FROM pg_catalog.pg_roles
WHERE rolname = current_user
"""


class AsyncDatabase:
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

    ``slow_statement`` (seconds): a statement that takes that long or longer is logged
    on the ``ims_repo.db.statements`` logger, by name (``users.get_by_username``) and
    duration, never with its parameters. Pool recovery (a lost connection, a dead one
    replaced) is logged on ``ims_repo.db.pool``.

    ``prepare_threshold`` is psycopg's: a statement run that many times on a connection
    is prepared on the server. ``None`` never prepares, which a transaction-pooling
    pgbouncer older than 1.21 needs (each transaction may run on another server
    connection, which lacks the prepared statement); see docs/SECURITY.md. The default,
    ``"auto"``, is 5 on a direct connection and ``None`` behind a pooler.

    Behind pgbouncer (transaction or session pooling) nothing needs passing: ``open()``
    detects the pooler from the login check it sends anyway (pgbouncer announces a
    process id of its own, not the server's ``pg_backend_pid()``; no extra round trip,
    nothing after ``open()``). Then no statement is prepared on the server, and the
    role of ``act_as``, the ``statement_timeout`` and the URL's own ``options`` (``-c
    name=value`` settings only) are set transaction-locally at the start of every
    transaction, in the pipeline that already carries the RLS context, instead of at
    login, which pgbouncer refuses. ``pooler="pgbouncer"`` says so without detection
    (for a pooler that passes the server's process id through), ``pooler="none"``
    forces a direct connection's behaviour; ``behind_pooler`` tells which applies.

    ``replicas`` are URLs of read replicas (hot standbys streaming from the primary),
    each with a pool like the primary's (same sizes, options, pooler plan and login
    check). ``db.session(replica=True)`` runs on one of them, read-only; ``after=`` a
    primary session's ``s.commit_position`` waits up to ``replica_wait`` seconds for a
    replica that has replayed that commit. Without a usable replica such a session
    runs, read-only still, on the primary. A replica that cannot be reached is skipped
    for ``replica_retry_after`` seconds before sessions try it again. ``url`` may be a
    libpq multi-host URL with ``target_session_attrs=read-write``: after a failover, new
    connections find the promoted standby.
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
        prepare_threshold: PrepareThreshold = "auto",
        pooler: Pooler = "auto",
        replicas: Sequence[str] = (),
        replica_wait: float = 1.0,
        replica_retry_after: float = DOWN_FOR,
        slow_statement: float | None = None,
    ) -> None:
        self._act_as = act_as
        self._slow_statement = (
            None if slow_statement is None else timeout_ms(slow_statement, "slow_statement") / 1000
        )
        self._bypass_rls = bypass_rls
        self._opened = False
        self._open_lock = ALock()
        # Connection losses seen so far, and for each live connection the count it was
        # last known good at: a connection older than the last loss is tested once.
        self._losses = 0
        self._good_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], int] = (
            weakref.WeakKeyDictionary()
        )
        self._url = _conninfo(url if url is not None else url_from_env())
        settings: list[Setting] = []
        if act_as is not None:
            if not _ROLE_NAME.match(act_as):
                raise InvalidInput(f"act_as must be a plain role name, not {act_as!r}")
            settings.append(("role", act_as))
        if statement_timeout is not None:
            milliseconds = timeout_ms(statement_timeout, "statement_timeout")
            settings.append(("statement_timeout", str(milliseconds)))
        self._settings = tuple(settings)
        self._pooler = check_pooler(pooler)
        self._prepare_threshold: PrepareThreshold = prepare_threshold
        # The plan until open() detects a pooler (auto): a direct connection's.
        self._plan = self._plan_for(pooled=self._pooler == "pgbouncer")
        self.conninfo = _with_options(self._url, self._plan.startup_options)
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": self._plan.prepare_threshold,
        }
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name=name,
            kwargs=self._connect_kwargs,
            configure=self._configure,
            open=False,
        )
        if isinstance(replicas, str):
            raise InvalidInput("replicas must be a list of URLs, not one string")
        for option, seconds in (
            ("replica_wait", replica_wait),
            ("replica_retry_after", replica_retry_after),
        ):
            if isinstance(seconds, bool) or not (
                isinstance(seconds, int | float) and 0 <= seconds < math.inf
            ):
                raise InvalidInput(f"{option} must be seconds (0 or more), not {seconds!r}")
        self._replica_urls = tuple(_conninfo(replica) for replica in replicas)
        self._replicas = AsyncReplicas(
            [
                AsyncReplica(
                    _with_options(replica, self._plan.startup_options),
                    name=f"{name}-replica-{index}",
                    min_size=min_size,
                    max_size=max_size,
                    kwargs=self._connect_kwargs,
                    check_login=self._check_replica_login,
                    retry_after=replica_retry_after,
                )
                for index, replica in enumerate(self._replica_urls, 1)
            ],
            wait=replica_wait,
        )
        if True:  # ASYNC
            pass  # opened by `await db.open()` or `async with db`
        else:
            self.open()

    @classmethod
    def from_env(cls, **options: Any) -> Self:
        """A database from ``IMS_DATABASE_URL`` (else libpq's ``PG*`` variables)."""
        return cls(None, **options)

    @property
    def behind_pooler(self) -> bool:
        """Whether connections go through a pooler (named, or detected by ``open()``):
        then nothing is prepared on the server and no setting is sent at login."""
        return self._plan.pooled

    async def open(self) -> None:
        """Connect: check the login once (``UnsafeLogin``, ``DatabaseUnavailable``) and
        detect a pooler in the same statement, then open the pool. Opening an open
        database does nothing."""
        if self._opened:
            return
        async with self._open_lock:  # the first sessions of many tasks may open at once
            if self._opened:
                return
            detect = self._pooler == "auto"
            try:  # detecting: the URL as given, the settings in the check's transaction
                connection = await psycopg.AsyncConnection.connect(
                    self._url if detect else self.conninfo, autocommit=True, prepare_threshold=None
                )
            except psycopg.OperationalError as error:
                message = " ".join(str(error).split())
                if "unsupported startup parameter" in message:
                    message += (
                        " (a connection pooler refuses settings at login: pass "
                        "pooler='pgbouncer' and they are set in every transaction)"
                    )
                raise DatabaseUnavailable(f"cannot connect to the database: {message}") from error
            async with connection:
                settings = settings_statement(self._settings) if detect else self._plan.settings
                backend_pid = await self._check_login(connection, settings)
                if detect:
                    pooled = behind_pooler("auto", connection.info.backend_pid, backend_pid)
                    self._plan = self._plan_for(pooled=pooled)
                    self.conninfo = self._pool.conninfo = _with_options(
                        self._url, self._plan.startup_options
                    )
                    self._connect_kwargs["prepare_threshold"] = self._plan.prepare_threshold
                    for replica, replica_url in zip(
                        self._replicas.replicas, self._replica_urls, strict=True
                    ):  # replicas are reached the same way as the primary
                        replica.conninfo = replica.pool.conninfo = _with_options(
                            replica_url, self._plan.startup_options
                        )
            await self._pool.open()
            try:
                await self._replicas.open()
            except BaseException:
                await self._replicas.close()
                await self._pool.close()
                raise
            self._opened = True

    @asynccontextmanager
    async def session(
        self,
        user_id: int | None = None,
        *,
        statement_timeout: float | None = None,
        replica: bool = False,
        after: CommitPosition | None = None,
    ) -> AsyncIterator[AsyncSession]:
        """A session on one pooled connection with the RLS context ``user_id``.

        Leaving the block commits; an exception (also a cancelled task) rolls back and
        propagates. ``statement_timeout`` (seconds) caps each statement of this session
        only: it is set transaction-locally with the context, so it never reaches the
        next checkout.

        ``replica=True``: a read-only session, on a replica when one is usable within
        ``replica_wait`` (else on the primary); a statement that may write raises
        ``ReadOnlySession`` before it is sent. ``after`` (a primary session's
        ``commit_position``) picks only a replica that has replayed that commit.
        """
        if after is not None and not replica:
            raise InvalidInput("after= is for replica sessions: session(replica=True, after=…)")
        await self.open()
        lease = await self._replicas.checkout(after) if replica else None
        connection = lease.connection if lease is not None else await self._checkout()
        try:
            session = AsyncSession(
                connection,
                user_id,
                statement_timeout=statement_timeout,
                read_only=replica,
                track_commits=self._replicas.configured and not replica,
                settings=self._plan.settings,
                slow_statement=self._slow_statement,
            )
            try:
                yield session
            except BaseException:
                await session.close(failed=True)
                raise
            finally:
                session.forget_repositories()
            await session.close(failed=False)
        finally:
            if lease is not None:
                await self._replicas.release(lease)
            else:
                if connection.broken:
                    # The server went away (restart, network cut), maybe for every
                    # connection: the pool drops this one, the others are tested at
                    # their next checkout.
                    self._losses += 1
                    _log.warning(
                        "pool %r: a connection was lost during a session; the pool "
                        "replaces it and tests the others at their next checkout",
                        self._pool.name,
                    )
                await self._pool.putconn(connection)

    async def upsert_issues(
        self,
        issues: AItems[Any],
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
        never wait for each other's locks. Each session commits every batch it writes:
        this is not one transaction. When an item is refused (``InvalidInput``, naming its position
        in ``issues``) or a session fails, the others stop after their current batch
        and the error is raised here; the batches committed before stay committed (a
        re-run of the same input is safe: an item already stored counts one more crawl
        and changes nothing else). The pool needs ``connections`` free connections.
        Memory holds a few batches per connection, whatever the input's length.
        """
        return await parallel_upsert.upsert_issues(
            lambda: self.session(user_id=user_id),
            issues,
            connections=connections,
            batch_size=batch_size,
        )

    async def close(self) -> None:
        """Close every connection of the pool (and of the replicas' pools)."""
        await self._replicas.close()
        await self._pool.close()

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        """A working connection from the (open) pool; ``PoolExhausted`` after ``timeout`` s."""
        deadline = monotonic() + self._pool.timeout
        try:
            while True:
                connection = await self._pool.getconn(max(deadline - monotonic(), 0.0))
                losses = self._losses
                if self._good_at.get(connection, -1) >= losses:
                    return connection
                try:  # opened before the last loss: make sure it survived it
                    await connection.execute("")
                except psycopg.Error as error:
                    await self._pool.putconn(connection)  # broken: the pool replaces it
                    _log.warning(
                        "pool %r: a connection opened before a loss is dead (%s); replaced",
                        self._pool.name,
                        " ".join(str(error).split()) or type(error).__name__,
                    )
                    continue
                except BaseException:
                    # Cancelled (or interrupted) during the test: the caller never gets
                    # the connection, so give it back (tested again at its next checkout).
                    await self._pool.putconn(connection)
                    raise
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

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _plan_for(self, *, pooled: bool) -> ConnectionPlan:
        return plan_connections(
            str(conninfo_to_dict(self._url).get("options") or ""),
            self._settings,
            pooled=pooled,
            prepare_threshold=self._prepare_threshold,
        )

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Set up a new pooled connection: refuse an unsafe login, mark it good."""
        await self._check_login(connection, self._plan.settings)
        self._good_at[connection] = self._losses

    async def _check_replica_login(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """The login check of a replica's new connection: the primary's, with its plan."""
        await self._check_login(connection, self._plan.settings)

    async def _check_login(
        self, connection: psycopg.AsyncConnection[Any], settings: BoundStatement | None
    ) -> int:
        """Fail closed: refuse a connection whose role would see every row; the server
        process's id.

        ``settings`` (the role of ``act_as`` behind a pooler) are set for the check's
        transaction only, as every transaction of a session sets them: one pipeline,
        one implicit transaction, so the check sees the role the sessions will have."""
        try:
            async with connection.pipeline():
                if settings is not None:
                    await connection.execute(settings.text, settings.params)
                cursor = await connection.execute(_LOGIN_CHECK)
        except psycopg.errors.InsufficientPrivilege as error:
            raise UnsafeLogin(
                f"the login {connection.info.user!r} may not act as {self._act_as!r}: "
                f"{error}. Grant it the role, or connect as a runtime login."
            ) from error
        row = await cursor.fetchone()
        role, superuser, bypass_rls, backend_pid = row if row is not None else ("?", True, True, 0)
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
        return int(backend_pid)


def _conninfo(url: str) -> str:
    try:
        return make_conninfo(url)
    except psycopg.ProgrammingError as error:
        raise InvalidInput(f"not a valid database URL: {error}") from error


def _with_options(conninfo: str, options: str) -> str:
    """``conninfo`` with ``options`` as its server options (none when empty)."""
    if options:
        return make_conninfo(conninfo, options=options)
    params = conninfo_to_dict(conninfo)
    if "options" not in params:
        return conninfo
    del params["options"]
    return make_conninfo("", **params)


