"""The distribution lint (``ims-repo check --citus``): which named statements would
become multi-shard queries if the per-user tables were distributed by ``user_id``
(the layout of docs/SCALING.md).

A statement is flagged for each mention of a distributed table that it neither filters
nor joins on that table's ``user_id`` (``t.user_id = …``, ``… = t.user_id``, ``IN``,
``BETWEEN``; unqualified ``user_id`` counts for every table of the statement) and, for
an INSERT, whose column list does not supply ``user_id``. Citus routes such a statement
to every shard (a SELECT fans out; an UPDATE or DELETE locks every shard) — correct, but
no longer a single-node query. Row-level security adds a ``user_id`` range to every
scan, but Citus's router cannot use a range built from a sub-query, so the policy does
not count.

The statement's SQL is read with the project's lexer (:mod:`ims_repo.core.sql_refs`):
no database is needed, and an application's own ``.sql`` files are linted the same way.
Database functions called by a statement (``ims.refresh_analytics``) are not followed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ims_repo.core import loader
from ims_repo.core.loader import QueryFile
from ims_repo.core.sql_refs import references
from ims_repo.services.checks import Problem
from ims_repo.services.security_checks import USER_OWNED_TABLES

__all__ = ["DISTRIBUTED_TABLES", "check_distribution"]

#: Tables distributed by user_id in docs/SCALING.md (audit_log is not: its actor may be
#: NULL, which a distribution column cannot hold).
DISTRIBUTED_TABLES: Final = tuple(table for table in USER_OWNED_TABLES if table != "audit_log")


def check_distribution(files: Iterable[QueryFile] | None = None) -> list[Problem]:
    """The statements of ``files`` (default: the packaged ones) that would run on every
    shard: one problem per distributed table mention without a ``user_id`` condition."""
    problems: list[Problem] = []
    for query_file in loader.packaged_files() if files is None else files:
        for statement in query_file.statements.values():
            found = references(statement.tokens)
            for use in found.tables:
                if use.table not in DISTRIBUTED_TABLES or found.compares_user_id(use):
                    continue
                what = (
                    "supplies no user_id"
                    if use.command == "INSERT"
                    else ("neither filters nor joins it on user_id")
                )
                problems.append(
                    Problem(
                        statement.location,
                        statement.label,
                        f"{use.command} on ims.{use.table} (line {use.line} of its SQL) "
                        f"{what}: multi-shard when distributed by user_id",
                    )
                )
    return problems
