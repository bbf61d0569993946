"""A session: one pooled connection, one transaction at a time, one RLS context.

How the context is kept from leaking (SPEC §3): connections are in autocommit mode, and
the session opens each transaction itself by sending, in one pipelined round trip,
``BEGIN``, ``SELECT ims.set_current_user(…)`` (a transaction-local setting) and the first
statement. Commit, rollback, an exception or a lost connection all end the transaction,
and with it the setting, so the next checkout of the connection starts with none.

A read-only named statement (``Statement.read_only``) met outside a transaction skips
``BEGIN``: the context and the statement go in one pipeline, whose single Sync makes them
one implicit transaction that ends with the result. A checkout that only reads thus
costs one round trip per statement and no ``COMMIT``; under READ COMMITTED each statement
sees a fresh snapshot either way. Writes, raw SQL and everything after them run in the
explicit transaction as above. The
context is set at the start of *every* transaction, also to "none", so even a
session-level setting left by raw SQL is never seen by a later checkout. A per-session
``statement_timeout`` travels the same way (transaction-local, in the same pipeline).

Rows come back as tuples and are zipped with the result's column names (decoded once per
result) into the mapping pydantic validates: cheaper than psycopg's ``dict_row``. A
statement that builds its whole result as one JSON document on the server
(``fetch_json``) is read as text and validated by pydantic-core straight from it, with
no Python objects in between.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader
from pydantic import BaseModel, TypeAdapter, ValidationError

from ims_repo import loader
from ims_repo.errors import (
    DatabaseError,
    DatabaseUnavailable,
    InvalidInput,
    TransactionAborted,
    map_error,
)
from ims_repo.loader import BoundStatement
from ims_repo.repositories.analytics import AnalyticsRepository
from ims_repo.repositories.attachments import AttachmentRepository
from ims_repo.repositories.audit import AuditRepository
from ims_repo.repositories.comments import CommentRepository
from ims_repo.repositories.crawl_sessions import CrawlSessionRepository
from ims_repo.repositories.history import HistoryRepository
from ims_repo.repositories.issues import IssueRepository
from ims_repo.repositories.search import SearchRepository
from ims_repo.repositories.search_queries import SearchQueryRepository
from ims_repo.repositories.session_errors import SessionErrorRepository
from ims_repo.repositories.session_issues import SessionIssueRepository
from ims_repo.repositories.users import UserRepository

R = TypeVar("R", bound=BaseModel)
Row = TypeVar("Row")

_CONTEXT = loader.load("context")
_SET_CONTEXT = _CONTEXT.statement("set_current_user", "user_id")
# Sent in the same pipeline as BEGIN and the context, like them transaction-local.
_SET_STATEMENT_TIMEOUT = _CONTEXT.statement("set_statement_timeout", "timeout")


class Session:
    """Runs named statements for one caller; obtained from ``Database.session()``.

    The repositories (``s.users``, ``s.crawl_sessions``, …) are attributes; ``execute``
    runs raw SQL; ``commit``/``rollback`` end the current transaction early and the
    context holds for the rest of the block; ``savepoint()`` lets a statement fail
    without aborting the transaction.
    """

    def __init__(
        self,
        connection: psycopg.Connection[Any],
        user_id: int | None,
        *,
        statement_timeout: float | None = None,
    ) -> None:
        self._connection = connection
        self._user_id = _check_user_id(user_id)
        # What each transaction begins with, bound once for the session.
        self._context = _SET_CONTEXT.bind({"user_id": self._user_id})
        self._timeout = (
            None
            if statement_timeout is None
            else _SET_STATEMENT_TIMEOUT.bind(
                {"timeout": str(timeout_ms(statement_timeout, "statement_timeout"))}
            )
        )
        self.statements_sent = 0
        """Statements sent for the caller (not counting BEGIN, context and COMMIT)."""

    # --- repositories -------------------------------------------------------------

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self)

    @cached_property
    def crawl_sessions(self) -> CrawlSessionRepository:
        return CrawlSessionRepository(self)

    @cached_property
    def issues(self) -> IssueRepository:
        return IssueRepository(self)

    @cached_property
    def session_issues(self) -> SessionIssueRepository:
        return SessionIssueRepository(self)

    @cached_property
    def comments(self) -> CommentRepository:
        return CommentRepository(self)

    @cached_property
    def history(self) -> HistoryRepository:
        return HistoryRepository(self)

    @cached_property
    def attachments(self) -> AttachmentRepository:
        return AttachmentRepository(self)

    @cached_property
    def search_queries(self) -> SearchQueryRepository:
        return SearchQueryRepository(self)

    @cached_property
    def session_errors(self) -> SessionErrorRepository:
        return SessionErrorRepository(self)

    @cached_property
    def analytics(self) -> AnalyticsRepository:
        return AnalyticsRepository(self)

    @cached_property
    def audit(self) -> AuditRepository:
        return AuditRepository(self)

    @cached_property
    def search(self) -> SearchRepository:
        return SearchRepository(self)

    # --- context and transactions -------------------------------------------------

    @property
    def user_id(self) -> int | None:
        """The RLS context: the user whose rows this session sees, or None (no rows)."""
        return self._user_id

    def set_user(self, user_id: int | None) -> None:
        """Change the RLS context, at once and for the rest of the block."""
        self._user_id = _check_user_id(user_id)
        self._context = _SET_CONTEXT.bind({"user_id": self._user_id})
        if self.in_transaction:
            self._send(self._context, self._connection.cursor())

    @property
    def time_zone(self) -> str:
        """The server's ``TimeZone`` for this connection: how it reads a timestamp
        without an offset (the binary COPY of a bulk write needs every offset given)."""
        return self._connection.info.parameter_status("TimeZone") or "UTC"

    @property
    def in_transaction(self) -> bool:
        # pgconn, not info: ``connection.info`` builds a new object on every read.
        return self._connection.pgconn.transaction_status != TransactionStatus.IDLE

    def commit(self) -> None:
        """Commit now; the next statement starts a new transaction with the same context."""
        self._end("COMMIT")

    def rollback(self) -> None:
        """Roll back now, also after a failed statement; the context stays."""
        self._end("ROLLBACK")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run the block so that, if it fails, only its own work is undone.

        The exception still propagates; catch it outside the block and carry on::

            try:
                with s.savepoint():
                    s.users.create(maybe_duplicate)
            except Duplicate:
                ...  # the transaction is still usable
        """
        self._begin_if_idle()
        try:
            with self._connection.transaction():
                yield
        except psycopg.Error as error:
            raise map_error(error) from error

    def close(self, *, failed: bool) -> None:
        """End the block: commit, or roll back when it failed or the connection is lost."""
        if self._connection.broken:
            # The server ended the transaction with the connection. A failed block
            # propagates its own error; one that swallowed the loss must not look committed.
            if not failed:
                raise DatabaseUnavailable(
                    "the connection was lost during the block; its work since the last "
                    "commit was not committed"
                )
            return
        status = self._connection.pgconn.transaction_status
        if status == TransactionStatus.IDLE:
            return
        if status == TransactionStatus.INTRANS and not failed:
            self._end("COMMIT")
            return
        if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            try:
                self._connection.execute("ROLLBACK")
            except psycopg.Error as error:
                if not (failed and self._connection.broken):
                    raise map_error(error) from error
        if status == TransactionStatus.INERROR and not failed:
            raise TransactionAborted(
                "the block ended after a failed statement without rolling back; "
                "its transaction was rolled back and nothing of it was committed"
            )

    # --- running statements ---------------------------------------------------------

    def fetch_one(self, bound: BoundStatement, record: type[R]) -> R | None:
        """The first row as ``record``, or None."""
        cursor = self._send(bound, self._connection.cursor())
        row = cursor.fetchone()
        if row is None:
            return None
        return record.model_validate(dict(zip(_names(cursor), row, strict=True)))

    def fetch_all(self, bound: BoundStatement, record: type[R]) -> list[R]:
        """Every row, as ``record`` instances."""
        cursor = self._send(bound, self._connection.cursor())
        names = _names(cursor)
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        return _list_adapter(record).validate_python(rows)

    def fetch_json(self, bound: BoundStatement, record: type[R]) -> list[R]:
        """Every row as ``record``, from a statement that returns them all as one JSON
        array (a ``:scalar`` of type ``json``: ``SELECT coalesce(json_agg(d ORDER BY …),
        '[]'::json) FROM (<rows>) AS d``; ``ims_repo.checks`` checks ``<rows>`` against
        ``record``).

        For rows with nested JSON (an issue with its comments): psycopg hands the
        document over as text, unparsed, and ``TypeAdapter(list[record]).validate_json``
        builds the records from it in one call, about half the client CPU of parsing
        each row's JSON columns into dicts and validating those. The array's order is
        the rows' order. Timestamps arrive as the server's ISO 8601 text, in the
        connection's ``TimeZone``; an offset with seconds (local mean time before a
        zone adopted standard time) is not ISO 8601 and fails validation.
        """
        cursor = self._connection.cursor()
        for json_type in ("json", "jsonb"):  # as text, for this cursor only
            cursor.adapters.register_loader(json_type, TextLoader)
        row = self._send(bound, cursor).fetchone()
        if row is None or row[0] is None:
            raise DatabaseError(
                f"{bound.statement.location}: {bound.statement.label} returned no JSON "
                "document (fetch_json needs one row and one non-NULL value: "
                "coalesce(json_agg(…), '[]'::json))"
            )
        return _validate_document(_list_adapter(record), row[0])

    def fetch_rows(self, bound: BoundStatement) -> list[dict[str, Any]]:
        """Every row as a dict, for results that are shaped in Python."""
        return self._send(bound, self._connection.cursor(row_factory=dict_row)).fetchall()

    def fetch_value(self, bound: BoundStatement) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self._send(bound, self._connection.cursor()).fetchone()
        return None if row is None else row[0]

    def run(self, bound: BoundStatement) -> int:
        """Run a statement for its effect; the number of rows it changed."""
        return self._send(bound, self._connection.cursor()).rowcount

    def copy_rows(
        self,
        bound: BoundStatement,
        rows: Iterable[Sequence[Any]],
        *,
        types: Sequence[str] | None = None,
    ) -> None:
        """Run a ``COPY … FROM STDIN`` statement, streaming ``rows`` to the server.

        Each row is a sequence of values in the statement's column order. Without
        ``types`` they are sent in COPY's text format (the server parses each value as
        its column's type, as it does a bound parameter); with ``types`` (the columns'
        PostgreSQL type names) in binary format, which the statement must ask for
        (``WITH BINARY``): no text to escape or parse on either side. The COPY runs in
        the session's transaction, begun first with the context when idle: COPY cannot
        run inside the pipeline that begins it.
        """
        self._begin_if_idle()
        self.statements_sent += 1
        cursor = self._connection.cursor()
        try:
            with cursor.copy(bound.text, bound.params) as copy:
                if types is not None:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            raise map_error(error, bound.statement) from error

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Raw SQL with psycopg placeholders (``%(name)s``); the rows as dicts.

        The escape hatch of the usage guide. Pass every value as a parameter: SQL text
        must never be built from input. Without ``params`` the text is sent as it is
        (a ``%`` needs no doubling); with them, psycopg's rules apply (``%%``).
        """
        cursor: psycopg.Cursor[DictRow] = self._connection.cursor(row_factory=dict_row)
        self._execute(cursor, sql, params, None)
        return cursor.fetchall() if cursor.description else []

    def refuse_unstorable(self, params: Mapping[str, Any]) -> None:
        """Raise the ``InvalidInput`` that sending these parameters would raise, sending
        nothing (for a caller that must send another statement first)."""
        _refuse_nul(params)

    def _send(self, bound: BoundStatement, cursor: psycopg.Cursor[Row]) -> psycopg.Cursor[Row]:
        return self._execute(cursor, bound.text, bound.params, bound.statement)

    def _execute(
        self,
        cursor: psycopg.Cursor[Row],
        sql: str,
        params: Mapping[str, Any] | None,
        statement: loader.Statement | None,
    ) -> psycopg.Cursor[Row]:
        """Run ``sql`` on ``cursor``, beginning the transaction with the context when idle."""
        _refuse_nul(params)
        self.statements_sent += 1
        try:
            if self.in_transaction:
                cursor.execute(sql, params)
            elif statement is not None and statement.read_only:
                # One round trip: in a pipeline the statements before its Sync form one
                # implicit transaction, which ends (and drops the context) with it.
                with self._connection.pipeline():
                    self._set_context()
                    cursor.execute(sql, params)
            else:
                with self._connection.pipeline():
                    self._connection.execute("BEGIN")
                    self._set_context()
                    cursor.execute(sql, params)
        except psycopg.Error as error:
            raise map_error(error, statement) from error
        return cursor

    def _begin_if_idle(self) -> None:
        if not self.in_transaction:
            try:
                with self._connection.pipeline():
                    self._connection.execute("BEGIN")
                    self._set_context()
            except psycopg.Error as error:
                raise map_error(error) from error

    def _set_context(self) -> None:
        """Queue the transaction-local context (and timeout); the caller's pipeline
        sends them with what follows."""
        self._connection.execute(self._context.text, self._context.params)
        if self._timeout is not None:
            self._connection.execute(self._timeout.text, self._timeout.params)

    def _end(self, command: str) -> None:
        if not self.in_transaction:
            return
        try:
            self._connection.execute(command)
        except psycopg.Error as error:
            mapped = map_error(error)
            if command == "COMMIT" and isinstance(mapped, DatabaseUnavailable):
                mapped = DatabaseUnavailable(
                    "lost the connection at COMMIT: the transaction may or may not have "
                    "been committed (it was not if an earlier statement already met the loss)"
                )
            raise mapped from error


def _names(cursor: psycopg.Cursor[Any]) -> list[str]:
    """The column names of the cursor's result, decoded once for all its rows."""
    result = cursor.pgresult
    if result is None:
        return []
    encoding = cursor.connection.info.encoding
    return [(result.fname(index) or b"").decode(encoding) for index in range(result.nfields)]


