"""EXPLAIN a named statement as the application runs it: the runtime role, an RLS
context, and parameter values that make sense for the statement.

Everything happens in one transaction that is always rolled back:

1. ``SET LOCAL ROLE ims_app`` (the login must be a superuser, the owner or a member of
   the role) and, with a user, ``ims.set_current_user(id)`` through the same named
   statement every session uses, so the plan is the one row-level security really
   gives that user;
2. the server describes the statement (``PREPARE`` … then ``pg_prepared_statements``)
   to say each parameter's type;
3. each parameter gets a value: the one given; else the context's own id for
   ``:user_id``; else ``find()``'s defaults for ``:limit`` and ``:offset``; else the first
   value (in index order) of the ``ims`` column of the same name, as far as the context
   can see it, preferring a primary key and the tables the statement names (the first
   existing key); else a sample of the parameter's type. Values are sent as text and
   cast by the server, exactly as ``psql``'s ``\\set`` would;
4. ``EXPLAIN`` (with ``ANALYZE, BUFFERS`` on request: then the statement really runs,
   triggers included, and the rollback undoes whatever it wrote; only identity values
   it drew stay used, as after any rollback) of the text the application sends, with
   ``{filters}`` / ``{order_by}`` at their defaults.

No click code here: ``ims-repo explain`` (ims_repo.faces.cli) prints what :func:`explain`
returns.
"""

from __future__ import annotations

import difflib
import json as json_module
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ims_repo.core import loader
from ims_repo.core.lexer import Kind
from ims_repo.core.loader import QueryFile, Statement
from ims_repo.services.checks import RUNTIME_ROLE, _creates_temporary_table

__all__ = ["Explained", "Sample", "explain", "find_statement"]

_PREPARED = "ims_repo_explain"
_SET_CONTEXT = loader.load("context").statement("set_current_user", "user_id")
# Statements EXPLAIN can show a plan for (the others are DDL, COPY, TRUNCATE, …).
_EXPLAINABLE = frozenset({"SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES"})
# What find() binds when its caller gives no page (repositories/base.py: bind_find).
_FIND_DEFAULTS: Mapping[str, str | None] = {"limit": None, "offset": "0"}
# A sample value per type category (pg_type.typcategory), sent as text.
_CATEGORY_SAMPLES: Mapping[str, str] = {
    "N": "1",  # numeric types
    "S": "sample",  # strings
    "B": "true",
    "D": "now",  # date/time: PostgreSQL's special input value (today for a date)
    "T": "1 hour",  # interval
    "I": "127.0.0.1",  # inet, cidr
    "V": "0",  # bit strings
}
_TYPE_SAMPLES: Mapping[str, str] = {
    "uuid": "00000000-0000-0000-0000-000000000000",
    "json": "{}",
    "jsonb": "{}",
    "bytea": "\\x",
}
_CANDIDATE_TABLES = 3  # at most this many tables are asked for an existing value


@dataclass(frozen=True)
class Sample:
    """The value one parameter had, and where it came from."""

    name: str
    type: str  # as the server describes it, e.g. "bigint", "text[]"
    value: str | None  # sent as text (None: NULL)
    source: str  # e.g. "given", "first ims.users.user_id the context sees"


@dataclass(frozen=True)
class Explained:
    """What ``EXPLAIN`` said about a statement, and the circumstances it said it in."""

    statement: Statement
    login: str  # the login of the connection
    role: str  # the role the plan was made as
    context: str  # the RLS context in words
    samples: tuple[Sample, ...]
    analyzed: bool
    plan: tuple[str, ...]  # EXPLAIN's text lines; for FORMAT JSON, the JSON text
    document: list[Any] | None = None  # EXPLAIN (FORMAT JSON)'s document, parsed


