"""Read replicas: a pool per replica, and the choice of one for each replica session.

``AsyncDatabase(url, replicas=[…])`` keeps one ``AsyncReplica`` (a pool, opened like the
primary's, each connection checked by the same login check) per replica URL in an
``AsyncReplicas``. ``db.session(replica=True)`` asks it for a connection:

- replicas are tried in turn (round robin), each checkout bounded by ``replica_wait``;
- with ``after=`` (a ``CommitPosition``), a replica is used only once it has replayed
  the WAL up to there (``pg_last_wal_replay_lsn()``, asked on the connection it would
  use); the replicas are asked again, every few milliseconds, until ``replica_wait`` has
  passed;
- no replica usable in time: ``None``, and the session runs on the primary. Why is
  logged on ``logging.getLogger("ims_repo.replicas")``.

A replica that cannot be reached (no connection within the wait) is skipped for
``replica_retry_after`` seconds (``DOWN_FOR`` unless given), logged once as a warning, so
that sessions do not each wait for it; after that it is tried again. A connection lost
under a session fails that session with ``DatabaseUnavailable``; the replica's other
connections, opened before the loss, are tested (an empty query) at their next checkout,
as on the primary.

PostgreSQL 15 has no way to wait for a replay position on the server, hence the polling;
its cost is one round trip per replica asked, only for sessions given ``after=``.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ims_repo.core.positions import CommitPosition
from ims_repo.core.statements.replication import REPLAYED_POSITION
from ims_repo.db._acompat import AsyncLoginCheck, asleep

logger = logging.getLogger("ims_repo.replicas")

DOWN_FOR = 5.0
"""Seconds a replica that could not be reached is skipped before it is tried again, by
default (``replica_retry_after``)."""
_FIRST_POLL = 0.002
_LAST_POLL = 0.05


class AsyncReplica:
    """One replica: its pool, and whether it is known to be unreachable."""

    def __init__(
        self,
        conninfo: str,
        *,
        name: str,
        min_size: int,
        max_size: int,
        kwargs: dict[str, Any],
        check_login: AsyncLoginCheck,
        retry_after: float,
    ) -> None:
        self.conninfo = conninfo
        self.retry_after = retry_after
        self.label = _label(conninfo)
        self._check_login = check_login
        self._down_until = 0.0
        self._losses = 0
        # The pool's failed connection attempts as of the last checkout that got a
        # connection: more at a checkout that gets none means the replica stopped
        # answering (rather than having every connection in use).
        self._errors_seen = 0
        self._good_at: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], int] = (
            weakref.WeakKeyDictionary()
        )
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            name=name,
            kwargs=kwargs,
            configure=self._configure,
            open=False,
        )

    async def open(self, connect_timeout: int) -> None:
        """Check the login on one connection (``UnsafeLogin`` propagates: fail closed),
        then open the pool without waiting for it. An unreachable replica does not stop
        the database from opening: it is logged and skipped until it answers."""
        try:
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=connect_timeout
            )
        except psycopg.OperationalError as error:
            self.mark_down(f"cannot connect: {' '.join(str(error).split())}")
        else:
            async with connection:
                await self._check_login(connection)
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @property
    def down(self) -> bool:
        return monotonic() < self._down_until

    def mark_down(self, why: str) -> None:
        """Skip this replica for ``retry_after`` seconds; logged once per outage."""
        if not self.down:
            logger.warning(
                "replica %s is unreachable (%s); replica sessions skip it for %g s",
                self.label,
                why,
                self.retry_after,
            )
        self._down_until = monotonic() + self.retry_after

    async def getconn(self, deadline: float) -> psycopg.AsyncConnection[Any] | None:
        """A working connection, waiting until ``deadline`` at most; None if there is none
        (the replica is then marked down if the pool failed to open a connection since the
        last checkout that got one, rather than merely having every connection in use)."""
        while True:
            try:
                connection = await self.pool.getconn(max(deadline - monotonic(), 0.001))
            except PoolTimeout:
                # pool_size counts a connection the pool is still trying to open (it
                # retries for minutes): it is 0 only once the pool has given up.
                stats = self.pool.get_stats()
                failing = stats.get("connections_errors", 0) > self._errors_seen
                if failing or stats.get("pool_size", 0) == 0:
                    self.mark_down("no connection could be opened")
                return None
            losses = self._losses
            if self._good_at.get(connection, -1) < losses:
                try:  # opened before the last loss: make sure it survived it
                    await connection.execute("")
                except psycopg.Error:
                    await self.pool.putconn(connection)  # broken: the pool replaces it
                    continue
                except BaseException:
                    await self.pool.putconn(connection)
                    raise
                self._good_at[connection] = losses
            self._errors_seen = self.pool.get_stats().get("connections_errors", 0)
            return connection

    async def putconn(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if connection.broken:
            # Maybe a restart that took every connection: the others are tested at their
            # next checkout. The replica is not skipped for this alone (one connection
            # may have been ended on its own); a checkout that finds none marks it down.
            self._losses += 1
        await self.pool.putconn(connection)

    async def replayed(self, connection: psycopg.AsyncConnection[Any]) -> CommitPosition | None:
        """How far this replica has replayed the WAL; None when it is not in recovery
        (promoted) or the connection failed (then given back, and the replica marked)."""
        try:
            row = await (await connection.execute(REPLAYED_POSITION.query)).fetchone()
        except psycopg.Error:
            await self.putconn(connection)
            raise
        return None if row is None or row[0] is None else CommitPosition.parse(row[0])

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Set up a new pooled connection: the primary's login check, then mark it good."""
        await self._check_login(connection)
        self._good_at[connection] = self._losses