def _validate_document(adapter: TypeAdapter[list[R]], document: str | bytes) -> list[R]:
    """``document`` (a JSON array) validated by ``adapter``.

    pydantic-core's JSON parser stops at about 200 levels of nesting, where a ``jsonb``
    value may go deeper; such a document is parsed by ``json`` and validated as Python
    objects instead (slower, same records)."""
    try:
        return adapter.validate_json(document)
    except ValidationError as error:
        if not any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise
    return adapter.validate_python(json.loads(document))


def _refuse_nul(params: Mapping[str, Any] | None) -> None:
    """Refuse text PostgreSQL cannot store before it is sent, for every statement: U+0000,
    and lone surrogates (not Unicode text, so not UTF-8). Records check their own fields;
    this covers keys, filters, JSON documents and raw parameters."""
    for name, value in (params or {}).items():
        problem = _unstorable(value.obj if isinstance(value, Jsonb) else value)
        if problem:
            raise InvalidInput(
                f"parameter {name!r} contains {problem}, which PostgreSQL cannot store"
            )


def _unstorable(value: Any) -> str | None:
    """What in ``value`` (text, or lists and dicts of it) PostgreSQL cannot store."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character (U+0000)"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "a lone surrogate (not valid Unicode text)"
        return None
    if isinstance(value, list | tuple):
        items: Iterable[Any] = value
    elif isinstance(value, dict):
        items = (part for pair in value.items() for part in pair)
    else:
        return None
    for item in items:
        problem = _unstorable(item)
        if problem:
            return problem
    return None


def timeout_ms(seconds: float, name: str) -> int:
    """A timeout in seconds as PostgreSQL's whole milliseconds (at least 1, since 0 would
    mean "no timeout"); ``InvalidInput`` unless it is a positive, finite number."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise InvalidInput(f"{name} must be a positive number of seconds, not {seconds!r}")
    return max(1, round(seconds * 1000))


def _check_user_id(user_id: int | None) -> int | None:
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise InvalidInput(f"user_id must be an int or None, not {type(user_id).__name__}")
    return user_id


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def _list_adapter(record: type[R]) -> TypeAdapter[list[R]]:
    adapter = _ADAPTERS.get(record)
    if adapter is None:
        adapter = _ADAPTERS[record] = TypeAdapter(list[record])  # type: ignore[valid-type]
    return adapter
