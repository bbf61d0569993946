"""What a piece of SQL refers to: the ``ims`` tables it reads or writes (with their
aliases), the ``ims`` functions it calls, and where it compares ``user_id``.

A lint, not a parser: it reads the code tokens of the project's lexer (literals,
quoted names and comments are masked first, so nothing inside them is mistaken for a
reference) and recognises the forms the project's SQL is written in: schema-qualified
names (``ims.users``), ``INSERT INTO`` / ``UPDATE`` / ``DELETE FROM`` / ``COPY`` before a
table, ``AS alias`` or a bare alias after it, ``ON CONFLICT … DO UPDATE``, a locking
clause (``FOR UPDATE``, ``FOR SHARE``…, which needs UPDATE on the tables it locks: here,
those read earlier in the same statement, or the ones its ``OF`` names). Used by the
privilege and distribution checks of :mod:`ims_repo.services.security_checks` and
:mod:`ims_repo.services.citus_checks`; no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ims_repo.core.lexer import Kind, LexError, Token, tokenize

__all__ = ["References", "TableUse", "code_text", "references"]


@dataclass(frozen=True)
class TableUse:
    """One mention of an ``ims`` table (or view) in a statement."""

    table: str  # unqualified, e.g. "crawl_sessions"
    alias: str | None  # the alias the statement gives it, if any
    command: str  # SELECT, INSERT, UPDATE, DELETE or TRUNCATE: what this mention does
    line: int  # 1-based line within the SQL text
    columns: tuple[str, ...] = ()  # an INSERT's column list
    offset: int = 0  # where the mention starts in the code text


@dataclass(frozen=True)
class References:
    """Everything :func:`references` found in one piece of SQL."""

    tables: tuple[TableUse, ...]
    functions: frozenset[str]  # unqualified names of ims functions called
    reads_rows: bool  # WHERE, RETURNING, ON CONFLICT, a join: the statement reads columns
    code: str  # the code text (literals and comments blanked), for further matching

    def privileges(self) -> set[tuple[str, str]]:
        """``(table, privilege)`` pairs this SQL needs: the command of each mention, plus
        SELECT where it reads rows (a plain read, a WHERE, RETURNING or ON CONFLICT)."""
        needed: set[tuple[str, str]] = set()
        for use in self.tables:
            needed.add((use.table, use.command))
            if use.command == "SELECT" or self.reads_rows:
                needed.add((use.table, "SELECT"))
            if use.command == "INSERT" and _DO_UPDATE.search(self.code):
                needed.add((use.table, "UPDATE"))
        needed.update((table, "UPDATE") for table in self._locked_tables())
        return needed

    def _locked_tables(self) -> set[str]:
        """Tables a locking clause (``SELECT … FOR UPDATE``/``FOR SHARE``…) locks: each
        needs UPDATE. Without ``OF``, every table read before the clause in the same
        statement (after the last ``;``); with ``OF a, b``, those named or aliased so."""
        locked: set[str] = set()
        for clause in _LOCKING.finditer(self.code):
            start = self.code.rfind(";", 0, clause.start()) + 1
            read = [
                use
                for use in self.tables
                if use.command == "SELECT" and start <= use.offset < clause.start()
            ]
            named = {name.strip().lower() for name in (clause.group("of") or "").split(",")}
            named.discard("")
            locked.update(
                use.table
                for use in read
                if not named or use.table in named or (use.alias or "").lower() in named
            )
        return locked

    def compares_user_id(self, use: TableUse) -> bool:
        """Whether the SQL filters or joins ``use``'s table on ``user_id`` (qualified by
        its alias or table name, or unqualified), or, for an INSERT, supplies it."""
        if use.command == "INSERT":
            return "user_id" in use.columns
        qualifiers = {use.table} | ({use.alias} if use.alias else set())
        names = "|".join(re.escape(q) for q in sorted(qualifiers))
        column = rf"(?:\b(?:{names})\.|(?<![\w.]))user_id\b"
        compared = (
            rf"{column}\s*(?:=|\bIN\b|\bBETWEEN\b|\bIS\s+NOT\s+DISTINCT\s+FROM\b)"
            rf"|(?:=|\bIS\s+NOT\s+DISTINCT\s+FROM\b)\s*{column}"
        )
        return re.search(compared, self.code, re.IGNORECASE) is not None


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_QUALIFIED = re.compile(rf"\bims\.({_NAME})\b", re.IGNORECASE)
_CALL = re.compile(r"\s*\(")
_TYPE_CAST = re.compile(r"::\s*$")
_ALIAS = re.compile(rf"\s+(?:AS\s+)?({_NAME})", re.IGNORECASE)
_COLUMNS = re.compile(r"\s*\(([^()]*)\)")
_DO_UPDATE = re.compile(r"\bDO\s+UPDATE\b", re.IGNORECASE)
_LOCKING = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b"
    rf"(?:\s+OF\s+(?P<of>{_NAME}(?:\s*,\s*{_NAME})*))?",
    re.IGNORECASE,
)
_READS = re.compile(r"\b(?:WHERE|RETURNING|ON|USING|JOIN|CONFLICT)\b", re.IGNORECASE)
_BEFORE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bINSERT\s+INTO\s*$", re.IGNORECASE), "INSERT"),
    (re.compile(r"\bMERGE\s+INTO\s*$", re.IGNORECASE), "UPDATE"),
    (re.compile(r"(?<!\bFOR\s)(?<!\bDO\s)\bUPDATE\s+(?:ONLY\s+)?$", re.IGNORECASE), "UPDATE"),
    (re.compile(r"\bDELETE\s+FROM\s+(?:ONLY\s+)?$", re.IGNORECASE), "DELETE"),
    (re.compile(r"\bCOPY\s*$", re.IGNORECASE), "INSERT"),
    (re.compile(r"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?$", re.IGNORECASE), "TRUNCATE"),
)
# Words that may follow a table but are no alias.
_NOT_ALIASES = frozenset(
    [
        "where",
        "set",
        "on",
        "join",
        "left",
        "right",
        "inner",
        "outer",
        "full",
        "cross",
        "natural",
        "lateral",
        "using",
        "values",
        "order",
        "group",
        "limit",
        "offset",
        "fetch",
        "returning",
        "default",
        "select",
        "for",
        "window",
        "having",
        "union",
        "except",
        "intersect",
        "tablesample",
        "only",
        "and",
        "or",
        "not",
        "do",
        "as",
        "when",
        "then",
        "end",
        "from",
        "into",
    ]
)


def code_text(tokens: Iterable[Token]) -> str:
    """The code of ``tokens`` with literals, quoted names and comments blanked (line
    breaks kept, so offsets and line numbers stay those of the SQL)."""
    parts: list[str] = []
    for token in tokens:
        if token.kind in (Kind.TEXT, Kind.CAST, Kind.PARAM, Kind.SLOT):
            parts.append(token.text)
        else:
            parts.append(re.sub(r"[^\n]", " ", token.text))
    return "".join(parts)


def references(sql: str | Iterable[Token]) -> References:
    """The ``ims`` tables and functions ``sql`` (text or the lexer's tokens) refers to.

    Text that does not lex (a function body in a language the lexer does not know) is
    read as it is.
    """
    if isinstance(sql, str):
        try:
            code = code_text(tokenize(sql))
        except LexError:
            code = sql
    else:
        code = code_text(sql)
    tables: list[TableUse] = []
    functions: set[str] = set()
    for match in _QUALIFIED.finditer(code):
        before = code[: match.start()]
        after = code[match.end() :]
        if _TYPE_CAST.search(before):  # ::ims.session_issues names a row type
            continue
        command = next((name for pattern, name in _BEFORE if pattern.search(before)), None)
        if command is None and _CALL.match(after):
            functions.add(match.group(1).lower())
            continue
        command = command or "SELECT"
        alias_match = _ALIAS.match(after)
        alias = alias_match.group(1) if alias_match else None
        if alias is not None and alias.lower() in _NOT_ALIASES:
            alias = None
        columns: tuple[str, ...] = ()
        rest = after[alias_match.end() :] if alias_match and alias else after
        if command == "INSERT" and (column_match := _COLUMNS.match(rest)):
            columns = tuple(c.strip().lower() for c in column_match.group(1).split(","))
        tables.append(
            TableUse(
                table=match.group(1).lower(),
                alias=alias,
                command=command,
                line=before.count("\n") + 1,
                columns=columns,
                offset=match.start(),
            )
        )
    return References(
        tables=tuple(tables),
        functions=frozenset(functions),
        reads_rows=_READS.search(code) is not None,
        code=code,
    )
