"""The row-level-security check: is the schema set up the way SPEC §3 says it must be?

What is checked, on the live catalogs (``pg_class``, ``pg_policy``, ``pg_proc`` and the
``has_*_privilege`` functions), for the runtime role ``ims_app``:

1. **RLS on**: every table of schema ``ims`` has row-level security enabled *and*
   forced (without FORCE the owner, and whatever runs as the owner, bypasses the
   policies); every user-owned table exists. Every view of ``ims`` is
   ``security_invoker`` (a view otherwise reads its tables with its owner's rights).
2. **Policies of the user-owned tables** (``crawl_sessions``, ``session_issues``,
   ``search_queries``, ``session_errors``, ``analytics_daily``, ``analytics_monthly``,
   ``audit_log``): for each command the runtime role is granted (SELECT, INSERT,
   UPDATE, DELETE), a permissive policy applying to it (``TO ims_app``, a role it is a
   member of, or PUBLIC) covers that command; such a policy has a ``USING`` expression
   where the command reads rows (SELECT, UPDATE, DELETE) and an explicit ``WITH CHECK``
   where it writes rows (INSERT, UPDATE; PostgreSQL would fall back to ``USING``, but
   the rule is to say it); each expression compares ``user_id`` with the context.
3. **The context is read once**: in those expressions every call of an ``ims``
   function or of ``current_setting`` sits inside a ``(SELECT …)`` sub-query, which the
   planner evaluates once per statement (an InitPlan) rather than once per row, and
   which leaves ``user_id`` free to use its index.
4. **Definer functions**: no ``SECURITY DEFINER`` function in ``ims`` (outside
   extensions) lacks a fixed ``search_path`` (``SET search_path`` in ``proconfig``),
   nor lists ``"$user"`` or ``public`` in it.
5. **Grants**: ``ims_app`` is neither a superuser nor BYPASSRLS; it has no CREATE on
   schemas ``ims`` and ``public``; and it holds no privilege on a relation or function
   of ``ims`` beyond what the named statements need. What they need is derived from
   their SQL (:mod:`ims_repo.core.sql_refs`): each table a statement names with the
   command it runs on it (SELECT where it reads rows, UPDATE for ``ON CONFLICT … DO
   UPDATE``); each function a statement or a runtime policy calls, and each function
   SPEC §2 offers callers (``API_FUNCTIONS``), gets EXECUTE, and
   the body of a SECURITY INVOKER function is read the same way (its tables and the
   functions it calls); a view adds its definition. TRUNCATE, REFERENCES and TRIGGER
   are never needed; a write to ``audit_log`` or an UPDATE of ``users.role`` is always
   reported, whatever the statements say.

No statement is run and nothing is changed. The plan check (``--plans``) is in
:mod:`ims_repo.services.plan_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from ims_repo.core import loader
from ims_repo.core.lexer import LexError, tokenize
from ims_repo.core.loader import QueryFile
from ims_repo.core.sql_refs import code_text, references
from ims_repo.services.checks import RUNTIME_ROLE

__all__ = ["API_FUNCTIONS", "USER_OWNED_TABLES", "Finding", "check_security"]

SCHEMA: Final = "ims"
#: The tables whose rows belong to one user (SPEC §3).
USER_OWNED_TABLES: Final = (
    "crawl_sessions",
    "session_issues",
    "search_queries",
    "session_errors",
    "analytics_daily",
    "analytics_monthly",
    "audit_log",
)
_ROW_COMMANDS: Final = ("SELECT", "INSERT", "UPDATE", "DELETE")
_TABLE_PRIVILEGES: Final = (*_ROW_COMMANDS, "TRUNCATE", "REFERENCES", "TRIGGER")
_NEVER: Final = {
    "TRUNCATE": "TRUNCATE bypasses row-level security and the audit triggers",
    "REFERENCES": "the runtime role creates no foreign keys",
    "TRIGGER": "the runtime role creates no triggers",
}
# The database functions SPEC §2 offers callers (``s.execute("SELECT ims.…")``, psql):
# needed by the runtime whether or not a named statement calls them.
API_FUNCTIONS: Final = frozenset(
    {"set_current_user", "current_user_id", "get_user_stats", "search_issues", "refresh_analytics"}
)
_READS: Final = frozenset({"SELECT", "UPDATE", "DELETE"})
_WRITES: Final = frozenset({"INSERT", "UPDATE"})
_POLICY_COMMANDS: Final = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
_CONTEXT_CALL = re.compile(r"\b(?:ims\.[A-Za-z_][A-Za-z0-9_]*|current_setting)\s*\(", re.I)
_SEARCH_PATH = re.compile(r"^search_path=(?P<path>.*)$")


@dataclass(frozen=True)
class Finding:
    """One problem with the schema's security set-up, named by the object it is on."""

    check: str  # "rls", "view", "policy", "context", "definer", "grant"
    object: str  # "ims.crawl_sessions", "policy crawl_sessions_app_own_rows on ims.…"
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"


