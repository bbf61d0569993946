"""The statement check: every named statement, verified against the live schema.

For each statement the server is asked, without running it, what it would do:

1. **parse and describe** (``Parse`` + ``Describe`` of the extended protocol, as
   ``conn.pgconn.prepare`` / ``describe_prepared``, on the text of
   ``Statement.positional()``): does it parse against the schema, how many parameters it
   takes, which columns of which types it returns;
2. **plan as the runtime role** (``EXPLAIN EXECUTE`` of a generic plan after
   ``SET LOCAL ROLE ims_app``): privileges are checked only when a plan starts, not when
   a statement is parsed, so this is where a statement the application role may not run
   is found. ``EXPLAIN`` without ``ANALYZE`` executes nothing.

Each file is checked in one transaction that is always rolled back, its statements in
file order, each in a savepoint of its own. The one thing run for real is a statement
that creates a temporary table: later statements of the same file read that table (a
COPY staging table, say), exactly as at run time, and the rollback drops it.

Then the description is compared with the Python side: the parameter count with the
statement's ``:name`` parameters; and, when the statement declares the ``record`` its
rows fill (``QueryFile.statement(..., record=...)``), the result column names with the
record's fields (none missing, none extra) and each column's type with its field's
annotation, including NULLs: a field that is not optional, read from a table column
that allows NULL, fails at the first NULL. Statements shaped in Python declare no record
and are checked for parsing, privileges and parameters only.

A ``:scalar`` statement that declares a record is a **JSON document** (read with
``Session.fetch_json``): it returns its rows as one ``json`` array built on the server,
``SELECT coalesce(json_agg(d ORDER BY …), '[]'::json) FROM (<rows>) AS d``. Its one
column must be ``json``, and ``<rows>``, the derived table it aggregates, is described
like any statement and its columns compared with the record as above; a column whose
JSON text the record cannot read back (``interval``, ``bytea``) is reported too.

Called by the test suite and by ``ims-repo check``; this module has no CLI code.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import DiagnosticField, ExecStatus
from psycopg.pq.abc import PGresult
from pydantic import BaseModel

from ims_repo.core import loader
from ims_repo.core.errors import DatabaseError
from ims_repo.core.lexer import Kind
from ims_repo.core.loader import QueryFile, ResultKind, Statement
from ims_repo.core.statements import catalog

RUNTIME_ROLE = "ims_app"
_PREPARED = "ims_repo_check"
_PREPARED_ROWS = "ims_repo_check_rows"  # the rows of a JSON document statement

# PostgreSQL base types (by name) and the Python types a field may declare for them.
# Widening is accepted (an integer column into a Decimal or float field); narrowing is
# not (numeric into int fails for 2.5), so a statement casts where it means to.
_INTEGERS = (int, Decimal, float)
_TEXT = (str,)
_ACCEPTED: Mapping[str, tuple[type, ...]] = {
    "int2": _INTEGERS,
    "int4": _INTEGERS,
    "int8": _INTEGERS,
    "oid": _INTEGERS,
    "numeric": (Decimal, float),
    "float4": (float, Decimal),
    "float8": (float, Decimal),
    "text": _TEXT,
    "varchar": _TEXT,
    "bpchar": _TEXT,
    "char": _TEXT,
    "name": _TEXT,
    "citext": _TEXT,
    "bool": (bool,),
    "timestamptz": (datetime,),
    "timestamp": (datetime,),
    "date": (date,),
    "time": (time,),
    "timetz": (time,),
    "interval": (timedelta,),
    "uuid": (UUID,),
    "inet": (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface),
    "cidr": (IPv4Network, IPv6Network),
    "bytea": (bytes,),
}
_JSON_TYPES = frozenset({"json", "jsonb"})
# Types whose JSON text (``to_json``) does not validate back into the Python type that
# psycopg would load: an interval is written '1 day 02:00:00', bytea as '\\x…' text.
_NOT_IN_JSON = frozenset({"interval", "bytea"})
_JSON_CONTAINERS: frozenset[Any] = frozenset({dict, list, Mapping, Sequence})
_SEQUENCES: frozenset[Any] = frozenset({list, tuple, set, frozenset, Sequence})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one statement, located in its ``.sql`` file."""

    location: str  # "users.sql:12", the statement's header line
    statement: str  # "users.get_by_username"
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.statement}: {self.message}"