@dataclass(frozen=True)
class ReplicaLease:
    """A connection checked out of a replica's pool for one session."""

    replica: AsyncReplica
    connection: psycopg.AsyncConnection[Any]


class AsyncReplicas:
    """The replicas of one database (possibly none) and the choice among them."""

    def __init__(self, replicas: Sequence[AsyncReplica], *, wait: float) -> None:
        self.replicas = tuple(replicas)
        self.wait = wait
        self._turn = itertools.count()

    @property
    def configured(self) -> bool:
        """Whether there is any replica (then primary sessions track commit positions)."""
        return bool(self.replicas)

    async def open(self) -> None:
        connect_timeout = max(2, int(self.wait + 0.999))  # libpq's minimum is 2 s
        for replica in self.replicas:
            await replica.open(connect_timeout)

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.close()

    async def checkout(self, after: CommitPosition | None) -> ReplicaLease | None:
        """A connection on a replica that has replayed ``after`` (any replica when None),
        within ``wait`` seconds; None when there is none: the caller uses the primary."""
        if not self.replicas:
            return None
        deadline = monotonic() + self.wait
        delay = _FIRST_POLL
        behind = False
        while True:
            for replica in self._in_turn():
                if replica.down:
                    continue
                connection = await replica.getconn(deadline)
                if connection is None:
                    continue
                if after is None:
                    return ReplicaLease(replica, connection)
                try:
                    replayed = await replica.replayed(connection)
                except psycopg.Error:
                    continue  # given back and marked by replayed()
                if replayed is not None and replayed >= after:
                    return ReplicaLease(replica, connection)
                behind = True
                await replica.pool.putconn(connection)
            remaining = deadline - monotonic()
            if after is None or remaining <= 0 or all(r.down for r in self.replicas):
                break
            await asleep(min(delay, remaining))
            delay = min(delay * 2, _LAST_POLL)
        if behind:
            logger.info(
                "no replica replayed commit position %s within %g s; the session runs "
                "on the primary",
                after,
                self.wait,
            )
        else:
            logger.warning(
                "no replica is reachable within %g s; the session runs on the primary",
                self.wait,
            )
        return None

    async def release(self, lease: ReplicaLease) -> None:
        await lease.replica.putconn(lease.connection)

    def _in_turn(self) -> list[AsyncReplica]:
        """The replicas, starting from the next one in turn (spreads sessions evenly)."""
        start = next(self._turn) % len(self.replicas)
        return [*self.replicas[start:], *self.replicas[:start]]


def _label(conninfo: str) -> str:
    """``host:port`` of a replica, for log lines (never its password)."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}"
