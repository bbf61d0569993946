"""Schema migrations (yoyo-migrations, plain SQL files) and role administration.

The SQL lives in ``migrations/`` at the top of the repository (shipped in the wheel as
the package ``ims_repo._migrations``). Every file but ``0001.roles`` starts with
``SET LOCAL ROLE ims_owner``, so every object in schema ``ims`` is owned by
``ims_owner`` whoever runs the migration (a superuser, or a member of ``ims_owner``
once the roles exist); yoyo's own bookkeeping tables stay with the connecting user.

Public functions take a libpq connection string: a URL (``postgresql://…``), a
``key=value`` string, or ``""`` for libpq's ``PG*`` environment variables.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, Final
from urllib.parse import urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from yoyo import exceptions as yoyo_exceptions  # type: ignore[import-untyped]
from yoyo import get_backend, read_migrations

__all__ = [
    "APP_ROLE",
    "OWNER_ROLE",
    "USER_ROLES",
    "MigrationError",
    "UnknownUser",
    "database_url",
    "grant_login",
    "libpq_conninfo",
    "migrate",
    "migrations_path",
    "rollback",
    "set_role",
    "status",
]

#: The role that owns every object in schema ``ims`` (NOLOGIN).
OWNER_ROLE: Final = "ims_owner"
#: The runtime role; a runtime login is any LOGIN role that is a member of it.
APP_ROLE: Final = "ims_app"
#: The values of ``ims.users.role``.
USER_ROLES: Final = ("admin", "user")

_MIGRATION_TABLE: Final = "_yoyo_migration"


class MigrationError(RuntimeError):
    """A migration could not be read or run (bad file, unknown dependency, lock held).

    Errors raised by the database itself while a migration runs are psycopg errors.
    """


class UnknownUser(LookupError):
    """``set_role`` was given a username that is not in ``ims.users``."""


def migrations_path() -> pathlib.Path:
    """The directory holding the SQL migrations.

    In a source checkout this is the repository's ``migrations/``; in an installed
    wheel it is the package ``ims_repo._migrations``.
    """
    checkout = pathlib.Path(__file__).resolve().parents[2] / "migrations"
    if checkout.is_dir():
        return checkout
    packaged = resources.files("ims_repo._migrations")
    if isinstance(packaged, pathlib.Path):
        return packaged
    # migrations/ has no __init__.py, so the packaged directory is a namespace package
    # and files() gives a MultiplexedPath (no usable str()); yoyo needs a real
    # directory, which the package's search locations name.
    spec = importlib.util.find_spec("ims_repo._migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if pathlib.Path(location).is_dir():
            return pathlib.Path(location)
    raise FileNotFoundError("the ims_repo._migrations package has no migrations directory")


def database_url(explicit: str | None) -> str:
    """The connection string to use: ``explicit``, else ``IMS_DATABASE_URL``, else ``""``.

    ``""`` lets libpq fall back to its ``PG*`` environment variables.
    """
    if explicit:
        return explicit
    return os.environ.get("IMS_DATABASE_URL", "")


def libpq_conninfo(url: str) -> str:
    """Accept yoyo's ``postgresql+psycopg://`` spelling as well as libpq's own."""
    for prefix in ("postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _yoyo_uri(url: str) -> str:
    """Translate a libpq connection string into a yoyo URI.

    yoyo parses URIs itself (``urlsplit``), which misreads some valid libpq strings
    (several hosts, Unix-socket directories, ``key=value`` form). libpq parses the
    string here instead, and every parameter is handed to yoyo in the query string,
    which yoyo passes verbatim to ``psycopg.connect``.
    """
    params = conninfo_to_dict(libpq_conninfo(url))
    return "postgresql+psycopg://?" + urlencode({k: str(v) for k, v in params.items()})


_YOYO_ERRORS: Final = (
    yoyo_exceptions.BadMigration,
    yoyo_exceptions.MigrationConflict,
    yoyo_exceptions.LockTimeout,
)


@contextmanager
def _backend(url: str) -> Iterator[Any]:
    """A yoyo backend on ``url``; yoyo's own errors become :class:`MigrationError`."""
    try:
        backend = get_backend(_yoyo_uri(url), migration_table=_MIGRATION_TABLE)
    except _YOYO_ERRORS as exc:
        raise MigrationError(str(exc)) from exc
    try:
        yield backend
    except _YOYO_ERRORS as exc:
        raise MigrationError(str(exc)) from exc
    finally:
        backend.connection.close()


