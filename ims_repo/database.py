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
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from ims_repo.errors import InvalidInput, UnsafeLogin
from ims_repo.session import Session

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
    ) -> None:
        self._act_as = act_as
        self._bypass_rls = bypass_rls
        self.conninfo = _conninfo(url if url is not None else os.environ.get(URL_VARIABLE, ""))
        if act_as is not None:
            self.conninfo = _with_role(self.conninfo, act_as)
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            self._check_login(connection)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name=name,
            kwargs={"autocommit": True},
            configure=self._check_login,
            open=True,
        )

    @classmethod
    def from_env(cls, **options: Any) -> Database:
        """A database from ``IMS_DATABASE_URL`` (else libpq's ``PG*`` variables)."""
        return cls(None, **options)

    @contextmanager
    def session(self, user_id: int | None = None) -> Iterator[Session]:
        """A session on one pooled connection with the RLS context ``user_id``.

        Leaving the block commits; an exception rolls back and propagates.
        """
        with self._pool.connection() as connection:
            session = Session(connection, user_id)
            try:
                yield session
            except BaseException:
                session.close(failed=True)
                raise
            session.close(failed=False)

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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


def _with_role(conninfo: str, role: str) -> str:
    if not _ROLE_NAME.match(role):
        raise InvalidInput(f"act_as must be a plain role name, not {role!r}")
    options = conninfo_to_dict(conninfo).get("options") or ""
    return make_conninfo(conninfo, options=f"{options} -c role={role}".strip())


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
