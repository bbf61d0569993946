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
    """Input refused before any SQL ran, or a data error from the server (class 22), or
    input beyond a server limit (class 54)."""


class TransactionAborted(ImsRepoError):
    """A statement ran after an earlier failure in the same transaction (SQLSTATE 25P02).

    As in PostgreSQL, call ``s.rollback()`` to start over, or wrap the statement that
    may fail in ``with s.savepoint():``.
    """


class UnsafeLogin(ImsRepoError):
    """The login would bypass row-level security (superuser or BYPASSRLS)."""


class DatabaseError(ImsRepoError):
    """Any other server or connection error, with the statement that met it."""


class DatabaseUnavailable(DatabaseError):
    """The connection was lost or the server is shutting down or starting up (SQLSTATE
    class 08, 57P01, 57P02, 57P03, or a connection that broke under the statement).

    Nothing of the open transaction was committed (unless the connection broke during
    the COMMIT itself, when the outcome is unknown). The pool discards the broken
    connection; the caller retries its work in a new session, which gets a fresh one.
    """


class PoolExhausted(DatabaseUnavailable):
    """No pooled connection became free within the pool's ``timeout``: every connection
    is in use (or none could be opened); the message gives the wait and the pool size."""


class StatementTimeout(DatabaseError):
    """The server cancelled the statement (SQLSTATE 57014): it ran longer than
    ``statement_timeout``, or someone cancelled it.

    As with any failed statement the transaction is aborted: ``s.rollback()`` (or the
    end of the block) makes the connection usable again.
    """


class TransactionConflict(DatabaseError):
    """The transaction lost a deadlock or a serialization check (SQLSTATE 40P01, 40001).

    Nothing of it was committed; running the whole transaction again is the fix.
    """


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
        # With row-level security the server leaves the key out of the detail; the
        # constraint's name (users_username_key) still says which key it was.
        constraint = f" ({diag.constraint_name})" if diag.constraint_name else ""
        kind, text = Duplicate, f"{about} already has this key{constraint}{detail}"
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
    elif error.sqlstate is not None and error.sqlstate.startswith("54"):
        # Class 54: the input is beyond a server limit (a search text so long its query
        # tree overflows the stack, an index entry or tsvector too large).
        kind, text = InvalidInput, f"{about}: input exceeds a server limit: {primary}"
    elif isinstance(error, pg.QueryCanceled):
        kind, text = StatementTimeout, f"statement cancelled by the server: {primary}"
    elif isinstance(error, pg.DeadlockDetected | pg.SerializationFailure):
        kind = TransactionConflict
        text = f"{primary}; nothing was committed, run the transaction again"
    elif _is_connection_loss(error):
        kind = DatabaseUnavailable
        text = (
            f"lost the connection to the server ({' '.join(primary.split())}); nothing of "
            "the open transaction was committed, retry in a new session"
        )
    else:
        kind, text = DatabaseError, primary
    return kind(text + where, table=table, key=key)


def _is_connection_loss(error: psycopg.Error) -> bool:
    """Whether the error means the connection is gone or the server is not serving:
    class 08, admin/crash shutdown and "cannot connect now" (57P01, 57P02, 57P03), or a
    client-side failure without SQLSTATE (the socket closed under the statement)."""
    state = error.sqlstate
    if state is None:
        return isinstance(error, psycopg.OperationalError)
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _search(pattern: re.Pattern[str], text: str | None, group: str) -> str | None:
    match = pattern.search(text or "")
    return match.group(group) if match else None
