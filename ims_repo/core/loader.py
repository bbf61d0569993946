"""Load named SQL statements from ``.sql`` files.

File format (one file per table or concern)::

    -- name: get_by_username :one
    -- The user with this username, or nothing.
    SELECT user_id, username
    FROM ims.users
    WHERE username = :username;

The header names the statement and the kind of result (``:one`` row or none, ``:many``
rows, ``:scalar`` value, ``:rowcount`` rows changed, ``:none``), optionally followed by
``:write`` for a statement that reads like a query but changes something (a ``SELECT`` of
a function that writes); at least one comment line says what it does. ``:name`` is a
parameter and ``{filters}`` / ``{order_by}`` are slots that ``find()`` fills from a
whitelist. Everything else is sent as written, so a DBA can
paste a statement into psql. Files are parsed once, and every problem is reported as
``file:line: message`` when the file is loaded, not at the first call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ims_repo.core.errors import QueryFileError
from ims_repo.core.lexer import Kind, LexError, Token, tokenize


class ResultKind(Enum):
    """What running a statement gives back (the ``:kind`` in its header)."""

    ONE = "one"
    MANY = "many"
    SCALAR = "scalar"
    ROWCOUNT = "rowcount"
    NONE = "none"


# A slot's text when a statement runs without the code that fills it (explain, check).
SLOT_DEFAULTS: Mapping[str, str] = {"filters": "TRUE", "order_by": "1"}

_HEADER = re.compile(r"^--\s*name:")
_WORD = re.compile(r"[A-Za-z_]+")
_WRITING_WORDS = {
    *("INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FOR", "INTO", "CALL", "DO", "LOCK")
}
# Built-in functions that change state (a setting, a sequence, a lock held until the
# transaction ends, a notification): a query calling one is not read-only.
_WRITING_FUNCTIONS = {"SET_CONFIG", "NEXTVAL", "SETVAL", "PG_NOTIFY", "TXID_CURRENT"}
_WRITING_PREFIXES = ("PG_ADVISORY", "PG_TRY_ADVISORY", "PG_CURRENT_XACT_ID", "LO_")
_POSITIONAL = re.compile(r"(?<![A-Za-z0-9_])\$\d")
_VALID_HEADER = re.compile(
    r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s+:(?P<kind>[a-z]+)(?:\s+:(?P<flag>[a-z]+))?\s*$"
)
WRITE_FLAG = "write"
"""The header flag (``-- name: x :one :write``) declaring a query that changes something."""


@dataclass(frozen=True)
class Fragment:
    """SQL for a slot, built by ims_repo from a whitelist (never from input), with its
    own bound parameters (already in psycopg's ``%(name)s`` form)."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Statement:
    """One named statement, parsed and checked."""

    file: str  # the file's name, e.g. "users.sql"
    line: int  # line of the ``-- name:`` header
    name: str
    kind: ResultKind
    doc: str
    sql: str  # the body as written in the file
    params: tuple[str, ...]  # parameter names in order of first use
    slots: tuple[str, ...]
    record: type[BaseModel] | None = None  # what each row fills, for the schema check
    writes: bool = False  # declared ``:write`` in its header
    _tokens: tuple[Token, ...] = field(default=(), repr=False, compare=False)

    @property
    def label(self) -> str:
        """``users.get_by_username``: the statement's name as seen in the server log."""
        return f"{Path(self.file).stem}.{self.name}"

    @property
    def location(self) -> str:
        """``users.sql:12``: the file and line of the statement's header."""
        return f"{self.file}:{self.line}"

    @property
    def tokens(self) -> tuple[Token, ...]:
        """The body's tokens (final ``;`` dropped), for tools that inspect the SQL."""
        return self._tokens

    @cached_property
    def read_only(self) -> bool:
        """True for a query that only reads: it returns rows (``:one``/``:many``/
        ``:scalar``), is not declared ``:write``, is a ``SELECT`` or a ``WITH … SELECT``
        whose every part reads (no ``INSERT``/``UPDATE``/``DELETE``/``MERGE`` in a CTE),
        takes no row lock (``FOR UPDATE``/``SHARE``), creates nothing (``SELECT … INTO``)
        and calls no built-in function that changes state (``set_config``, ``nextval``,
        advisory locks). Keywords are read from the SQL text only, never from strings,
        quoted names or comments.

        What it decides: a session may run such a statement, with its context, in a
        transaction of its own that ends with the result (one round trip, no COMMIT),
        and a replica session (``db.session(replica=True)``) may send it at all. A user
        function that writes cannot be seen from the text: declare its statement
        ``:write`` (a ``:none``/``:rowcount`` statement always counts as a write).
        """
        if self.writes or self.kind not in (ResultKind.ONE, ResultKind.MANY, ResultKind.SCALAR):
            return False
        words = [
            word.upper()
            for token in self._tokens
            if token.kind is Kind.TEXT
            for word in _WORD.findall(token.text)
        ]
        return (
            bool(words)
            and words[0] in ("SELECT", "WITH")
            and not (_WRITING_WORDS | _WRITING_FUNCTIONS) & set(words)
            and not any(word.startswith(_WRITING_PREFIXES) for word in words)
        )

    @cached_property
    def query(self) -> str:
        """The psycopg text with default slot fillers (what explain and check run)."""
        return self.render({})

    def render(self, slots: Mapping[str, str]) -> str:
        """The text sent to the server: a comment naming the statement, then the body
        with ``:name`` as ``%(name)s``, ``%`` doubled and slots filled."""
        parts = [f"/* ims_repo {self.label} */\n"]
        for token in self._tokens:
            if token.kind is Kind.PARAM:
                parts.append(f"%({token.name})s")
            elif token.kind is Kind.SLOT:
                parts.append(slots.get(token.name, SLOT_DEFAULTS[token.name]))
            else:
                parts.append(token.text.replace("%", "%%"))
        return "".join(parts)

    def positional(self) -> str:
        """The text as the server describes it: the naming comment, then the body with
        ``:name`` as ``$1``… in ``params`` order and slots at their defaults.

        What the schema check prepares: psql would send the same text, and ``$n`` keeps
        the server's parameter numbers in step with ``params`` (``%`` stays as written).
        """
        numbers = {name: index for index, name in enumerate(self.params, 1)}
        parts = [f"/* ims_repo {self.label} */\n"]
        for token in self._tokens:
            if token.kind is Kind.PARAM:
                parts.append(f"${numbers[token.name]}")
            elif token.kind is Kind.SLOT:
                parts.append(SLOT_DEFAULTS[token.name])
            else:
                parts.append(token.text)
        return "".join(parts)

    def bind(self, params: Mapping[str, Any], **slots: Fragment) -> BoundStatement:
        """Pair the statement with its arguments, refusing a missing or extra one."""
        if set(params) != set(self.params):
            raise QueryFileError(
                f"{self.location}: {self.label} takes {_names(self.params)} "
                f"but was given {_names(tuple(params))}"
            )
        if set(slots) - set(self.slots):
            raise QueryFileError(f"{self.location}: {self.label} has no slot {set(slots)}")
        if not slots:
            return BoundStatement(self, self.query, params)
        merged = dict(params)
        for fragment in slots.values():
            merged.update(fragment.params)
        text = self.render({name: fragment.sql for name, fragment in slots.items()})
        return BoundStatement(self, text, merged)


@dataclass(frozen=True)
class BoundStatement:
    """A statement ready to run: the text to send and the values to bind."""

    statement: Statement
    text: str
    params: Mapping[str, Any]


class QueryFile:
    """The named statements of one ``.sql`` file, parsed once."""

    def __init__(self, path: Path | str, text: str | None = None) -> None:
        self.path = Path(path)
        """Where the file is (its name labels the statements: ``users.sql`` → ``users.*``)."""
        if text is None:
            # newline="": no universal newlines, so a "\r" in a literal is read as written
            with self.path.open(encoding="utf-8", newline="") as file:
                text = file.read()
        self.statements: dict[str, Statement] = {
            statement.name: statement for statement in parse(self.path.name, text)
        }
        """The file's statements by name, in file order."""
        self.registered: set[str] = set()
        """Names of the statements code has asked for with ``statement()`` (the schema
        check reports the others as unused SQL)."""

    def statement(
        self, name: str, *params: str, record: type[BaseModel] | None = None
    ) -> Statement:
        """The statement ``name``, checked against the parameters its caller passes.

        Repository modules call this at import, so a renamed statement or a parameter
        that the SQL and the Python disagree on fails when the module is loaded.
        """
        found = self.statements.get(name)
        if found is None:
            known = ", ".join(sorted(self.statements)) or "none"
            raise QueryFileError(f"{self.path.name}: no statement named {name!r} (has: {known})")
        if set(params) != set(found.params):
            raise QueryFileError(
                f"{found.location}: {found.label} uses {_names(found.params)} "
                f"but its caller passes {_names(params)}"
            )
        self.registered.add(name)
        if record is not None:
            found = self.statements[name] = replace(found, record=record)
        return found


def load(name: str) -> QueryFile:
    """A query file shipped with ims_repo: ``load("users")`` reads ``queries/users.sql``."""
    return _load_packaged(name)


@cache
def _load_packaged(name: str) -> QueryFile:
    path = Path(str(resources.files("ims_repo.queries").joinpath(f"{name}.sql")))
    return QueryFile(path)


def packaged_files() -> list[QueryFile]:
    """Every query file shipped with ims_repo (for the CLI and the schema check)."""
    folder = resources.files("ims_repo.queries")
    names = sorted(item.name[:-4] for item in folder.iterdir() if item.name.endswith(".sql"))
    return [load(name) for name in names]


def parse(filename: str, source: str) -> list[Statement]:
    """Parse the text of one ``.sql`` file into its statements."""
    statements: list[Statement] = []
    seen: dict[str, int] = {}
    # Lines end at "\n" only (a "\r\n" file keeps its "\r", which SQL reads as space):
    # str.splitlines would also break at "\r", "\f", "\x1e", "\u2028"… and so change a
    # literal holding one.
    lines = source.split("\n")
    headers = [number for number, text in enumerate(lines, 1) if _HEADER.match(text)]
    _check_preamble(filename, lines[: headers[0] - 1 if headers else len(lines)])
    for index, header_line in enumerate(headers):
        end = headers[index + 1] - 1 if index + 1 < len(headers) else len(lines)
        statement = _parse_statement(filename, header_line, lines[header_line - 1 : end])
        if statement.name in seen:
            raise QueryFileError(
                f"{filename}:{header_line}: duplicate statement name {statement.name!r} "
                f"(first defined at line {seen[statement.name]})"
            )
        seen[statement.name] = header_line
        statements.append(statement)
    return statements


def _check_preamble(filename: str, lines: list[str]) -> None:
    for number, text in enumerate(lines, 1):
        if text.strip() and not text.lstrip().startswith("--"):
            raise QueryFileError(
                f"{filename}:{number}: SQL before the first '-- name:' header "
                "(every statement needs a header)"
            )


def _parse_statement(filename: str, header_line: int, lines: list[str]) -> Statement:
    header = _VALID_HEADER.match(lines[0].strip())
    if header is None:
        raise QueryFileError(
            f"{filename}:{header_line}: malformed header {lines[0].strip()!r}; "
            "expected '-- name: <lower_case_name> :<one|many|scalar|rowcount|none>' "
            "(optionally followed by ':write')"
        )
    name = header.group("name")
    try:
        kind = ResultKind(header.group("kind"))
    except ValueError:
        raise QueryFileError(
            f"{filename}:{header_line}: unknown result kind ':{header.group('kind')}' "
            "(one, many, scalar, rowcount or none)"
        ) from None
    flag = header.group("flag")
    if flag is not None and flag != WRITE_FLAG:
        raise QueryFileError(
            f"{filename}:{header_line}: unknown header flag ':{flag}' (the only one is "
            f"':{WRITE_FLAG}', for a query that changes something)"
        )

    doc_lines: list[str] = []
    body_start = 1
    for text in lines[1:]:
        stripped = text.strip()
        if not stripped.startswith("--"):
            break
        doc_lines.append(stripped[2:].strip())
        body_start += 1
    if not any(doc_lines):
        raise QueryFileError(
            f"{filename}:{header_line}: statement {name!r} needs a comment line saying "
            "what it does, right under its header"
        )
    body_first_line = header_line + body_start
    body = "\n".join(lines[body_start:]).strip()
    body_first_line += _leading_blank_lines(lines[body_start:])
    if not body:
        raise QueryFileError(f"{filename}:{header_line}: statement {name!r} has no SQL")

    try:
        tokens = tokenize(body)
    except LexError as error:
        raise QueryFileError(
            f"{filename}:{body_first_line + error.line - 1}: {error} in statement {name!r}"
        ) from None
    tokens = _strip_final_semicolon(tokens)
    _check_tokens(filename, body_first_line, name, tokens)

    params = tuple(dict.fromkeys(t.name for t in tokens if t.kind is Kind.PARAM))
    slots = tuple(dict.fromkeys(t.name for t in tokens if t.kind is Kind.SLOT))
    return Statement(
        file=filename,
        line=header_line,
        name=name,
        kind=kind,
        doc=" ".join(line for line in doc_lines if line),
        sql=body,
        params=params,
        slots=slots,
        writes=flag is not None,
        _tokens=tuple(tokens),
    )


def _leading_blank_lines(lines: list[str]) -> int:
    count = 0
    for text in lines:
        if text.strip():
            break
        count += 1
    return count


def _strip_final_semicolon(tokens: list[Token]) -> list[Token]:
    """Drop the ``;`` ending the statement (and trailing comments) so it can be prepared."""
    while tokens and (tokens[-1].kind is Kind.COMMENT or not tokens[-1].text.strip()):
        tokens = tokens[:-1]
    if tokens and tokens[-1].kind is Kind.TEXT:
        last = tokens[-1]
        stripped = last.text.rstrip()
        if stripped.endswith(";"):
            tokens = [*tokens[:-1], Token(Kind.TEXT, stripped[:-1], last.line)]
    return tokens


def _check_tokens(filename: str, first_line: int, name: str, tokens: list[Token]) -> None:
    for token in tokens:
        problem = _token_problem(token)
        if problem is None:
            continue
        offset, message = problem
        line = first_line + token.line - 1 + token.text.count("\n", 0, offset)
        raise QueryFileError(f"{filename}:{line}: statement {name!r} {message}")


def _token_problem(token: Token) -> tuple[int, str] | None:
    """Where in the token something is wrong, and what; None when it is fine."""
    if token.kind is Kind.TEXT:
        if ";" in token.text:
            return token.text.index(";"), (
                "holds more than one SQL statement (give each its own '-- name:' header)"
            )
        positional = _POSITIONAL.search(token.text)
        if positional:
            return positional.start(), "uses a positional parameter ($1); name it (:user_id)"
    if token.kind is Kind.SLOT and token.name not in SLOT_DEFAULTS:
        known = ", ".join("{" + slot + "}" for slot in SLOT_DEFAULTS)
        return 0, f"has unknown slot {token.text} (known: {known})"
    return None


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f":{name}" for name in sorted(names)) if names else "no parameters"
