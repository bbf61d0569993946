"""The exceptions ims_repo raises.

Every error a caller can act on says what happened in the caller's words (table, key,
the named statement and where it is written) and is chained to psycopg's error, so the
SQLSTATE and server diagnostics stay one ``__cause__`` away (``ims_repo.db.errors``
maps psycopg's errors to these). Importable as ``ims_repo.errors`` too.
"""

from __future__ import annotations


class ImsRepoError(Exception):
    """Base class of every error raised by ims_repo."""

    def __init__(self, message: str, *, table: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        """The table concerned (``users``…), when one is."""
        self.key = key
        """The key of the row concerned, as text, when one is."""


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


class ReadOnlySession(ImsRepoError):
    """A replica session (``db.session(replica=True)``) was asked to change something.

    A named statement that is not read-only (``Statement.read_only``) is refused before
    it is sent; raw SQL (``s.execute``) runs in a ``READ ONLY`` transaction, so the
    server refuses a write (SQLSTATE 25006, also what a hot standby answers), mapped to
    this. Write in a session on the primary (``db.session()``).
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