def check_statements(
    conninfo: str,
    files: Iterable[QueryFile] | None = None,
    *,
    role: str | None = RUNTIME_ROLE,
    report_unused: bool | None = None,
) -> list[Problem]:
    """Every problem of the statements in ``files`` (default: the packaged ones).

    ``conninfo`` is a libpq URL of a migrated database; the check acts as ``role`` (the
    runtime role; ``None`` checks as the login itself), which the login must be a
    superuser or a member of. Nothing is changed: statements are described and planned
    in a transaction that is rolled back.

    ``report_unused`` reports statements that no code declares (dead SQL): for the
    packaged files, none of ``ims_repo.core.statements.catalog()``; for a file passed
    in, none asked for with ``QueryFile.statement()``. By default it is on for the
    packaged files and off for files passed in.
    """
    if files is None:
        files = loader.packaged_files()
        if report_unused is None:
            report_unused = True
    checked = list(files)
    problems: list[Problem] = []
    # prepare_threshold=None: psycopg's own automatic prepared statements (and the
    # DEALLOCATE ALL it may send) would share the namespace with the check's.
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as connection:
        checker = _Checker(connection, role)
        declared = {statement.label for statement in catalog()}
        for query_file in checked:
            if report_unused:
                problems.extend(
                    _problem(statement, "unused: no code calls QueryFile.statement() for it")
                    for statement in query_file.statements.values()
                    if statement.label not in declared
                    and statement.name not in query_file.registered
                )
            problems.extend(checker.check_file(query_file))
    return problems


@dataclass(frozen=True)
class _PgType:
    """A column type as the check sees it: domains resolved, arrays unwrapped."""

    name: str  # base type name, e.g. "int8", "jsonb"; the element's for an array
    display: str  # as PostgreSQL writes it, e.g. "bigint[]"
    array: bool = False
    enum: bool = False


@dataclass(frozen=True)
class _Column:
    name: str
    type: _PgType
    nullable: bool | None  # None: not a table's column (an expression, a view's), unknown
    origin: str | None  # "ims.users.full_name" when it is one


