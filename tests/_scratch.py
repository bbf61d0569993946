"""Scratch databases and logins for the migration, CLI and RLS tests.

Kept small and in one place on purpose: the shared pytest plugin will replace it.
Superuser connection from ``IMS_TEST_ADMIN_URL`` (default: local ``postgres``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ADMIN_URL = os.environ.get("IMS_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(dbname: str, user: str | None = None) -> str:
    """A libpq connection string for ``dbname`` (as ``user``, default the admin's)."""
    extra: dict[str, str] = {"dbname": dbname}
    if user is not None:
        extra["user"] = user
    return make_conninfo(ADMIN_URL, **extra)


def _admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(owner: str | None = None, template: str | None = None) -> Iterator[str]:
    """Create ``ims_t_<random>``, yield its name, drop it (even with open sessions).

    ``template``: clone that database (it must have no open connections).
    """
    name = f"ims_t_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if owner is not None:
        create = sql.SQL("{} OWNER {}").format(create, sql.Identifier(owner))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    _admin_execute(create)
    try:
        yield name
    finally:
        _admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def new_role_name(prefix: str = "ims_t_login") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def drop_role(name: str) -> None:
    """Drop a cluster-wide role a test created (after its databases are gone)."""
    _admin_execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