def find_statement(name: str, files: Iterable[QueryFile] | None = None) -> Statement:
    """The statement called ``name``: ``file.name`` (``users.get_by_username``), or a bare
    ``name`` when exactly one file has it. ``LookupError`` says what exists otherwise."""
    every = [
        statement
        for query_file in (loader.packaged_files() if files is None else files)
        for statement in query_file.statements.values()
    ]
    by_label = {statement.label: statement for statement in every}
    if name in by_label:
        return by_label[name]
    bare = [statement for statement in every if statement.name == name]
    if len(bare) == 1:
        return bare[0]
    if bare:
        labels = ", ".join(statement.label for statement in bare)
        raise LookupError(f"{name!r} is in more than one file: {labels} (give file.name)")
    close = difflib.get_close_matches(name, list(by_label), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise LookupError(f"no statement named {name!r}{hint} (`ims-repo queries` lists them all)")


def explain(
    conninfo: str,
    statement: Statement,
    *,
    params: Mapping[str, str | None] | None = None,
    user_id: int | None = None,
    analyze: bool = False,
    role: str = RUNTIME_ROLE,
    json: bool = False,
    settings: Mapping[str, str] | None = None,
) -> Explained:
    """``EXPLAIN`` ``statement`` on ``conninfo`` as ``role`` in ``user_id``'s context.

    ``params`` overrides sample values by parameter name (text, cast by the server;
    ``None`` is NULL). With ``analyze`` the statement runs (``EXPLAIN (ANALYZE,
    BUFFERS)``); the transaction is rolled back in every case, so nothing persists.
    ``json`` asks for ``EXPLAIN (FORMAT JSON)`` (the input of plan visualisers such as
    pev2 / explain.dalibo.com); ``settings`` are planner settings set for the
    transaction only (``SET LOCAL``, e.g. ``{"enable_seqscan": "off"}``).
    """
    given = dict(params or {})
    unknown = sorted(set(given) - set(statement.params))
    if unknown:
        takes = ", ".join(f":{name}" for name in statement.params) or "no parameters"
        raise ValueError(
            f"{statement.label} has no parameter {', '.join(':' + n for n in unknown)} "
            f"(it takes {takes})"
        )
    keyword = _first_keyword(statement)
    if keyword not in _EXPLAINABLE:
        raise ValueError(
            f"{statement.label} is a {keyword} statement: EXPLAIN shows plans of SELECT, "
            "INSERT, UPDATE, DELETE, MERGE and VALUES only"
        )
    with psycopg.connect(conninfo) as connection:
        login = connection.info.user
        try:
            connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            if user_id is not None:
                bound = _SET_CONTEXT.bind({"user_id": user_id})
                connection.execute(bound.text, bound.params)
            for setting, value in (settings or {}).items():
                connection.execute("SELECT pg_catalog.set_config(%s, %s, TRUE)", [setting, value])
            context = _describe_context(connection, user_id)
            _create_temporary_tables(connection, statement)
            types = _parameter_types(connection, statement)
            samples = tuple(
                _sample(connection, statement, name, types[name], given, user_id)
                for name in statement.params
            )
            flags = [
                *(["ANALYZE", "BUFFERS"] if analyze else []),
                *(["FORMAT JSON"] if json else []),
            ]
            options = f" ({', '.join(flags)})" if flags else ""
            values = {sample.name: sample.value for sample in samples}
            # Always a mapping, even an empty one: psycopg then reads %% as %.
            rows = connection.execute(f"EXPLAIN{options} {statement.query}", values).fetchall()
        finally:
            connection.rollback()
    document: list[Any] | None = None
    if json:
        document = rows[0][0] if isinstance(rows[0][0], list) else json_module.loads(rows[0][0])
        rows = [(json_module.dumps(document, indent=2),)]
    return Explained(
        statement=statement,
        login=login,
        role=role,
        context=context,
        samples=samples,
        analyzed=analyze,
        plan=tuple(str(row[0]) for row in rows),
        document=document,
    )


def _first_keyword(statement: Statement) -> str:
    for token in statement.tokens:
        if token.kind is Kind.COMMENT or not token.text.strip():
            continue
        words = re.findall(r"[A-Za-z_]+", token.text)
        return words[0].upper() if words else token.text.strip()[:1]
    return ""


def _create_temporary_tables(connection: psycopg.Connection[Any], statement: Statement) -> None:
    """Run the statements before ``statement`` in its file that create a temporary
    table (a COPY staging table, say), so a statement reading one can be planned; the
    rollback drops them."""
    if "pg_temp." not in statement.sql:
        return
    query_file = loader.load(Path(statement.file).stem)
    for earlier in query_file.statements.values():
        if earlier.name == statement.name:
            break
        if _creates_temporary_table(earlier) and not earlier.params:
            connection.execute(earlier.query, {})


def _parameter_types(
    connection: psycopg.Connection[Any], statement: Statement
) -> dict[str, _ParamType]:
    """Each parameter's type, as the server infers it from the statement."""
    if not statement.params:
        return {}
    connection.execute(f"PREPARE {_PREPARED} AS {statement.positional()}")
    row = connection.execute(
        "SELECT parameter_types::oid[] FROM pg_catalog.pg_prepared_statements WHERE name = %s",
        [_PREPARED],
    ).fetchone()
    connection.execute(f"DEALLOCATE {_PREPARED}")
    oids: list[int] = list(row[0]) if row is not None else []
    return {name: _type(connection, oid) for name, oid in zip(statement.params, oids, strict=True)}


def _type(connection: psycopg.Connection[Any], oid: int) -> _ParamType:
    row = connection.execute(
        "SELECT format_type(t.oid, NULL), t.typcategory, t.typelem, "
        "       (SELECT e.enumlabel FROM pg_catalog.pg_enum AS e "
        "        WHERE e.enumtypid = coalesce(nullif(t.typbasetype, 0), t.oid) "
        "        ORDER BY e.enumsortorder LIMIT 1) "
        "FROM pg_catalog.pg_type AS t "
        "WHERE t.oid = %s::oid",
        [oid],
    ).fetchone()
    if row is None:
        return _ParamType(oid, f"type {oid}", "X", 0, None)
    display, category, element, enum_label = row
    return _ParamType(oid, str(display), str(category), int(element), enum_label)


@dataclass(frozen=True)
class _ParamType:
    oid: int
    display: str  # "bigint", "text[]", "timestamp with time zone"
    category: str  # pg_type.typcategory: N numeric, S string, A array, E enum, …
    element: int  # the element type of an array, else 0
    enum_label: str | None  # the first label of an enum (or a domain over one)


def _sample(
    connection: psycopg.Connection[Any],
    statement: Statement,
    name: str,
    param_type: _ParamType,
    given: Mapping[str, str | None],
    user_id: int | None,
) -> Sample:
    def sample(value: str | None, source: str) -> Sample:
        return Sample(name, param_type.display, value, source)

    if name in given:
        return sample(given[name], "given")
    if name == "user_id" and user_id is not None:
        return sample(str(user_id), "the context's user")
    if name in _FIND_DEFAULTS:
        return sample(_FIND_DEFAULTS[name], "find()'s default")
    existing = _existing_value(connection, statement, name, param_type)
    if existing is not None:
        return existing
    value = _type_sample(connection, param_type)
    return sample(value, f"a sample {param_type.display}" if value is not None else "no sample")


def _existing_value(
    connection: psycopg.Connection[Any],
    statement: Statement,
    name: str,
    param_type: _ParamType,
) -> Sample | None:
    """The first value the context can see of an ``ims`` column called ``name`` of the
    parameter's type (or, for an array parameter, of its element type)."""
    named = sorted(set(re.findall(r"\bims\.([a-z_][a-z0-9_]*)", statement.sql)))
    candidates = connection.execute(
        "SELECT c.relname, a.atttypid = %(type)s::oid "
        "FROM pg_catalog.pg_attribute AS a "
        "JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid "
        "WHERE c.relnamespace = 'ims'::regnamespace "
        "  AND c.relkind IN ('r', 'p') "
        "  AND a.attname = %(name)s "
        "  AND NOT a.attisdropped "
        "  AND a.atttypid IN (%(type)s::oid, %(element)s::oid) "
        "ORDER BY EXISTS (SELECT FROM pg_catalog.pg_index AS i "
        "                 WHERE i.indrelid = c.oid AND i.indisprimary "
        "                   AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum) DESC, "
        "         c.relname = ANY(%(named)s) DESC, "
        "         c.relname "
        "LIMIT %(limit)s",
        {
            "type": param_type.oid,
            "element": param_type.element,
            "name": name,
            "named": named,
            "limit": _CANDIDATE_TABLES,
        },
    ).fetchall()
    for table, same_type in candidates:
        column = sql.Identifier(name)
        value_sql = sql.SQL("{}::text") if same_type else sql.SQL("ARRAY[{}]::text")
        query = sql.SQL("SELECT {} FROM {} WHERE {} IS NOT NULL ORDER BY {} LIMIT 1").format(
            value_sql.format(column), sql.Identifier("ims", table), column, column
        )
        try:
            with connection.transaction():  # a savepoint: a refusal must not end the rest
                row = connection.execute(query).fetchone()
        except psycopg.Error:  # no SELECT privilege, a type without ordering, …
            continue
        if row is not None:
            where = f"ims.{table}.{name}"
            return Sample(name, param_type.display, row[0], f"first {where} the context sees")
    return None


def _type_sample(connection: psycopg.Connection[Any], param_type: _ParamType) -> str | None:
    if param_type.enum_label is not None:
        return param_type.enum_label
    if param_type.category == "A" and param_type.element:
        inner = _type_sample(connection, _type(connection, param_type.element))
        if inner is None:
            return "{}"
        # The server writes the one-element array literal (quoting as it needs).
        row = connection.execute("SELECT ARRAY[%s]::text", [inner]).fetchone()
        return "{}" if row is None else str(row[0])
    base = param_type.display.split("(")[0]
    if base in _TYPE_SAMPLES:
        return _TYPE_SAMPLES[base]
    return _CATEGORY_SAMPLES.get(param_type.category)


def _describe_context(connection: psycopg.Connection[Any], user_id: int | None) -> str:
    if user_id is None:
        return "no user (row-level security shows no per-user rows; give --user ID)"
    row = connection.execute(
        "SELECT username, role FROM ims.users WHERE user_id = %s", [user_id]
    ).fetchone()
    if row is None:
        return f"user {user_id} (no such user: per-user tables show nothing)"
    return f"user {user_id} ({row[0]}, role {row[1]})"


def format_value(value: str | None) -> str:
    """A value as SQL text: ``'alice'``, or ``NULL``."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def describe_samples(samples: Sequence[Sample]) -> list[str]:
    """One line per parameter: ``:user_id = '1'  (bigint, first ims.users.user_id …)``."""
    return [
        f":{sample.name} = {format_value(sample.value)}  ({sample.type}, {sample.source})"
        for sample in samples
    ]