class _Checker:
    """Checks the statements of one file at a time on one connection (see the module
    docstring for the transaction and savepoints)."""

    def __init__(self, connection: psycopg.Connection[Any], role: str | None) -> None:
        self._connection = connection
        self._role = role
        self._encoding = connection.info.encoding
        self._types: dict[int, _PgType] = {}
        self._prepared = False
        if role is not None:
            self._check_role(role)

    def _check_role(self, role: str) -> None:
        row = self._connection.execute(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_catalog.pg_roles "
            "WHERE rolname = %s",
            [role],
        ).fetchone()
        if row is None or not row[0]:
            raise DatabaseError(
                f"the check acts as role {role!r}, but login {self._connection.info.user!r} "
                "is neither a superuser nor a member of it (connect as a runtime login or "
                "the database owner)"
            )

    def check_file(self, query_file: QueryFile) -> list[Problem]:
        """The problems of one file's statements, checked in file order in one
        transaction that is rolled back; each statement in a savepoint of its own."""
        problems: list[Problem] = []
        self._connection.execute("BEGIN")
        try:
            if self._role is not None:
                self._connection.execute(
                    sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self._role))
                )
            # Plan as for any parameter values (what PostgreSQL 16 calls GENERIC_PLAN).
            self._connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            for statement in query_file.statements.values():
                self._connection.execute("SAVEPOINT ims_repo_check")
                found, keep = self._check(statement)
                problems.extend(_problem(statement, message) for message in found)
                if not keep:
                    self._connection.execute("ROLLBACK TO SAVEPOINT ims_repo_check")
                self._connection.execute("RELEASE SAVEPOINT ims_repo_check")
                self._deallocate()
        finally:
            self._connection.execute("ROLLBACK")
        return problems

    def _check(self, statement: Statement) -> tuple[list[str], bool]:
        """What is wrong with ``statement``, and whether to keep what it did: only a
        statement creating a temporary table is run (in the transaction that is rolled
        back), because the statements after it in the file read that table."""
        text = statement.positional()
        pgconn = self._connection.pgconn
        name = _PREPARED.encode()
        result = pgconn.prepare(name, text.encode(self._encoding))
        if result.status != ExecStatus.COMMAND_OK:
            return [self._server_error(result, text)], False
        self._prepared = True
        described = pgconn.describe_prepared(name)
        if described.status != ExecStatus.COMMAND_OK:
            return [self._server_error(described, text)], False
        messages = self._compare(statement, described)
        plan_problem = self._plan(described.nparams)
        if plan_problem is not None:
            return [*messages, plan_problem], False
        if _creates_temporary_table(statement):
            try:
                self._connection.execute(text)
            except psycopg.Error as error:
                return [*messages, self._refused(error)], False
            return messages, True
        return messages, False

    def _deallocate(self) -> None:
        """Drop the prepared statement (it outlives savepoints and transactions)."""
        if self._prepared:
            self._connection.execute(f"DEALLOCATE {_PREPARED}")
            self._prepared = False

    def _compare(self, statement: Statement, described: PGresult) -> list[str]:
        messages: list[str] = []
        if described.nparams != len(statement.params):
            messages.append(
                f"the server counts {described.nparams} parameter(s), the statement names "
                f"{len(statement.params)} ({', '.join(':' + p for p in statement.params)})"
            )
        columns = [self._column(described, index) for index in range(described.nfields)]
        messages.extend(_kind_problems(statement.kind, columns))
        if statement.record is not None and statement.kind is ResultKind.SCALAR:
            messages.extend(self._document_problems(statement, statement.record, columns))
        elif statement.record is not None:
            messages.extend(_record_problems(statement.record, columns))
        return messages

    def _document_problems(
        self, statement: Statement, record: type[BaseModel], columns: list[_Column]
    ) -> list[str]:
        """A JSON document statement: one ``json`` column, aggregating a derived table
        whose columns fill ``record`` (see the module docstring)."""
        if len(columns) == 1 and columns[0].type.name not in _JSON_TYPES:
            return [
                f"a :scalar statement with a record ({record.__name__}) returns its rows as "
                f"one JSON document, but its column is {columns[0].type.display}, not json"
            ]
        rows = document_rows(statement)
        if rows is None:
            return [
                f"a :scalar statement with a record ({record.__name__}) must aggregate one "
                "derived table: SELECT coalesce(json_agg(d ORDER BY …), '[]'::json) "
                "FROM (<rows>) AS d"
            ]
        text = f"/* ims_repo {statement.label}: the rows of its JSON document */\n{rows}"
        pgconn = self._connection.pgconn
        name = _PREPARED_ROWS.encode()
        result = pgconn.prepare(name, text.encode(self._encoding))
        if result.status != ExecStatus.COMMAND_OK:
            return [f"its rows: {self._server_error(result, text)}"]
        try:
            described = pgconn.describe_prepared(name)
            if described.status != ExecStatus.COMMAND_OK:
                return [f"its rows: {self._server_error(described, text)}"]
            row_columns = [self._column(described, i) for i in range(described.nfields)]
        finally:
            self._connection.execute(f"DEALLOCATE {_PREPARED_ROWS}")
        return [
            *_record_problems(record, row_columns),
            *(
                f"column {column.name!r} is {column.type.display}, whose JSON text does not "
                f"read back into {record.__name__}; convert it in the statement"
                for column in row_columns
                if column.type.name in _NOT_IN_JSON
            ),
        ]

    def _plan(self, nparams: int) -> str | None:
        """Plan the prepared statement as the role (privileges are checked here)."""
        arguments = f"({', '.join(['NULL'] * nparams)})" if nparams else ""
        try:
            self._connection.execute(f"EXPLAIN EXECUTE {_PREPARED}{arguments}")
        except psycopg.Error as error:
            return self._refused(error)
        return None

    def _refused(self, error: psycopg.Error) -> str:
        who = f"as {self._role}: " if self._role else ""
        return f"{who}{error.diag.message_primary or error}"

    def _column(self, described: PGresult, index: int) -> _Column:
        name = (described.fname(index) or b"").decode(self._encoding, "replace")
        pg_type = self._type(described.ftype(index))
        table, number = described.ftable(index), described.ftablecol(index)
        if not table or not number:
            return _Column(name, pg_type, None, None)
        # A view's columns carry no NOT NULL (attnotnull is false): their NULLs are
        # unknown, not allowed, so the NULL check is left to the tables' own statements.
        row = self._connection.execute(
            "SELECT CASE WHEN c.relkind IN ('v', 'm') THEN NULL ELSE NOT a.attnotnull END, "
            "format('%%s.%%s', a.attrelid::regclass, a.attname) "
            "FROM pg_catalog.pg_attribute AS a "
            "JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid "
            "WHERE a.attrelid = %s AND a.attnum = %s",
            [table, number],
        ).fetchone()
        if row is None:
            return _Column(name, pg_type, None, None)
        return _Column(name, pg_type, None if row[0] is None else bool(row[0]), str(row[1]))

    def _type(self, oid: int) -> _PgType:
        known = self._types.get(oid)
        if known is None:
            known = self._types[oid] = self._lookup_type(oid)
        return known

    def _lookup_type(self, oid: int) -> _PgType:
        row = self._connection.execute(
            "SELECT t.typname, t.typtype, t.typbasetype, t.typelem, t.typcategory, "
            "format_type(t.oid, NULL) "
            "FROM pg_catalog.pg_type AS t WHERE t.oid = %s",
            [oid],
        ).fetchone()
        if row is None:
            return _PgType(f"oid {oid}", f"type oid {oid}")
        typname, typtype, basetype, element, category, display = row
        if typtype == "d":  # a domain checks like its base type
            return dataclasses.replace(self._type(basetype), display=display)
        if category == "A" and element:
            inner = self._type(element)
            return _PgType(inner.name, display, array=True, enum=inner.enum)
        return _PgType(typname, display, enum=typtype == "e")

    def _server_error(self, result: PGresult, text: str) -> str:
        """The server's message, with the line of the statement's SQL it points at."""

        def field(code: DiagnosticField) -> str:
            value = result.error_field(code)
            return value.decode(self._encoding, "replace") if value else ""

        message = field(DiagnosticField.MESSAGE_PRIMARY) or "the server refused it"
        position = field(DiagnosticField.STATEMENT_POSITION)
        if position.isdigit():
            # The first line of the text sent is the naming comment, so counting line
            # breaks before the position gives the line within the statement's SQL.
            line = text.count("\n", 0, max(int(position) - 1, 0))
            message += f" (line {line} of its SQL)"
        return message


