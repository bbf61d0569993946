"""The plan check (``ims-repo check --plans``): no named statement on a user-owned
table makes an ordinary user's request read the whole table.

Method: each named statement that names a user-owned table (SPEC §3) is planned as
:func:`ims_repo.services.explain.explain` plans it — as the runtime role, in an ordinary
(non-admin) user's RLS context, with sample parameter values — under
``SET LOCAL enable_seqscan = off``, with ``EXPLAIN (FORMAT JSON)``. With sequential
scans priced out, one remains only where no index can serve the statement's (and the
policy's) conditions on that table, whatever the table's size or statistics, so the
verdict does not depend on how much data the database holds. For the same reason an
index scan with no ``Index Cond`` (the whole index read in order, the planner's other
way round a missing index) is reported too.

What it cannot see: the plans inside database functions a statement calls
(``ims.refresh_analytics``), and statements EXPLAIN cannot show (COPY, DDL).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from ims_repo.core import loader
from ims_repo.core.loader import QueryFile, Statement
from ims_repo.core.sql_refs import references
from ims_repo.services import explain as explaining
from ims_repo.services.checks import Problem
from ims_repo.services.security_checks import USER_OWNED_TABLES

__all__ = ["check_plans", "ordinary_user"]

_SETTINGS = {"enable_seqscan": "off"}
_INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan"})


def check_plans(
    conninfo: str, files: Iterable[QueryFile] | None = None, *, user_id: int | None = None
) -> list[Problem]:
    """The statements of ``files`` (default: the packaged ones) whose plan for an
    ordinary user scans a user-owned table without an index condition.

    ``user_id`` is the context planned in; by default :func:`ordinary_user`.
    """
    if user_id is None:
        user_id = ordinary_user(conninfo)
    problems: list[Problem] = []
    for query_file in loader.packaged_files() if files is None else files:
        for statement in query_file.statements.values():
            problems.extend(_check(conninfo, statement, user_id))
    return problems


def ordinary_user(conninfo: str) -> int:
    """The first user whose role is not ``admin``; 0 (no such user, so an ordinary
    user's context all the same) when there is none."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute(
            "SELECT min(user_id) FROM ims.users WHERE role <> 'admin'"
        ).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def _check(conninfo: str, statement: Statement, user_id: int) -> list[Problem]:
    tables = {use.table for use in references(statement.tokens).tables} & set(USER_OWNED_TABLES)
    if not tables:
        return []
    try:
        explained = explaining.explain(
            conninfo, statement, user_id=user_id, json=True, settings=_SETTINGS
        )
    except ValueError:  # not a statement EXPLAIN shows (COPY, CREATE TEMPORARY TABLE)
        return []
    except psycopg.Error as error:
        message = error.diag.message_primary or str(error)
        return [Problem(statement.location, statement.label, f"could not be planned: {message}")]
    problems = []
    for node in _nodes(explained.document or []):
        table = node.get("Relation Name")
        if table not in tables:
            continue
        kind = node.get("Node Type")
        if kind == "Seq Scan":
            problems.append(
                f"reads all of ims.{table} (Seq Scan, even with enable_seqscan off): no "
                f"index serves its conditions for user {user_id}"
            )
        elif kind in _INDEX_SCANS and "Index Cond" not in node:
            problems.append(
                f"reads all of ims.{table} through index {node.get('Index Name')} (no "
                f"Index Cond): no index serves its conditions for user {user_id}"
            )
    return [Problem(statement.location, statement.label, message) for message in problems]


def _nodes(document: list[Any]) -> Iterator[dict[str, Any]]:
    """Every plan node of an ``EXPLAIN (FORMAT JSON)`` document."""
    pending = [entry["Plan"] for entry in document if isinstance(entry, dict) and "Plan" in entry]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(node.get("Plans", []))
