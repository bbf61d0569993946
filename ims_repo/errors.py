"""The exceptions ims_repo raises, and the mapping from psycopg's errors to them.

Every error a caller can act on says what happened in the caller's words (table, key,
the named statement and where it is written) and is chained to psycopg's error, so the
SQLSTATE and server diagnostics stay one ``__cause__`` away. This module does no I/O.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import psycopg
from psycopg import errors as pg

if TYPE_CHECKING:
    from ims_repo.loader import Statement


class ImsRepoError(Exception):
    """Base class of every error raised by ims_repo."""

    def __init__(self, message: str, *, table: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.key = key


class QueryFileError(ImsRepoError):
    """A ``.sql`` file is malformed or does not match the code that calls it.

    Raised when the file is loaded, never at the first call; the message starts with
    ``file:line``.
    """


class NotFound(ImsRepoError, LookupError):
    """The row to update or read does not exist (or the RLS context cannot see it)."""


class Duplicate(ImsRepoError):
    """A unique constraint refused the row (SQLSTATE 23505)."""


class ForeignKeyViolation(ImsRepoError):
    """A referenced row is missing, or a row is still referenced (SQLSTATE 23503)."""


class PermissionDenied(ImsRepoError):
    """Refused by privileges or by a row-level-security policy (SQLSTATE 42501)."""


class InvalidInput(ImsRepoError, ValueError):
    """Input refused before any SQL ran, or a data error from the server (class 22)."""


class TransactionAborted(ImsRepoError):
    """A statement ran after an earlier failure in the same transaction (SQLSTATE 25P02).

    As in PostgreSQL, call ``s.rollback()`` to start over, or wrap the statement that
    may fail in ``with s.savepoint():``.
    """


class UnsafeLogin(ImsRepoError):
    """The login would bypass row-level security (superuser or BYPASSRLS)."""


class DatabaseError(ImsRepoError):
    """Any other server or connection error, with the statement that met it."""


_TABLE_IN_MESSAGE = re.compile(r'(?:table|relation) "(?P<table>[^"]+)"')
_KEY_IN_DETAIL = re.compile(r"Key \((?P<key>.*)\)(?: is not present| is still referenced| already)")


def map_error(error: psycopg.Error, statement: Statement | None = None) -> ImsRepoError:
    """Translate a psycopg error into the ims_repo error a caller catches."""
    diag = error.diag
    table = diag.table_name or _search(_TABLE_IN_MESSAGE, diag.message_primary, "table")
    key = _search(_KEY_IN_DETAIL, diag.message_detail, "key")
    where = f" [{statement.label} at {statement.location}]" if statement is not None else ""
    about = f"ims.{table}" if table else "the database"
    detail = f": {diag.message_detail}" if diag.message_detail else ""
    primary = diag.message_primary or str(error)

    kind: type[ImsRepoError]
    if isinstance(error, pg.UniqueViolation):
        kind, text = Duplicate, f"{about} already has this key{detail}"
    elif isinstance(error, pg.ForeignKeyViolation):
        kind, text = ForeignKeyViolation, f"{primary}{detail}"  # names both tables
    elif isinstance(error, pg.InsufficientPrivilege):
        kind, text = PermissionDenied, f"{about}: {primary}"
    elif isinstance(error, pg.InFailedSqlTransaction):
        kind = TransactionAborted
        text = "the transaction was aborted by an earlier error; call rollback() to start over"
    elif error.sqlstate is not None and error.sqlstate.startswith(("22", "23")):
        # Class 22 is bad data; the rest of class 23 are CHECK and NOT NULL refusals.
        kind, text = InvalidInput, f"{about}: {primary}{detail}"
    else:
        kind, text = DatabaseError, primary
    return kind(text + where, table=table, key=key)


def _search(pattern: re.Pattern[str], text: str | None, group: str) -> str | None:
    match = pattern.search(text or "")
    return match.group(group) if match else None