def _problem(statement: Statement, message: str) -> Problem:
    return Problem(statement.location, statement.label, message)


_TEMPORARY_TABLE = re.compile(
    r"^CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?TEMP(?:ORARY)?\s+TABLE\b", re.IGNORECASE
)


def _creates_temporary_table(statement: Statement) -> bool:
    code = "".join(t.text for t in statement.tokens if t.kind is not Kind.COMMENT)
    return _TEMPORARY_TABLE.match(code.lstrip()) is not None


_WORD_AT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_ALIAS_ONLY = re.compile(r"\s*(?:AS\s+)?[A-Za-z_][A-Za-z0-9_]*\s*", re.IGNORECASE)


def document_rows(statement: Statement) -> str | None:
    """The SQL of the rows a JSON document statement aggregates, as the server would be
    sent it (``$n`` parameters numbered as the statement's, slots at their defaults):
    the derived table of ``SELECT … FROM (<rows>) AS d``, the statement's only FROM item
    at the top level. None when the statement is not of that shape.

    Only code is scanned for the keyword and the parentheses: literals, quoted names
    and comments are masked, so a ``)`` or ``FROM`` inside them is not mistaken.
    """
    numbers = {name: index for index, name in enumerate(statement.params, 1)}
    parts: list[str] = []
    code_parts: list[str] = []
    for token in statement.tokens:
        if token.kind is Kind.PARAM:
            text, code = f"${numbers[token.name]}", False
        elif token.kind is Kind.SLOT:
            text, code = loader.SLOT_DEFAULTS[token.name], True
        else:
            text, code = token.text, token.kind in (Kind.TEXT, Kind.CAST)
        parts.append(text)
        code_parts.append(text if code else " " * len(text))
    sql_text, code_view = "".join(parts), "".join(code_parts)
    opening = _top_level_from(code_view)
    if opening is None:
        return None
    closing = _matching_parenthesis(code_view, opening)
    if closing is None or not _ALIAS_ONLY.fullmatch(code_view, closing + 1):
        return None
    return sql_text[opening + 1 : closing].strip()


