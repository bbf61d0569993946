"""Running named statements on one connection, each transaction begun with the context.

How the context is kept from leaking (SPEC §3): connections are in autocommit mode, and
the runner opens each transaction itself, sending in one pipelined round trip what
``ims_repo.core.transaction`` says a transaction begins with (``BEGIN``, behind a
connection pooler the settings a direct connection sends at login, the transaction-local
RLS context, the session's timeout) and the first statement. Commit,
rollback, an exception, a cancelled task or a lost connection all end the transaction,
and with it the setting, so the next checkout of the connection starts with none.

A read-only named statement (``Statement.read_only``) met outside a transaction skips
``BEGIN``: the context and the statement go in one pipeline, whose single Sync makes them
one implicit transaction that ends with the result. A checkout that only reads thus
costs one round trip per statement and no ``COMMIT``.

A read-only runner (a replica session's) refuses, before sending it, any named statement
that is not read-only, and begins its explicit transactions ``READ ONLY``. A runner that
tracks commits (a primary session of a database with replicas) asks for the WAL position
in the same round trip as each ``COMMIT`` (``commit_position``); others send nothing more.

Rows come back as tuples and are zipped with the result's column names (decoded once per
result) into the mapping pydantic validates: cheaper than psycopg's ``dict_row``. A
statement that builds its whole result as one JSON document on the server
(``fetch_json``) is read as text and validated by pydantic-core straight from it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from time import monotonic
from typing import Any, TypeVar

import psycopg
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader
from pydantic import BaseModel, TypeAdapter, ValidationError

from ims_repo.core.errors import (
    DatabaseError,
    DatabaseUnavailable,
    InvalidInput,
    ReadOnlySession,
    TransactionAborted,
)
from ims_repo.core.inputs import unstorable
from ims_repo.core.loader import BoundStatement, Statement
from ims_repo.core.positions import CommitPosition
from ims_repo.core.statements.replication import COMMIT_POSITION
from ims_repo.core.transaction import transaction_start
from ims_repo.db.errors import map_error

R = TypeVar("R", bound=BaseModel)
Row = TypeVar("Row")

_slow_log = logging.getLogger("ims_repo.db.statements")  # one name for both twins


class AsyncRunner:
    """Runs statements for one caller on one connection: the part of a session that the
    repositories use (``fetch_one``, ``fetch_all``, ``run``, ``copy_rows``, …)."""

    def __init__(
        self,
        connection: psycopg.AsyncConnection[Any],
        user_id: int | None,
        *,
        statement_timeout: float | None = None,
        read_only: bool = False,
        track_commits: bool = False,
        settings: BoundStatement | None = None,
        slow_statement: float | None = None,
    ) -> None:
        self._connection = connection
        self._start = transaction_start(
            user_id, statement_timeout=statement_timeout, read_only=read_only, settings=settings
        )
        self._slow = slow_statement
        self._track_commits = track_commits
        self.commit_position: CommitPosition | None = None
        """Where the last commit of this session ended in the primary's WAL, to pass as
        ``db.session(replica=True, after=…)``; None before the first commit, and always
        on a database without replicas (nothing to wait for)."""
        self.statements_sent = 0
        """Statements sent for the caller (not counting BEGIN, context and COMMIT)."""
        self._pipeline_failed = False

    # --- context and transactions -------------------------------------------------

    @property
    def user_id(self) -> int | None:
        """The RLS context: the user whose rows this session sees, or None (no rows)."""
        return self._start.user_id

    async def set_user(self, user_id: int | None) -> None:
        """Change the RLS context, at once and for the rest of the block."""
        self._start = self._start.with_user(user_id)
        if self.in_transaction:  # not _send: a replica session may change its context
            context = self._start.context
            cursor = self._connection.cursor()
            await self._execute(cursor, context.text, context.params, context.statement)

    @property
    def read_only(self) -> bool:
        """True on a replica session: only read-only statements may run (``ReadOnlySession``)."""
        return self._start.read_only

    @property
    def time_zone(self) -> str:
        """The server's ``TimeZone`` for this connection: how it reads a timestamp
        without an offset (the binary COPY of a bulk write needs every offset given)."""
        return self._connection.info.parameter_status("TimeZone") or "UTC"

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open on the connection, a failed one included."""
        # pgconn, not info: ``connection.info`` builds a new object on every read.
        return self._connection.pgconn.transaction_status != TransactionStatus.IDLE

    async def commit(self) -> None:
        """Commit now; the next statement starts a new transaction with the same context."""
        await self._end("COMMIT")

    async def rollback(self) -> None:
        """Roll back now, also after a failed statement; the context stays."""
        await self._end("ROLLBACK")

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run the block so that, if it fails, only its own work is undone.

        The exception still propagates; catch it outside the block and carry on::

            try:
                with s.savepoint():
                    s.users.create(maybe_duplicate)
            except Duplicate:
                ...  # the transaction is still usable
        """
        await self._begin_if_idle()
        try:
            async with self._connection.transaction():
                yield
        except psycopg.Error as error:
            raise map_error(error) from error

    async def close(self, *, failed: bool) -> None:
        """End the block: commit, or roll back when it failed or the connection is lost.

        A block interrupted in the middle of a statement (a cancelled task, a timeout)
        may leave the connection busy: it is closed, and the pool replaces it."""
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
            await self._end("COMMIT")
            return
        if status not in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            await self._connection.close()  # busy mid-statement: never reuse it
            return
        try:
            await self._rollback()
        except psycopg.Error as error:
            if not (failed and self._connection.broken):
                raise map_error(error) from error
        if status == TransactionStatus.INERROR and not failed:
            raise TransactionAborted(
                "the block ended after a failed statement without rolling back; "
                "its transaction was rolled back and nothing of it was committed"
            )

    # --- running statements ---------------------------------------------------------

    async def fetch_one(self, bound: BoundStatement, record: type[R]) -> R | None:
        """The first row as ``record``, or None."""
        cursor = await self._send(bound, self._connection.cursor())
        row = await cursor.fetchone()
        if row is None:
            return None
        return record.model_validate(dict(zip(_names(cursor), row, strict=True)))

    async def fetch_all(self, bound: BoundStatement, record: type[R]) -> list[R]:
        """Every row, as ``record`` instances."""
        cursor = await self._send(bound, self._connection.cursor())
        names = _names(cursor)
        rows = [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
        return _list_adapter(record).validate_python(rows)

    async def fetch_json(self, bound: BoundStatement, record: type[R]) -> list[R]:
        """Every row as ``record``, from a statement that returns them all as one JSON
        array (a ``:scalar`` of type ``json``: ``SELECT coalesce(json_agg(d ORDER BY …),
        '[]'::json) FROM (<rows>) AS d``; ``ims_repo.services.checks`` checks ``<rows>``
        against ``record``).

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
        row = await (await self._send(bound, cursor)).fetchone()
        if row is None or row[0] is None:
            raise DatabaseError(
                f"{bound.statement.location}: {bound.statement.label} returned no JSON "
                "document (fetch_json needs one row and one non-NULL value: "
                "coalesce(json_agg(…), '[]'::json))"
            )
        return _validate_document(_list_adapter(record), row[0])

    async def fetch_rows(self, bound: BoundStatement) -> list[dict[str, Any]]:
        """Every row as a dict, for results that are shaped in Python."""
        cursor = await self._send(bound, self._connection.cursor(row_factory=dict_row))
        return await cursor.fetchall()

    async def fetch_value(self, bound: BoundStatement) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = await (await self._send(bound, self._connection.cursor())).fetchone()
        return None if row is None else row[0]

    async def run(self, bound: BoundStatement) -> int:
        """Run a statement for its effect; the number of rows it changed."""
        return (await self._send(bound, self._connection.cursor())).rowcount

    async def fetch_pipeline(self, steps: Sequence[BoundStatement]) -> list[list[dict[str, Any]]]:
        """Run ``steps`` in order in one pipeline, one round trip (with the start of the
        transaction when idle), and return each step's rows as dicts (``[]`` for a
        statement without rows).

        For a sequence whose parameters are all known before the first is sent (each
        statement sees what the earlier ones wrote, as in any transaction): the
        statements go out together and their results come back together, where running
        them one by one waits for the server once per statement. Every step is checked
        (``ReadOnlySession``, text PostgreSQL cannot store) before anything is sent. A
        failing step aborts the transaction and skips the steps after it; its error is
        raised, named after that step."""
        for bound in steps:
            self.refuse_write(bound.statement)
            _refuse_nul(bound.params)
        self.statements_sent += len(steps)
        cursors = [self._connection.cursor(row_factory=dict_row) for _ in steps]
        opening = [] if self.in_transaction else self._start.opening(explicit=True)
        started = monotonic() if self._slow is not None else 0.0
        try:
            async with self._connection.pipeline():
                for text, values in opening:
                    await self._connection.execute(text, values)
                for bound, cursor in zip(steps, cursors, strict=True):
                    await cursor.execute(bound.text, bound.params)
            return [await cursor.fetchall() if cursor.description else [] for cursor in cursors]
        except psycopg.Error as error:
            self._pipeline_failed = True
            raise map_error(error, _failed_step(steps, cursors)) from error
        finally:
            if self._slow is not None:
                label = f"pipeline of {len(steps)} ({', '.join(b.statement.label for b in steps)})"
                _log_if_slow(label, monotonic() - started, self._slow)

    async def copy_rows(
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
        self.refuse_write(bound.statement)
        await self._begin_if_idle()
        self.statements_sent += 1
        cursor = self._connection.cursor()
        started = monotonic() if self._slow is not None else 0.0
        try:
            async with cursor.copy(bound.text, bound.params) as copy:
                if types is not None:
                    copy.set_types(types)
                for row in rows:
                    await copy.write_row(row)
        except psycopg.Error as error:
            raise map_error(error, bound.statement) from error
        finally:
            if self._slow is not None:
                _log_if_slow(bound.statement.label, monotonic() - started, self._slow)

    async def execute(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Raw SQL with psycopg placeholders (``%(name)s``); the rows as dicts.

        The escape hatch of the usage guide. Pass every value as a parameter: SQL text
        must never be built from input. Without ``params`` the text is sent as it is
        (a ``%`` needs no doubling); with them, psycopg's rules apply (``%%``).

        On a replica session the text runs in a ``READ ONLY`` transaction: the server
        refuses a write, raised as ``ReadOnlySession`` (raw SQL is not parsed here).
        """
        cursor: psycopg.AsyncCursor[DictRow] = self._connection.cursor(row_factory=dict_row)
        await self._execute(cursor, sql, params, None)
        return await cursor.fetchall() if cursor.description else []

    def refuse_unstorable(self, params: Mapping[str, Any]) -> None:
        """Raise the ``InvalidInput`` that sending these parameters would raise, sending
        nothing (for a caller that must send another statement first)."""
        _refuse_nul(params)

    async def _send(
        self, bound: BoundStatement, cursor: psycopg.AsyncCursor[Row]
    ) -> psycopg.AsyncCursor[Row]:
        self.refuse_write(bound.statement)
        return await self._execute(cursor, bound.text, bound.params, bound.statement)

    async def _execute(
        self,
        cursor: psycopg.AsyncCursor[Row],
        sql: str,
        params: Mapping[str, Any] | None,
        statement: Statement | None,
    ) -> psycopg.AsyncCursor[Row]:
        """Run ``sql`` on ``cursor``, beginning the transaction with the context when idle;
        log it (by name, never its parameters) when it took ``slow_statement`` or more."""
        _refuse_nul(params)
        self.statements_sent += 1
        started = monotonic() if self._slow is not None else 0.0
        try:
            if self.in_transaction:
                await cursor.execute(sql, params)
            else:
                # One round trip: the start of the transaction and the statement in one
                # pipeline. A lone read-only statement skips BEGIN: the statements before
                # the pipeline's Sync form one implicit transaction, which ends (and
                # drops the context) with it.
                explicit = statement is None or not statement.read_only
                async with self._connection.pipeline():
                    for text, values in self._start.opening(explicit=explicit):
                        await self._connection.execute(text, values)
                    await cursor.execute(sql, params)
        except psycopg.Error as error:
            raise map_error(error, statement) from error
        finally:
            if self._slow is not None:
                label = "(raw SQL from execute())" if statement is None else statement.label
                _log_if_slow(label, monotonic() - started, self._slow)
        return cursor

    def refuse_write(self, statement: Statement) -> None:
        """On a read-only session, raise the ``ReadOnlySession`` that sending
        ``statement`` would raise, sending nothing (also for a caller that must send
        something else first, such as a savepoint)."""
        if self._start.read_only and not statement.read_only:
            raise ReadOnlySession(
                f"{statement.label} ({statement.location}) may change data, and this "
                "session is read-only (db.session(replica=True)); nothing was sent. "
                "Run it in a session on the primary, db.session()"
            )

    async def _begin_if_idle(self) -> None:
        if not self.in_transaction:
            try:
                async with self._connection.pipeline():
                    for text, values in self._start.opening(explicit=True):
                        await self._connection.execute(text, values)
            except psycopg.Error as error:
                raise map_error(error) from error

    async def _end(self, command: str) -> None:
        if not self.in_transaction:
            return
        try:
            if command == "COMMIT" and self._track_commits:
                await self._commit_tracked()
            elif command == "ROLLBACK":
                await self._rollback()
            else:
                await self._connection.execute(command)
        except psycopg.Error as error:
            mapped = map_error(error)
            if command == "COMMIT" and isinstance(mapped, DatabaseUnavailable):
                mapped = DatabaseUnavailable(
                    "lost the connection at COMMIT: the transaction may or may not have "
                    "been committed (it was not if an earlier statement already met the loss)"
                )
            raise mapped from error

    async def _rollback(self) -> None:
        """``ROLLBACK``; after a failed pipeline through psycopg's ``rollback()``, which
        also forgets the statements psycopg prepared on the connection.

        A failed pipeline skips the statements after the failing one, and psycopg (3.3)
        may count one of them as prepared although the server never parsed it: at the
        run where a statement crosses ``prepare_threshold`` it records the name before
        the result comes, and checks results only on a statement's first run. Its next
        use would fail with ``prepared statement "_pg3_N" does not exist``
        (tests/test_store_page.py). Forgetting them all (``DEALLOCATE ALL``) costs a
        round trip and a new preparation of each, so only after a failed pipeline."""
        if self._pipeline_failed:
            self._pipeline_failed = False
            await self._connection.rollback()
        else:
            await self._connection.execute("ROLLBACK")

    async def _commit_tracked(self) -> None:
        """COMMIT and ask for the WAL position in one round trip (``commit_position``)."""
        cursor = self._connection.cursor()
        async with self._connection.pipeline():
            await self._connection.execute("COMMIT")
            # Never prepared: a failed COMMIT would skip it (see ``_rollback``).
            await cursor.execute(COMMIT_POSITION.query, prepare=False)
        row = await cursor.fetchone()
        if row is not None and row[0] is not None:
            self.commit_position = CommitPosition.parse(row[0])


def _names(cursor: psycopg.AsyncCursor[Any]) -> list[str]:
    """The column names of the cursor's result, decoded once for all its rows."""
    result = cursor.pgresult
    if result is None:
        return []
    encoding = cursor.connection.info.encoding
    return [(result.fname(index) or b"").decode(encoding) for index in range(result.nfields)]


def _log_if_slow(label: str, seconds: float, threshold: float) -> None:
    """Log a statement that took ``threshold`` seconds or more by ``label``: its name,
    never its text or parameters (raw SQL from ``execute()`` may hold values, so it is
    not named)."""
    if seconds >= threshold:
        _slow_log.warning(
            "slow statement %s: %.0f ms (slow_statement=%g s)", label, seconds * 1000, threshold
        )


def _failed_step(
    steps: Sequence[BoundStatement], cursors: Sequence[psycopg.AsyncCursor[Any]]
) -> Statement | None:
    """The statement of the pipeline step whose result is the server's error, if any."""
    for bound, cursor in zip(steps, cursors, strict=True):
        result = cursor.pgresult
        if result is not None and result.status == ExecStatus.FATAL_ERROR:
            return bound.statement
    return None


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
    """Refuse text PostgreSQL cannot store before it is sent, for every statement.
    Records check their own fields; this covers keys, filters, JSON documents and raw
    parameters."""
    for name, value in (params or {}).items():
        problem = unstorable(value.obj if isinstance(value, Jsonb) else value)
        if problem:
            raise InvalidInput(
                f"parameter {name!r} contains {problem}, which PostgreSQL cannot store"
            )


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def _list_adapter(record: type[R]) -> TypeAdapter[list[R]]:
    adapter = _ADAPTERS.get(record)
    if adapter is None:
        adapter = _ADAPTERS[record] = TypeAdapter(list[record])  # type: ignore[valid-type]
    return adapter
