"""yoyo's migration lock, and breaking one left by a crashed run (``ims-repo break-lock``).

yoyo 9 takes its lock by inserting the one row of its table ``yoyo_lock`` (columns
``locked`` = 1, ``ctime``: UTC time without zone, ``pid``: the client process id),
committed before the migrations run, and deletes the row when they end. A run killed
in between leaves the row, and every later ``migrate`` / ``rollback`` waits for it and
fails with ``LockTimeout``. The table is found through ``search_path``, as yoyo finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from ims_repo.services.migrations import MigrationError, libpq_conninfo

__all__ = ["LOCK_TABLE", "LockHolder", "break_lock", "lock_holder"]

LOCK_TABLE = "yoyo_lock"


@dataclass(frozen=True)
class LockHolder:
    """Who took the lock, as yoyo recorded it."""

    pid: int  # the process id of the migrating client, on the machine it ran on
    since: datetime | None  # UTC

    def __str__(self) -> str:
        when = f" since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        return f"process {self.pid}{when}"


def lock_holder(url: str) -> LockHolder | None:
    """The lock's holder, or None when no migration lock is held."""
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        table = _table(connection)
        if table is None:
            return None
        row = connection.execute(
            sql.SQL("SELECT pid, ctime FROM {} ORDER BY ctime LIMIT 1").format(table)
        ).fetchone()
    return None if row is None else LockHolder(int(row[0]), row[1])


def break_lock(url: str) -> LockHolder:
    """Remove the lock and say who held it; :class:`MigrationError` when none is held.

    Only for a lock whose run has died: breaking the lock of a run still going lets a
    second run migrate beside it.
    """
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as connection:
        table = _table(connection)
        rows = (
            []
            if table is None
            else connection.execute(
                sql.SQL("DELETE FROM {} RETURNING pid, ctime").format(table)
            ).fetchall()
        )
    if not rows:
        raise MigrationError("no migration lock is held: nothing to break")
    pid, since = min(rows, key=lambda row: (row[1] is None, row[1]))
    return LockHolder(int(pid), since)


def _table(connection: psycopg.Connection[tuple[object, ...]]) -> sql.Composable | None:
    row = connection.execute(
        "SELECT n.nspname, c.relname"
        " FROM pg_catalog.pg_class AS c"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass(%s)",
        (LOCK_TABLE,),
    ).fetchone()
    return None if row is None else sql.Identifier(str(row[0]), str(row[1]))