def _top_level_from(code: str) -> int | None:
    """Where the ``(`` after the first top-level ``FROM`` is; None without one."""
    depth = 0
    position = 0
    while position < len(code):
        character = code[position]
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
        elif depth == 0 and (word := _WORD_AT.match(code, position)):
            position = word.end()
            if word.group().upper() == "FROM":
                following = code[position:].lstrip()
                return len(code) - len(following) if following.startswith("(") else None
            continue
        position += 1
    return None


def _matching_parenthesis(code: str, opening: int) -> int | None:
    depth = 0
    for position in range(opening, len(code)):
        if code[position] == "(":
            depth += 1
        elif code[position] == ")":
            depth -= 1
            if depth == 0:
                return position
    return None


def _kind_problems(kind: ResultKind, columns: list[_Column]) -> list[str]:
    if kind is ResultKind.SCALAR and len(columns) != 1:
        return [f":scalar statement returns {len(columns)} columns, not 1"]
    if kind in (ResultKind.ONE, ResultKind.MANY) and not columns:
        return [f":{kind.value} statement returns no columns"]
    return []


def _record_problems(record: type[BaseModel], columns: list[_Column]) -> list[str]:
    """Column names, types and NULLs against the fields of ``record``."""
    messages: list[str] = []
    fields = {(info.alias or name): info for name, info in record.model_fields.items()}
    by_name: dict[str, _Column] = {}
    for column in columns:
        if column.name in by_name:
            messages.append(f"returns column {column.name!r} twice")
        by_name[column.name] = column
    for name in fields:
        if name not in by_name:
            messages.append(
                f"{record.__name__} has field {name!r} that the statement does not return"
            )
    for name, column in by_name.items():
        info = fields.get(name)
        if info is None:
            messages.append(f"returns column {name!r} that {record.__name__} has no field for")
            continue
        annotation = info.annotation
        where = f"{record.__name__}.{name}"
        if not _accepts(annotation, column.type):
            messages.append(
                f"column {name!r} is {column.type.display} but {where} is {_show(annotation)}"
            )
        elif column.nullable and not _allows_none(annotation):
            messages.append(
                f"{where} is {_show(annotation)} (not optional) but column "
                f"{column.origin} allows NULL"
            )
    return messages


def _accepts(annotation: Any, pg_type: _PgType) -> bool:
    """Whether a value of ``pg_type``, as psycopg loads it, validates as ``annotation``."""
    if annotation is Any or annotation is object:
        return True
    alias_value = getattr(annotation, "__value__", None)  # a ``type X = …`` alias
    if alias_value is not None and not inspect.isclass(annotation):
        return _accepts(alias_value, pg_type)
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _accepts(arguments[0], pg_type)
    if origin is typing.Union or origin is types.UnionType:
        return any(_accepts(arg, pg_type) for arg in arguments if arg is not type(None))
    if pg_type.array:
        if annotation in _SEQUENCES:
            return True
        element = dataclasses.replace(pg_type, array=False)
        return origin in _SEQUENCES and (not arguments or _accepts(arguments[0], element))
    if pg_type.name in _JSON_TYPES:
        return (
            annotation in _JSON_CONTAINERS
            or origin in _JSON_CONTAINERS
            or (inspect.isclass(annotation) and issubclass(annotation, BaseModel))
        )
    if origin is Literal:
        return all(_accepts(type(value), pg_type) for value in arguments)
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return all(_accepts(type(member.value), pg_type) for member in annotation)
    if pg_type.enum:
        return annotation is str
    return annotation in _ACCEPTED.get(pg_type.name, ())


def _allows_none(annotation: Any) -> bool:
    if annotation is Any or annotation is object or annotation is None:
        return True
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _allows_none(arguments[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(arg is type(None) or _allows_none(arg) for arg in arguments)
    return annotation is type(None)


def _show(annotation: Any) -> str:
    if inspect.isclass(annotation) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")
