"""Every named statement ims_repo ships, declared once with its parameters and record.

One module per file of ``ims_repo/queries/``: ``users.py`` declares the statements of
``users.sql`` (``GET = SQL.statement("get", "user_id", record=User)``), and the
repositories take theirs from it. A declaration is checked against its SQL when the
module is imported (a renamed statement or a parameter the SQL and the Python disagree
on fails at once). ``catalog()`` lists them all, for the schema check and the CLI,
without depending on which repositories happen to be imported.
"""

from __future__ import annotations

from types import ModuleType

from ims_repo.core.loader import Statement
from ims_repo.core.statements import (
    analytics,
    attachments,
    audit,
    comments,
    context,
    crawl_sessions,
    history,
    imports,
    issues,
    replication,
    search,
    search_queries,
    session_errors,
    session_issues,
    users,
)

MODULES: tuple[ModuleType, ...] = (
    analytics,
    attachments,
    audit,
    comments,
    context,
    crawl_sessions,
    history,
    imports,
    issues,
    replication,
    search,
    search_queries,
    session_errors,
    session_issues,
    users,
)


def catalog() -> list[Statement]:
    """Every declared statement, by file and then by position in its file."""
    declared = [
        value
        for module in MODULES
        for value in vars(module).values()
        if isinstance(value, Statement)
    ]
    return sorted(declared, key=lambda statement: (statement.file, statement.line))