def check_security(
    conninfo: str, files: Iterable[QueryFile] | None = None, *, role: str = RUNTIME_ROLE
) -> list[Finding]:
    """Every problem of the RLS set-up of the database at ``conninfo`` (see the module
    docstring for the list), for the runtime ``role``; the privileges it needs are
    derived from the statements of ``files`` (default: the packaged ones) and the
    database functions they call. Any login that can read the catalogs will do."""
    statements = [
        statement
        for query_file in (loader.packaged_files() if files is None else files)
        for statement in query_file.statements.values()
    ]
    with psycopg.connect(conninfo, autocommit=True) as connection:
        auditor = _Auditor(connection, role)
        findings = [
            *auditor.role_attributes(),
            *auditor.tables(),
            *auditor.views(),
            *auditor.policies(),
            *auditor.definers(),
        ]
        needed_tables: set[tuple[str, str]] = set()
        needed_functions: set[str] = set()
        for statement in statements:
            found = references(statement.tokens)
            needed_tables |= found.privileges()
            needed_functions |= found.functions
        findings.extend(auditor.grants(needed_tables, needed_functions))
    return findings


class _Auditor:
    """The catalog queries of :func:`check_security`, on one connection."""

    def __init__(self, connection: psycopg.Connection[Any], role: str) -> None:
        self._connection = connection
        self._role = role

    def _rows(self, query: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        values = {"schema": SCHEMA, "role": self._role, **(params or {})}
        return self._connection.execute(query, values).fetchall()

    def role_attributes(self) -> list[Finding]:
        rows = self._rows(
            "SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = %(role)s"
        )
        if not rows:
            return [Finding("grant", f"role {self._role}", "does not exist")]
        superuser, bypass = rows[0]
        findings = []
        if superuser:
            findings.append(Finding("grant", f"role {self._role}", "is a superuser"))
        if bypass:
            findings.append(Finding("grant", f"role {self._role}", "has BYPASSRLS"))
        return findings

    def tables(self) -> list[Finding]:
        """RLS enabled and forced on every table of the schema; no user-owned one missing."""
        rows = self._rows(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity "
            "FROM pg_catalog.pg_class AS c "
            "WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p') "
            "ORDER BY c.relname"
        )
        findings = [
            Finding("rls", f"{SCHEMA}.{name}", "is missing (a user-owned table)")
            for name in USER_OWNED_TABLES
            if name not in {row[0] for row in rows}
        ]
        for name, enabled, forced in rows:
            if not enabled:
                findings.append(
                    Finding("rls", f"{SCHEMA}.{name}", "row-level security is not enabled")
                )
            if not forced:
                findings.append(
                    Finding(
                        "rls",
                        f"{SCHEMA}.{name}",
                        "row-level security is not forced (FORCE ROW LEVEL SECURITY): "
                        "its owner, and what runs as the owner, bypass the policies",
                    )
                )
        return findings

    def views(self) -> list[Finding]:
        rows = self._rows(
            "SELECT c.relname FROM pg_catalog.pg_class AS c "
            "WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'v' "
            "AND NOT coalesce('security_invoker=true' = ANY(c.reloptions), FALSE) "
            "AND NOT coalesce('security_invoker=on' = ANY(c.reloptions), FALSE) "
            "ORDER BY c.relname"
        )
        return [
            Finding(
                "view",
                f"{SCHEMA}.{name}",
                "is not security_invoker: it reads its tables with its owner's rights, "
                "past row-level security",
            )
            for (name,) in rows
        ]

    def policies(self) -> list[Finding]:
        """The policies of the user-owned tables that apply to the runtime role."""
        rows = self._rows(
            "SELECT c.relname, p.polname, p.polcmd::text, "
            "       pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
            "       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) "
            "FROM pg_catalog.pg_policy AS p "
            "JOIN pg_catalog.pg_class AS c ON c.oid = p.polrelid "
            "WHERE c.relnamespace = %(schema)s::regnamespace "
            "  AND c.relname = ANY(%(tables)s) "
            "  AND p.polpermissive "
            "  AND EXISTS (SELECT FROM unnest(p.polroles) AS r(oid) "
            "              WHERE r.oid = 0 OR pg_catalog.pg_has_role(%(role)s, r.oid, 'MEMBER')) "
            "ORDER BY c.relname, p.polname",
            {"tables": list(USER_OWNED_TABLES)},
        )
        granted = self._table_privileges(USER_OWNED_TABLES)
        findings: list[Finding] = []
        for table in USER_OWNED_TABLES:
            policies = [row[1:] for row in rows if row[0] == table]
            for command in _ROW_COMMANDS:
                if (table, command) not in granted:
                    continue
                applying = [p for p in policies if _POLICY_COMMANDS[p[1]] in (command, "ALL")]
                if not applying:
                    findings.append(
                        Finding(
                            "policy",
                            f"{SCHEMA}.{table}",
                            f"{self._role} may {command} but no permissive policy for "
                            f"{command} applies to it",
                        )
                    )
                for name, _, using, check in applying:
                    where = f"policy {name} on {SCHEMA}.{table}"
                    if command in _READS and using is None:
                        findings.append(
                            Finding("policy", where, f"has no USING expression ({command})")
                        )
                    if command in _WRITES and check is None:
                        findings.append(
                            Finding("policy", where, f"has no WITH CHECK expression ({command})")
                        )
            for name, _, using, check in policies:
                where = f"policy {name} on {SCHEMA}.{table}"
                for clause, expression in (("USING", using), ("WITH CHECK", check)):
                    if expression is None:
                        continue
                    findings.extend(
                        Finding(kind, where, f"{clause} ({expression}) {message}")
                        for kind, message in _expression_problems(expression)
                    )
        return _unique(findings)

    def definers(self) -> list[Finding]:
        rows = self._rows(
            "SELECT p.oid::regprocedure::text, p.proconfig "
            "FROM pg_catalog.pg_proc AS p "
            "WHERE p.pronamespace = %(schema)s::regnamespace AND p.prosecdef "
            "  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d "
            "                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass "
            "                    AND d.objid = p.oid AND d.deptype = 'e') "
            "ORDER BY 1"
        )
        findings = []
        for signature, config in rows:
            paths = [m.group("path") for s in config or [] if (m := _SEARCH_PATH.match(s))]
            if not paths:
                findings.append(
                    Finding(
                        "definer",
                        f"function {signature}",
                        "is SECURITY DEFINER without a fixed search_path "
                        "(add SET search_path = pg_catalog, ims)",
                    )
                )
            elif re.search(r'"\$user"|\$user|\bpublic\b', paths[0]):
                findings.append(
                    Finding(
                        "definer",
                        f"function {signature}",
                        f"is SECURITY DEFINER with search_path {paths[0]}, which names a "
                        "schema other roles may create objects in",
                    )
                )
        return findings

    def grants(
        self, needed_tables: set[tuple[str, str]], needed_functions: set[str]
    ) -> list[Finding]:
        """Privileges of the runtime role beyond what the statements need."""
        functions = self._functions()
        policy_calls = self._policy_calls()
        needed_functions = needed_functions | policy_calls | API_FUNCTIONS
        needed = set(needed_tables)
        # Follow invoker functions' bodies and views' definitions to a fixed point.
        pending = [name for name in needed_functions if name in functions]
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            body, definer = functions[name]
            if definer:
                continue
            found = references(body)
            needed |= found.privileges()
            called = found.functions | _unqualified_calls(body, functions)
            needed_functions |= called
            pending.extend(called - seen)
        views = self._views()
        for view in {table for table, _ in needed if table in views}:
            needed |= references(views[view]).privileges()
        findings: list[Finding] = []
        relations = self._relations()
        granted = self._table_privileges(relations)
        for table, privilege in sorted(granted):
            kind = relations[table]
            where = f"{SCHEMA}.{table}"
            if privilege in _NEVER:
                findings.append(
                    Finding("grant", where, f"{self._role} has {privilege}: {_NEVER[privilege]}")
                )
            elif table == "audit_log" and privilege != "SELECT":
                findings.append(
                    Finding(
                        "grant",
                        where,
                        f"{self._role} has {privilege}: audit rows are written by the "
                        "owner's trigger and never changed by the runtime",
                    )
                )
            elif kind == "S":
                findings.append(
                    Finding(
                        "grant",
                        where,
                        f"{self._role} has {privilege} on a sequence: identity columns need none",
                    )
                )
            elif (table, privilege) not in needed:
                uses = sorted(p for t, p in needed if t == table) or ["nothing"]
                findings.append(
                    Finding(
                        "grant",
                        where,
                        f"{self._role} has {privilege}, which no named statement needs "
                        f"(they need: {', '.join(uses)})",
                    )
                )
        if self._rows(
            "SELECT pg_catalog.has_column_privilege(%(role)s, 'ims.users', 'role', 'UPDATE')"
        ) == [(True,)]:
            findings.append(
                Finding(
                    "grant",
                    "ims.users.role",
                    f"{self._role} may UPDATE it: only the owner makes or unmakes an admin",
                )
            )
        for name in sorted(self._executable() - needed_functions):
            findings.append(
                Finding(
                    "grant",
                    f"function {SCHEMA}.{name}",
                    f"{self._role} has EXECUTE, which no named statement or policy needs",
                )
            )
        for schema in (SCHEMA, "public"):
            if self._rows(
                "SELECT pg_catalog.has_schema_privilege(%(role)s, n.oid, 'CREATE') "
                "FROM pg_catalog.pg_namespace AS n WHERE n.nspname = %(name)s",
                {"name": schema},
            ) == [(True,)]:
                findings.append(
                    Finding("grant", f"schema {schema}", f"{self._role} has CREATE on it")
                )
        return findings

    def _relations(self) -> dict[str, str]:
        rows = self._rows(
            "SELECT c.relname, c.relkind::text FROM pg_catalog.pg_class AS c "
            "WHERE c.relnamespace = %(schema)s::regnamespace "
            "  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
        )
        return {name: kind for name, kind in rows}

    def _table_privileges(self, tables: Iterable[str]) -> set[tuple[str, str]]:
        """``(table, privilege)`` the role holds, on the table or on any of its columns."""
        rows = self._rows(
            "SELECT c.relname, p.privilege "
            "FROM pg_catalog.pg_class AS c "
            "CROSS JOIN unnest(%(privileges)s::text[]) AS p(privilege) "
            "WHERE c.relnamespace = %(schema)s::regnamespace "
            "  AND c.relname = ANY(%(tables)s) "
            "  AND CASE WHEN c.relkind = 'S' "
            "           THEN p.privilege IN ('SELECT', 'UPDATE') "
            "                AND pg_catalog.has_sequence_privilege(%(role)s, c.oid, p.privilege) "
            "           ELSE pg_catalog.has_table_privilege(%(role)s, c.oid, p.privilege) "
            "             OR (p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') "
            "                 AND pg_catalog.has_any_column_privilege(%(role)s, c.oid, "
            "                                                         p.privilege)) "
            "      END",
            {"tables": list(tables), "privileges": list(_TABLE_PRIVILEGES)},
        )
        return {(name, privilege) for name, privilege in rows}

    def _functions(self) -> dict[str, tuple[str, bool]]:
        """Each ``ims`` function's body (its source, or its definition for a
        ``BEGIN ATOMIC`` body) and whether it is SECURITY DEFINER."""
        rows = self._rows(
            "SELECT p.proname, "
            "       CASE WHEN p.prosqlbody IS NULL THEN p.prosrc "
            "            ELSE pg_catalog.pg_get_functiondef(p.oid) END, "
            "       p.prosecdef "
            "FROM pg_catalog.pg_proc AS p "
            "WHERE p.pronamespace = %(schema)s::regnamespace AND p.prokind = 'f'"
        )
        return {name: (body or "", definer) for name, body, definer in rows}

    def _executable(self) -> set[str]:
        """The ``ims`` functions (outside extensions) the role may execute."""
        rows = self._rows(
            "SELECT p.proname FROM pg_catalog.pg_proc AS p "
            "WHERE p.pronamespace = %(schema)s::regnamespace "
            "  AND pg_catalog.has_function_privilege(%(role)s, p.oid, 'EXECUTE') "
            "  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d "
            "                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass "
            "                    AND d.objid = p.oid AND d.deptype = 'e')"
        )
        return {name for (name,) in rows}

    def _policy_calls(self) -> set[str]:
        """The ``ims`` functions called by the policies that apply to the role."""
        rows = self._rows(
            "SELECT concat_ws(' ', pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
            "                 pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)) "
            "FROM pg_catalog.pg_policy AS p "
            "JOIN pg_catalog.pg_class AS c ON c.oid = p.polrelid "
            "WHERE c.relnamespace = %(schema)s::regnamespace "
            "  AND EXISTS (SELECT FROM unnest(p.polroles) AS r(oid) "
            "              WHERE r.oid = 0 OR pg_catalog.pg_has_role(%(role)s, r.oid, 'MEMBER'))"
        )
        return {name for (text,) in rows for name in references(text).functions}

    def _views(self) -> dict[str, str]:
        rows = self._rows(
            "SELECT c.relname, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class AS c "
            "WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('v', 'm')"
        )
        return {name: definition for name, definition in rows}


def _unqualified_calls(body: str, functions: dict[str, tuple[str, bool]]) -> set[str]:
    """Calls inside a function body of ``ims`` functions by their bare name (a body may
    rely on its own ``search_path``)."""
    try:
        code = code_text(tokenize(body))
    except LexError:
        code = body
    return {
        name
        for name in functions
        if re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", code, re.IGNORECASE)
    }


def _expression_problems(expression: str) -> list[tuple[str, str]]:
    """What is wrong with one policy expression of a user-owned table."""
    problems: list[tuple[str, str]] = []
    calls = list(_CONTEXT_CALL.finditer(_masked(expression)))
    if not re.search(r"\buser_id\b", expression) or not calls:
        problems.append(("policy", "does not compare user_id with the context"))
    masked = _masked(expression)
    for call in calls:
        if not _inside_select(masked, call.start()):
            name = call.group(0).rstrip("( ")
            problems.append(
                (
                    "context",
                    f"calls {name}() outside a (SELECT …) sub-query: it is evaluated for "
                    "every row instead of once per statement",
                )
            )
    return problems


def _masked(expression: str) -> str:
    """The expression with string literals blanked (a ``(`` inside one is no group)."""
    try:
        return code_text(tokenize(expression))
    except LexError:
        return expression


def _inside_select(code: str, position: int) -> bool:
    """Whether ``position`` lies inside a parenthesised group starting with SELECT."""
    depth = 0
    for index in range(position - 1, -1, -1):
        character = code[index]
        if character == ")":
            depth += 1
        elif character == "(":
            if depth:
                depth -= 1
            elif re.match(r"\(\s*SELECT\b", code[index:], re.IGNORECASE):
                return True
    return False


def _unique(findings: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))
