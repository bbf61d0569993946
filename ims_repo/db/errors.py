"""psycopg's errors as ims_repo's: ``map_error`` names the table, the key and the named
statement (``file:line``) in the caller's words and keeps psycopg's error as the cause."""

from __future__ import annotations

import re

import psycopg
from psycopg import errors as pg

from ims_repo.core.errors import (
    DatabaseError,
    DatabaseUnavailable,
    Duplicate,
    ForeignKeyViolation,
    ImsRepoError,
    InvalidInput,
    PermissionDenied,
    ReadOnlySession,
    StatementTimeout,
    TransactionAborted,
    TransactionConflict,
)
from ims_repo.core.loader import Statement

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
    elif isinstance(error, pg.ReadOnlySqlTransaction):
        # A write in a READ ONLY transaction (a replica session's raw SQL) or on a standby.
        kind, text = ReadOnlySession, f"refused, the session is read-only: {primary}"
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