def _migrations() -> Any:
    """Read and parse every migration now.

    yoyo's apply loop skips a migration that fails to load (``BadMigration``) without
    a word; loading them all up front makes a broken file or dependency fail loudly.
    """
    found = read_migrations(str(migrations_path()))
    try:
        found.check_conflicts()
        for migration in found:
            migration.load()
    except _YOYO_ERRORS as exc:
        raise MigrationError(str(exc)) from exc
    return found


def migrate(url: str) -> list[str]:
    """Apply every pending migration; return the ids applied, in order (empty if none)."""
    migrations = _migrations()
    with _backend(url) as backend, backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
        return [str(m.id) for m in pending]


def rollback(url: str, count: int | None = 1) -> list[str]:
    """Roll back the last ``count`` applied migrations (``None``: all of them).

    Returns the ids rolled back, most recent first.
    """
    if count is not None and count < 0:
        raise ValueError(f"count must be a positive number or None, not {count}")
    migrations = _migrations()
    with _backend(url) as backend, backend.lock():
        applied = backend.to_rollback(migrations)
        chosen = applied if count is None else applied[:count]
        backend.rollback_migrations(chosen)
        return [str(m.id) for m in chosen]


def status(url: str) -> list[tuple[str, bool]]:
    """Every known migration, in order, with whether it is applied.

    Read-only: it reads yoyo's table directly, because opening a yoyo backend creates
    yoyo's bookkeeping tables in a database that has none.
    """
    migrations = _migrations()
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        # Found through search_path, as yoyo finds its own (unqualified) table.
        table = conn.execute(
            "SELECT n.nspname, c.relname"
            " FROM pg_catalog.pg_class AS c"
            " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE c.oid = to_regclass(%s)",
            (_MIGRATION_TABLE,),
        ).fetchone()
        applied: set[str] = set()
        if table is not None:
            query = sql.SQL("SELECT migration_hash FROM {}").format(sql.Identifier(*table))
            applied = {str(r[0]) for r in conn.execute(query)}
    return [(str(m.id), m.hash in applied) for m in migrations]


def grant_login(url: str, name: str, password: str | None = None) -> None:
    """Create (or fix up) the runtime login ``name``: LOGIN, member of ``ims_app``.

    Idempotent: an existing role is given LOGIN and INHERIT and the membership (and
    the password, when one is given, sent as a SCRAM verifier computed on the client). A
    role that is a superuser or has BYPASSRLS is
    refused, since it would see every row. Needs a connection allowed to create roles.
    """
    if not name:
        raise ValueError("a login name is required")
    role = sql.Identifier(name)
    with psycopg.connect(libpq_conninfo(url)) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = %s",
            (name,),
        ).fetchone()
        if row is not None and (row[0] or row[1]):
            raise ValueError(
                f"role {name!r} is a superuser or has BYPASSRLS; it cannot be a runtime login "
                "(row-level security would not apply to it)"
            )
        password_clause = (
            sql.SQL(" PASSWORD {}").format(sql.Literal(scram_verifier(conn, name, password)))
            if password is not None
            else sql.SQL("")
        )
        if row is None:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN INHERIT NOSUPERUSER NOBYPASSRLS"
                    " NOCREATEDB NOCREATEROLE{} IN ROLE {}"
                ).format(role, password_clause, sql.Identifier(APP_ROLE))
            )
        else:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN INHERIT{}").format(role, password_clause))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), role))


def scram_verifier(conn: psycopg.Connection[Any], name: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of *password* for role *name*, computed here by libpq.

    ``ALTER ROLE … PASSWORD`` with the verifier stores it as is, so the plaintext never
    reaches the server, its statement log or ``pg_stat_activity``.
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
    return verifier.decode("ascii")


def set_role(url: str, username: str, role: str) -> None:
    """Make ``username`` an admin or an ordinary user (``role``: ``admin`` or ``user``).

    This is the owner's path (the runtime role cannot change ``ims.users.role``): it
    acts as ``ims_owner`` for one transaction, so the connecting role must be a
    superuser or a member of ``ims_owner``. The change is audited (actor NULL).
    Raises ``ValueError`` for an unknown role and ``UnknownUser`` for an unknown user.
    """
    if role not in USER_ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(USER_ROLES)}")
    with psycopg.connect(libpq_conninfo(url)) as conn:
        # Transaction-local: reverts at commit or rollback.
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        found = conn.execute(
            "SELECT user_id FROM ims.users WHERE username = %s FOR UPDATE",
            (username,),
        ).fetchone()
        if found is None:
            raise UnknownUser(f"no user named {username!r} in ims.users")
        conn.execute(
            "UPDATE ims.users SET role = %s, updated_at = now()"
            " WHERE user_id = %s AND role IS DISTINCT FROM %s",
            (role, found[0], role),
        )
