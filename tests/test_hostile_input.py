"""Hostile input through every surface of every repository, counted on the server, and
the runtime role's least privilege (issue 6, items 2 and 6).

The corpus (``tests.test_injection.HOSTILE`` and more: ``;`` chains, psql meta-commands,
invalid JSON paths, 1 MB strings) goes through every ``New…`` text and JSON field (create,
update and the bulk paths: COPY, JSON documents), every filter of every ``find``, every
``order_by``, the JSONB path/key/containment methods, the search text and the key
arguments. Each string must either work as plain data (stored and read back verbatim,
matched exactly as Python computes the match) or be refused with ``InvalidInput``.
Writes of the 1 MB strings are checked, then rolled back (a savepoint), so that the reads
after them stay fast; the 100 kB ones stay stored.

What reached the server is not taken on trust: the test runs on a private server with
``pg_stat_statements``, and the statements the runtime login ran there must be exactly
the named statements the calls were meant to send (same names, same counts) plus
transaction control, nothing else. Around the reads, the schema, every table's row count
and a checksum of every table's contents must not change.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import BaseModel

from ims_repo import (
    Database,
    InvalidInput,
    NewAttachment,
    NewCrawlSession,
    NewIssue,
    NewIssueComment,
    NewIssueHistory,
    NewSearchQuery,
    NewSessionError,
    NewUser,
    PermissionDenied,
    Session,
)
from ims_repo.core import loader
from ims_repo.core.filters import FilterSet
from ims_repo.core.lexer import Kind, tokenize
from ims_repo.db._async.repositories import (
    attachments,
    comments,
    crawl_sessions,
    history,
    issues,
    search_queries,
    session_errors,
    session_issues,
    users,
)
from ims_repo.faces.pytest_plugin import RUNTIME_LOGIN
from tests.conftest import PrivateServer, ReportFigure
from tests.seed import People, people
from tests.test_injection import HOSTILE, NUL_STRINGS, ends_in_escape, snapshot


def _varied(length: int) -> str:
    """Deterministic text of every kind of character (quotes, semicolons, dollars,
    backslashes, Hangul, emoji), without LIKE wildcards (see ``like``)."""
    alphabet = "abcdefghij klmnop'\";:$\\/*-()[]{}.,<>=!?#@&|^~`\t\n한국어😀ü"
    rng = random.Random(6)
    text = "".join(rng.choices(alphabet, k=length))
    return text.rstrip("\\") + "z"


MORE_HOSTILE: list[str] = [
    # `;` chains that try to end the statement or the transaction
    "; COMMIT; DROP SCHEMA ims CASCADE; BEGIN; --",
    "'); SELECT set_config('ims.current_user_id', '1', false); --",
    "'; RESET ROLE; SET ROLE ims_owner; --",
    "; COPY ims.users TO PROGRAM 'id'; --",
    # psql meta-commands
    "\\set ON_ERROR_STOP 0\n\\i /etc/passwd",
    "\\copy ims.users TO '/tmp/users.csv'",
    "\\q",
    # invalid JSON paths, path literals and operators
    "$.a[",
    "lax $.a ? (@ == ",
    '$."unterminated',
    "{a,b}",
    "'{a,b}'::text[]",
    "-> 'a' ->> 'b'",
    "#>> '{a}'",
    "\\u0000",  # JSON's escape for NUL, as six characters of text
    # 1 MB each: one that compresses, one that does not
    ("'; DROP TABLE ims.users; --" * 38_837)[: 1 << 20],
    _varied(1 << 20),
]
CORPUS: list[str] = [*HOSTILE, *MORE_HOSTILE]

# Text PostgreSQL cannot store: refused before SQL wherever it appears.
UNSTORABLE: list[str] = [*NUL_STRINGS, "\ud800", "a\udfffb", "'\udc00'; DROP TABLE ims.users; --"]

REFUSED = object()
"""What ``Calls.run`` returns for a call refused with ``InvalidInput``."""

LIMIT = 5
"""Rows asked for by the filters that match most rows (``_not``, ``_like``)."""


def short(text: str) -> str:
    return repr(text if len(text) < 40 else text[:40] + f"…({len(text)})")


# --- the books: what each call was meant to send, what the server ran --------------------


class Calls:
    """Runs the test's calls and keeps the books: the named statements each call was meant
    to send (counted per name), and how each call ended."""

    def __init__(self) -> None:
        self.intended: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.refused_by_server: Counter[str] = Counter()

    def run(
        self,
        s: Session,
        labels: str | tuple[str, ...],
        call: Callable[..., Any],
        *args: Any,
        refused_after: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """``call(*args, **kwargs)``: its result, or REFUSED (``InvalidInput`` before SQL,
        or after exactly the ``refused_after`` statements, which a savepoint undoes)."""
        return self._run(s, labels, False, call, args, kwargs, refused_after)

    def run_refusable(
        self,
        s: Session,
        labels: str | tuple[str, ...],
        call: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``run``, for arguments the code passes to the server unchecked: in a savepoint,
        and the server may refuse them (bad data, class 22; a limit, class 54) after the
        one intended statement."""
        return self._run(s, labels, True, call, args, kwargs)

    def _run(
        self,
        s: Session,
        labels: str | tuple[str, ...],
        server_may_refuse: bool,
        call: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        refused_after: tuple[str, ...] = (),
    ) -> Any:
        expected = (labels,) if isinstance(labels, str) else labels
        before = s.statements_sent
        try:
            if server_may_refuse:
                with s.savepoint():
                    result = call(*args, **kwargs)
            else:
                result = call(*args, **kwargs)
        except InvalidInput:
            sent = s.statements_sent - before
            if sent == 0:
                self.outcomes["refused before SQL"] += 1
            elif refused_after and sent == len(refused_after):
                self.intended.update(refused_after)
                self.outcomes["refused after a lookup, nothing written"] += 1
            else:
                # The intended statement is the last (after the lock order's, if any).
                assert server_may_refuse and sent == len(expected), (expected, sent)
                self.outcomes["refused by the server (bad data)"] += 1
                self.refused_by_server[expected[-1]] += 1
            return REFUSED
        assert s.statements_sent - before == len(expected), expected
        self.intended.update(expected)
        self.outcomes["worked as data"] += 1
        return result


_LABEL = re.compile(r"^/\* ims_repo (\S+) \*/")
_CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_LOGIN_CHECK = re.compile(r"^\s*SELECT current_user AS role, rolsuper")


class ServerStatements:
    """What ``pg_stat_statements`` recorded for the runtime login in one database."""

    def __init__(self, server: PrivateServer, admin_url: str) -> None:
        self.server = server
        with psycopg.connect(admin_url) as conn:
            row = conn.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()
        assert row is not None
        self.dbid = row[0]

    def reset(self) -> None:
        self.server.admin("SELECT pg_stat_statements_reset()")

    def counts(self) -> tuple[Counter[str], Counter[str], Counter[str]]:
        """Calls per statement name, per transaction-control command, and of anything
        else (by its text)."""
        named: Counter[str] = Counter()
        control: Counter[str] = Counter()
        other: Counter[str] = Counter()
        with psycopg.connect(self.server.server.url()) as conn:
            evicted = conn.execute("SELECT dealloc FROM pg_stat_statements_info").fetchone()
            assert evicted == (0,), "pg_stat_statements dropped entries: counts are incomplete"
            rows = conn.execute(
                "SELECT query, calls FROM pg_stat_statements "
                "WHERE dbid = %s AND userid = %s::regrole",
                [self.dbid, RUNTIME_LOGIN],
            ).fetchall()
        for query, calls in rows:
            if label := _LABEL.match(query):
                named[label.group(1)] += calls
            elif command := _CONTROL.match(query):
                control[command.group(1).upper()] += calls
            elif not _LOGIN_CHECK.match(query):  # each new pooled connection's check
                other[query[:200]] += calls
        return named, control, other


# --- the data and its state ---------------------------------------------------------------------


def state(admin_url: str) -> tuple[Any, dict[str, str]]:
    """The schema fingerprint and row counts (``test_injection.snapshot``) and a checksum
    of every table's contents, read by the superuser."""
    shot = snapshot(admin_url)
    sums: dict[str, str] = {}
    with psycopg.connect(admin_url) as conn:
        for table in shot.rows:
            query = sql.SQL(
                "SELECT md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) "
                "FROM {} AS t"
            ).format(sql.Identifier("ims", table))
            row = conn.execute(query).fetchone()
            assert row is not None
            sums[table] = row[0]
    return shot, sums


@dataclass(frozen=True)
class Writable:
    """A ``New…`` model and how to create one: the fields that take text and JSON, the
    values every row needs (unique per row ``n``), and the create call."""

    name: str
    model: type[BaseModel]
    text: tuple[str, ...]
    json: tuple[str, ...]
    safe: Callable[[int], dict[str, Any]]
    create: Callable[[Session, dict[str, Any]], BaseModel]
    label: str | tuple[str, ...]


def document(text: str) -> dict[str, Any]:
    """A JSON object made of ``text``: as a key, as a nested key and value, in a list."""
    return {text: {text: text}, "k": text, "list": [text]}


def writables(p: People, issue_pk: int, session_id: int) -> list[Writable]:
    return [
        Writable(
            "users",
            NewUser,
            ("username", "email", "full_name", "department"),
            ("preferences",),
            lambda n: {"username": f"user-{n}", "email": f"user-{n}@example.com"},
            lambda s, v: s.users.create(v),
            "users.create",
        ),
        Writable(
            "crawl_sessions",
            NewCrawlSession,
            ("product", "original_query", "parsed_query", "query_language", "data_path"),
            ("session_metadata",),
            lambda n: {"user_id": p.alice, "product": "OpenFrame", "original_query": "q"},
            lambda s, v: s.crawl_sessions.create(v),
            "crawl_sessions.create",
        ),
        Writable(
            "issues",
            NewIssue,
            (
                "issue_id",
                "title",
                "product",
                "description",
                "module",
                "version",
                "status",
                "priority",
                "severity",
                "reporter",
                "assignee",
                "url",
            ),
            ("raw_data",),
            lambda n: {"issue_id": f"H-{n}", "title": "t", "product": "OpenFrame"},
            lambda s, v: s.issues.create(v),
            ("issues.lock_issues", "issues.create"),
        ),
        Writable(
            "comments",
            NewIssueComment,
            ("content", "author"),
            (),
            lambda n: {"content": "c"},
            lambda s, v: s.comments.create(issue_pk, v),
            "comments.create",
        ),
        Writable(
            "history",
            NewIssueHistory,
            ("field_name", "changed_by", "old_value", "new_value"),
            (),
            lambda n: {"field_name": "f"},
            lambda s, v: s.history.create(issue_pk, v),
            "history.create",
        ),
        Writable(
            "attachments",
            NewAttachment,
            ("filename", "file_type", "storage_path", "checksum_sha256"),
            (),
            lambda n: {"issue_pk": issue_pk, "filename": "f"},
            lambda s, v: s.attachments.create(v),
            "attachments.create",
        ),
        Writable(
            "search_queries",
            NewSearchQuery,
            ("query_text", "parsed_query", "query_language"),
            (),
            lambda n: {"user_id": p.alice, "query_text": "q"},
            lambda s, v: s.search_queries.log(v),
            "search_queries.log",
        ),
        Writable(
            "session_errors",
            NewSessionError,
            ("error_type", "error_message", "stack_trace", "issue_id"),
            ("context",),
            lambda n: {
                "session_id": session_id,
                "user_id": p.alice,
                "error_type": "E",
                "error_message": "m",
            },
            lambda s, v: s.session_errors.create(v),
            "session_errors.create",
        ),
    ]


@dataclass
class Env:
    db: Database
    admin_url: str
    people: People
    issue_pk: int
    session_id: int
    statements: ServerStatements


@pytest.fixture
def env(private_server: PrivateServer) -> Iterator[Env]:
    admin_url, app_url = private_server.new_database()
    with Database(app_url, min_size=1, max_size=1) as db:
        p = people(db, admin_url)
        with db.session(user_id=p.alice) as s:
            issue_pk = s.issues.create(NewIssue(issue_id="HOST-1", title="t", product="P")).issue_pk
            session_id = s.crawl_sessions.create(
                NewCrawlSession(user_id=p.alice, product="P", original_query="q")
            ).session_id
            s.session_issues.link(session_id, issue_pk, crawl_order=1)
        statements = ServerStatements(private_server, admin_url)
        statements.reset()
        yield Env(db, admin_url, p, issue_pk, session_id, statements)


# --- Python's view of what a filter must match ----------------------------------------------


@cache
def like_regex(pattern: str) -> re.Pattern[str]:
    """SQL ``LIKE`` (escape ``\\``) as a regular expression."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def expected_rows(rows: list[Any], column: str, operator: str, value: str) -> list[Any]:
    values = [(row, getattr(row, column)) for row in rows]
    if operator in ("eq", "in"):
        return [row for row, v in values if v == value]
    if operator == "not":
        return [row for row, v in values if v is not None and v != value][:LIMIT]
    assert operator == "like"
    pattern = like_regex(value)
    return [row for row, v in values if v is not None and pattern.fullmatch(v)][:LIMIT]


def operators(filters: FilterSet) -> Iterator[tuple[str, str, str]]:
    """(filter name, column, operator) for every filter ``find`` accepts."""
    for name in filters.filter_names:
        if name in filters.columns:
            yield name, name, "eq"
        elif name.startswith("has_") and name[4:] in filters.columns:
            yield name, name[4:], "has"
        else:
            column, _, operator = name.rpartition("_")
            assert column in filters.columns, name
            yield name, column, operator


def contains(container: Any, contained: Any) -> bool:
    """jsonb ``@>`` for objects, arrays and scalars (not the top-level array special case)."""
    if isinstance(contained, dict):
        return isinstance(container, dict) and all(
            key in container and contains(container[key], value) for key, value in contained.items()
        )
    if isinstance(contained, list):
        return isinstance(container, list) and all(
            any(contains(item, wanted) for item in container) for wanted in contained
        )
    return type(container) is type(contained) and container == contained


# --- phase 1: every New… field, through every write path ----------------------------------


HUGE = 200_000
"""Writes of longer strings are checked, then undone (a savepoint rolled back): stored
1 MB titles would make every later search and filter of the test slow, not less safe."""


class _Undo(Exception):
    pass


@contextmanager
def kept_unless_huge(s: Session, text: str) -> Iterator[None]:
    """Run the block; when ``text`` is huge, roll its writes back afterwards."""
    if len(text) <= HUGE:
        yield
        return
    with contextlib.suppress(_Undo), s.savepoint():
        yield
        raise _Undo


def refused_by_model(model: type[BaseModel], values: Mapping[str, Any]) -> bool:
    """Whether the model itself refuses these values (a documented limit: a length, a
    pattern), as opposed to the repository refusing data the model accepts."""
    try:
        model.model_validate(values)
    except ValueError:
        return True
    return False


def assert_holds(record: Any, values: Mapping[str, Any], what: str) -> None:
    for field, value in values.items():
        assert getattr(record, field) == value, (what, field, short(str(value)))


def write_every_field(env: Env, calls: Calls) -> Counter[str]:
    """Every corpus string in every text and JSON field of every ``New…`` model, through
    its create: stored verbatim (the returned row holds it), or refused before SQL because
    the model refuses it. Rows created per table."""
    created: Counter[str] = Counter()
    n = 0
    for spec in writables(env.people, env.issue_pk, env.session_id):
        fields = (*spec.text, *spec.json)
        with env.db.session(user_id=env.people.alice) as s:
            for text in CORPUS:
                n += 1
                values = spec.safe(n) | {
                    f: document(text) if f in spec.json else text for f in fields
                }
                with kept_unless_huge(s, text):
                    record = calls.run(s, spec.label, spec.create, s, values)
                    if record is not REFUSED:
                        created[spec.name] += 1
                        assert_holds(record, values, spec.name)
                        continue
                    assert refused_by_model(spec.model, values), (spec.name, short(text))
                    for field in fields:  # refused as a whole: one field at a time
                        n += 1
                        one = spec.safe(n) | {field: document(text) if field in spec.json else text}
                        record = calls.run(s, spec.label, spec.create, s, one)
                        if record is REFUSED:
                            assert refused_by_model(spec.model, one), (
                                spec.name,
                                field,
                                short(text),
                            )
                        else:
                            created[spec.name] += 1
                            assert_holds(record, one, spec.name)
            for text in UNSTORABLE:
                for field in fields:
                    bad = spec.safe(0) | {field: document(text) if field in spec.json else text}
                    assert calls.run(s, spec.label, spec.create, s, bad) is REFUSED
    return created


def write_in_bulk_and_update(env: Env, calls: Calls) -> None:
    """The other write paths: COPY (``upsert_many``), JSON documents (``add_many``,
    ``update_many``) and ``update`` (a JSON object of changes)."""
    alice = env.people.alice
    with env.db.session(user_id=alice) as s:
        new_issue = NewIssue(issue_id="HOST-2", title="t", product="P")
        target = calls.run(
            s, ("issues.lock_issues", "issues.create"), s.issues.create, new_issue
        ).issue_pk
        new_user = NewUser(username="target", email="target@example.com")
        user = calls.run(s, "users.create", s.users.create, new_user).user_id
        crawl = env.session_id
        new_comment = NewIssueComment(content="c")
        comment = calls.run(s, "comments.create", s.comments.create, target, new_comment).comment_id
        new_attachment = NewAttachment(issue_pk=target, filename="f")
        attachment = calls.run(s, "attachments.create", s.attachments.create, new_attachment)
        attachment = attachment.attachment_id

        # COPY: every text field of a staged issue, verbatim.
        staged: list[dict[str, Any]] = []
        for number, text in enumerate(CORPUS):
            item = {
                "issue_id": f"U-{number}",
                "title": "t",
                "product": "P",
                "raw_data": document(text),
            }
            for field in writables(env.people, target, crawl)[2].text:
                if field != "issue_id" and not refused_by_model(NewIssue, item | {field: text}):
                    item[field] = text
            staged.append(item)
        # upsert_many looks the items' digests up first (nothing stored matches here),
        # then validates and stages the items; a refused item undoes the lookup.
        lookup = (
            "issues.lock_issues",
            "issues.create_hash_stage",
            "issues.copy_hash_stage",
            "issues.add_missing_crawls",
            "issues.crawl_unchanged",
            "issues.clear_hash_stage",
        )
        stage = (
            *lookup,
            "issues.create_upsert_stage",
            "issues.copy_upsert_stage",
            "issues.upsert_staged",
            "issues.clear_upsert_stage",
        )
        kept = [item for item in staged if len(item["raw_data"]["k"]) <= HUGE]
        huge = [item for item in staged if len(item["raw_data"]["k"]) > HUGE]
        for batch, text in ((kept, ""), (huge, "x" * (HUGE + 1))):
            with kept_unless_huge(s, text):
                result = calls.run(s, stage, s.issues.upsert_many, batch, batch_size=len(batch))
                assert result.inserted == len(batch)
                for item in batch:
                    stored = calls.run(
                        s, "issues.get_by_issue_id", s.issues.get_by_issue_id, item["issue_id"]
                    )
                    assert_holds(stored, item, "upsert_many")
        bad = [*staged[:3], {"issue_id": "U-bad", "title": "\x00", "product": "P"}]
        refused = calls.run(s, stage, s.issues.upsert_many, bad, refused_after=lookup)
        assert refused is REFUSED

        # JSON documents of comments and history.
        notes = [{"content": text, "author": text} for text in CORPUS]
        assert calls.run(s, "comments.add_many", s.comments.add_many, target, notes) == len(CORPUS)
        stored_notes = calls.run(s, "comments.for_issue", s.comments.for_issue, target)
        assert [(c.content, c.author) for c in stored_notes[1:]] == [(t, t) for t in CORPUS]
        changes = [
            {"field_name": text or "f", "changed_by": text, "old_value": text, "new_value": text}
            for text in CORPUS
        ]
        assert calls.run(s, "history.add_many", s.history.add_many, target, changes) == len(CORPUS)
        stored_changes = calls.run(s, "history.for_issue", s.history.for_issue, target)
        assert [(h.field_name, h.old_value) for h in stored_changes] == [
            (c["field_name"], c["old_value"]) for c in changes
        ]
        for text in UNSTORABLE:
            assert (
                calls.run(s, "comments.add_many", s.comments.add_many, target, [{"content": text}])
                is REFUSED
            )
            assert (
                calls.run(s, "history.add_many", s.history.add_many, target, [{"field_name": text}])
                is REFUSED
            )

        # update: a JSON object of changes, and update_many: a JSON array of them.
        for text in [*CORPUS, *UNSTORABLE]:
            unstorable = text in UNSTORABLE
            with kept_unless_huge(s, text):
                updates: list[
                    tuple[str | tuple[str, ...], Callable[..., Any], int, dict[str, Any]]
                ] = [
                    ("users.update", s.users.update, user, {"full_name": text, "department": text}),
                    (
                        "crawl_sessions.update",
                        s.crawl_sessions.update,
                        crawl,
                        {"data_path": text, "parsed_query": text},
                    ),
                    (
                        ("issues.lock_issues", "issues.update"),
                        s.issues.update,
                        target,
                        {"title": text, "description": text},
                    ),
                    (
                        "comments.update",
                        s.comments.update,
                        comment,
                        {"content": text, "author": text},
                    ),
                    (
                        "attachments.update",
                        s.attachments.update,
                        attachment,
                        {"storage_path": text},
                    ),
                ]
                for label, update, key, fields in updates:
                    record = calls.run(s, label, update, key, **fields)
                    assert (record is REFUSED) == unstorable, (label, short(text))
                    if not unstorable:
                        assert_holds(record, fields, str(label))
                changed = calls.run(
                    s,
                    ("issues.lock_issues", "issues.update_many"),
                    s.issues.update_many,
                    [{"issue_pk": target, "module": text}],
                )
                assert changed == (REFUSED if unstorable else 1)


# --- phase 2: every filter, order_by, JSONB path and key, search text, key argument ------

Repo = Callable[[Session], Any]
FINDS: list[tuple[str, Repo, FilterSet]] = [
    ("users", lambda s: s.users, users.FILTERS),
    ("crawl_sessions", lambda s: s.crawl_sessions, crawl_sessions.FILTERS),
    ("issues", lambda s: s.issues, issues.FILTERS),
    ("session_issues", lambda s: s.session_issues, session_issues.FILTERS),
    ("comments", lambda s: s.comments, comments.FILTERS),
    ("history", lambda s: s.history, history.FILTERS),
    ("attachments", lambda s: s.attachments, attachments.FILTERS),
    ("search_queries", lambda s: s.search_queries, search_queries.FILTERS),
    ("session_errors", lambda s: s.session_errors, session_errors.FILTERS),
]


def read_every_filter(env: Env, calls: Calls) -> None:
    """Every filter of every ``find`` (and of ``with_sessions``, ``count``,
    ``find_detailed``), every ``order_by``: a text filter matches exactly what Python
    says it matches; a hostile string where a number, time, flag or name is expected is
    refused before SQL."""
    for name, repo_of, filters in FINDS:
        with env.db.session(user_id=env.people.alice) as s:
            repo = repo_of(s)
            label = f"{name}.find"
            rows = calls.run(s, label, repo.find)
            assert rows, name
            for text in CORPUS:
                for filter_name, column, operator in operators(filters):
                    text_column = filters.columns[column].type is str
                    if not text_column or operator not in ("eq", "not", "in", "like"):
                        refused = calls.run(s, label, repo.find, **{filter_name: text})
                        assert refused is REFUSED, (name, filter_name)
                        continue
                    value = [text, "no such value"] if operator == "in" else text
                    limit = LIMIT if operator in ("not", "like") else None
                    found = calls.run(s, label, repo.find, **{filter_name: value}, limit=limit)
                    if operator == "like" and ends_in_escape(text):
                        assert found is REFUSED
                        continue
                    expected = expected_rows(rows, column, operator, text)
                    assert found == expected, (name, filter_name, short(text))
                    if operator != "eq":
                        continue
                    if name == "users":
                        with_sessions = calls.run(
                            s, "users.with_sessions", repo.with_sessions, **{filter_name: text}
                        )
                        assert [w.user for w in with_sessions] == expected
                    if name == "issues":
                        assert calls.run(
                            s, "issues.count", repo.count, **{filter_name: text}
                        ) == len(expected)
                        detailed = calls.run(
                            s, "issues.find_detailed", repo.find_detailed, **{filter_name: text}
                        )
                        assert [d.issue_pk for d in detailed] == [i.issue_pk for i in expected]
                assert calls.run(s, label, repo.find, **{text: "x"}) is REFUSED
                for order_by in ([text], [f"-{text}"], [filters.key, text], text):
                    assert calls.run(s, label, repo.find, order_by=order_by) is REFUSED
            for text in UNSTORABLE:
                for filter_name, _, operator in operators(filters):
                    value = [text] if operator == "in" else text
                    assert calls.run(s, label, repo.find, **{filter_name: value}) is REFUSED
                assert calls.run(s, label, repo.find, **{text: "x"}) is REFUSED
                assert calls.run(s, label, repo.find, order_by=[text]) is REFUSED


def read_json_search_and_audit(env: Env, calls: Calls) -> None:
    """JSONB paths, keys and containment; search text and product; the audit filters."""
    with env.db.session(user_id=env.people.alice) as s:
        contains_label = "crawl_sessions.metadata_contains"
        sessions = calls.run(s, "crawl_sessions.find", s.crawl_sessions.find)
        every_issue = {i.issue_pk for i in calls.run(s, "issues.find", s.issues.find)}
        audit = calls.run(s, "audit.find", s.audit.find, limit=1_000_000)
        assert sessions and every_issue and audit

        def having(document: dict[str, Any]) -> list[Any]:
            return [c for c in sessions if contains(c.session_metadata, document)]

        for text in CORPUS:
            cs = s.crawl_sessions
            found = calls.run(
                s, contains_label, cs.find_by_metadata, path=[text, text], equals=text
            )
            assert found == having({text: {text: text}}), short(text)
            assert found or len(text) > HUGE
            found = calls.run(
                s, contains_label, cs.find_by_metadata, path=[text], equals={text: text}
            )
            assert found == having({text: {text: text}})
            found = calls.run(s, contains_label, cs.find_by_metadata, path=["list"], equals=[text])
            assert found == having({"list": [text]})
            assert found or len(text) > HUGE
            found = calls.run(
                s, contains_label, cs.find_by_metadata, path=[text, "missing"], equals=text
            )
            assert found == having({text: {"missing": text}}) == []
            assert (
                calls.run(s, contains_label, cs.find_by_metadata, path=text, equals=text) is REFUSED
            )
            found = calls.run(s, "crawl_sessions.with_metadata_key", cs.with_metadata_key, text)
            assert found == [c for c in sessions if text in c.session_metadata]
            assert found or len(text) > HUGE
            found = calls.run(s, contains_label, cs.metadata_contains, {"k": text, "list": [text]})
            assert found == having({"k": text, "list": [text]})
            assert found or len(text) > HUGE

            # A search text too long for the server's query tree is refused by the server.
            run = calls.run_refusable if len(text) > 100_000 else calls.run
            hits = run(s, "search.issues", s.search.issues, text, limit=1000)
            assert hits is REFUSED or {hit.issue_pk for hit in hits} <= every_issue
            hits = calls.run(s, "search.issues", s.search.issues, "t", product=text, limit=1000)
            assert all(hit.product == text for hit in hits)
            assert calls.run(s, "search.issues", s.search.issues, text, limit=text) is REFUSED

            for table_name, record_id in ((text, None), (None, text), (text, text)):
                found = calls.run(
                    s, "audit.find", s.audit.find, table_name=table_name, record_id=record_id
                )
                assert (
                    found
                    == [
                        a
                        for a in audit
                        if table_name in (None, a.table_name) and record_id in (None, a.record_id)
                    ][:100]
                )
        assert (
            calls.run(s, contains_label, s.crawl_sessions.find_by_metadata, path=[], equals=1)
            is REFUSED
        )
        for text in UNSTORABLE:
            cs = s.crawl_sessions
            assert (
                calls.run(s, contains_label, cs.find_by_metadata, path=[text], equals=1) is REFUSED
            )
            assert (
                calls.run(s, contains_label, cs.find_by_metadata, path=["a"], equals=[text])
                is REFUSED
            )
            assert (
                calls.run(s, "crawl_sessions.with_metadata_key", cs.with_metadata_key, text)
                is REFUSED
            )
            assert calls.run(s, contains_label, cs.metadata_contains, {text: 1}) is REFUSED
            assert calls.run(s, "search.issues", s.search.issues, text) is REFUSED
            assert calls.run(s, "search.issues", s.search.issues, "t", product=text) is REFUSED
            assert calls.run(s, "audit.find", s.audit.find, table_name=text) is REFUSED


def read_and_write_by_key(env: Env, calls: Calls) -> None:
    """Key and natural-key arguments. Natural keys (text) are data; a hostile string
    where a number, date or UUID is expected is refused, before SQL where the method
    checks it, else by the server (one statement, the intended one, bad data)."""
    alice = env.people.alice
    day = date(2026, 1, 1)
    with env.db.session(user_id=alice) as s:
        every_user = {u.username: u for u in calls.run(s, "users.find", s.users.find)}
        every_issue = {i.issue_id: i for i in calls.run(s, "issues.find", s.issues.find)}
        for text in [*CORPUS, *UNSTORABLE]:
            if text not in UNSTORABLE:
                found = calls.run(s, "users.get_by_username", s.users.get_by_username, text)
                assert found == every_user.get(text)
                found = calls.run(s, "issues.get_by_issue_id", s.issues.get_by_issue_id, text)
                assert found == every_issue.get(text)
                detail = calls.run(s, "issues.detail", s.issues.detail, text)
                issue = every_issue.get(text)
                assert (detail and detail.issue_pk) == (issue and issue.issue_pk)
            by_key: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
                ("users.get", s.users.get, (text,)),
                ("users.delete", s.users.delete, (text,)),
                ("users.stats", s.users.stats, (text,)),
                ("crawl_sessions.get", s.crawl_sessions.get, (text,)),
                ("crawl_sessions.get_by_uuid", s.crawl_sessions.get_by_uuid, (text,)),
                ("crawl_sessions.list_for_user", s.crawl_sessions.list_for_user, (text,)),
                ("crawl_sessions.issues", s.crawl_sessions.issues, (text,)),
                ("crawl_sessions.delete", s.crawl_sessions.delete, (text,)),
                ("issues.get", s.issues.get, (text,)),
                ("issues.sessions", s.issues.sessions, (text,)),
                ("issues.delete", s.issues.delete, (text,)),
                ("issues.set_status", s.issues.set_status, ([text], "x")),
                ("comments.get", s.comments.get, (text,)),
                ("comments.for_issue", s.comments.for_issue, (text,)),
                ("comments.delete", s.comments.delete, (text,)),
                ("history.get", s.history.get, (text,)),
                ("history.for_issue", s.history.for_issue, (text,)),
                ("history.delete", s.history.delete, (text,)),
                ("attachments.get", s.attachments.get, (text,)),
                ("attachments.for_issue", s.attachments.for_issue, (text,)),
                ("attachments.delete", s.attachments.delete, (text,)),
                ("search_queries.get", s.search_queries.get, (text,)),
                ("search_queries.delete", s.search_queries.delete, (text,)),
                ("session_errors.get", s.session_errors.get, (text,)),
                ("session_errors.for_session", s.session_errors.for_session, (text,)),
                ("session_errors.delete", s.session_errors.delete, (text,)),
                ("session_errors.delete_by_severity", s.session_errors.delete_by_severity, (text,)),
                ("session_issues.get", s.session_issues.get, (text, text)),
                ("session_issues.for_session", s.session_issues.for_session, (text,)),
                ("session_issues.unlink", s.session_issues.unlink, (text, text)),
                ("session_issues.link", s.session_issues.link, (text, text)),
                ("session_issues.link_many", s.session_issues.link_many, ([(text, text)],)),
                ("analytics.refresh", s.analytics.refresh, (text,)),
                ("analytics.daily", s.analytics.daily, (text, day, day)),
                ("analytics.daily", s.analytics.daily, (alice, text, text)),
                ("analytics.monthly", s.analytics.monthly, (alice, text, day)),
            ]
            for label, call, args in by_key:
                refused = calls.run_refusable(s, label, call, *args)
                assert refused is REFUSED, (label, short(text))


# --- the test ------------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_input_through_every_surface_is_data_or_refused_and_nothing_else_runs(
    env: Env, report_figure: ReportFigure
) -> None:
    assert len(CORPUS) >= 50 and len(set(CORPUS)) == len(CORPUS)
    assert max(map(len, CORPUS)) >= 1 << 20
    calls = Calls()
    schema_before = snapshot(env.admin_url).schema

    created = write_every_field(env, calls)
    write_in_bulk_and_update(env, calls)
    writes = calls.outcomes.copy()

    before = state(env.admin_url)
    read_every_filter(env, calls)
    read_json_search_and_audit(env, calls)
    read_and_write_by_key(env, calls)
    after = state(env.admin_url)

    named, control, other = env.statements.counts()
    context = named.pop("context.set_current_user", 0)
    named.pop("session.statement_timeout", None)

    # Nothing but the intended statements ran, each as often as the calls meant.
    assert other == Counter()
    assert named == calls.intended
    # Transaction control only (not compared by count: pg_stat_statements stops counting
    # BEGIN and COMMIT once psycopg has prepared them, after five uses).
    assert set(control) <= {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
    assert context > 0
    # The reads and refusals changed nothing; the writes changed no schema.
    assert after[0].schema == before[0].schema == schema_before
    assert after[0].rows == before[0].rows
    assert after[1] == before[1]

    reads = calls.outcomes - writes
    report_figure(
        "hostile input: strings in the corpus (+ text PostgreSQL cannot store)",
        f"{len(CORPUS)} (+{len(UNSTORABLE)})",
    )
    report_figure("hostile input: calls made", sum(calls.outcomes.values()))
    report_figure("hostile input: rows written verbatim through New… fields", sum(created.values()))
    report_figure(
        "hostile input: calls that worked as plain data", calls.outcomes["worked as data"]
    )
    report_figure(
        "hostile input: calls refused with InvalidInput before SQL",
        calls.outcomes["refused before SQL"],
    )
    searches = calls.refused_by_server.pop("search.issues", 0)
    report_figure(
        "hostile input: refused by the server: key arguments not checked in Python",
        sum(calls.refused_by_server.values()),
    )
    report_figure("hostile input: refused by the server: search text over its limits", searches)
    report_figure(
        "hostile input: methods passing key arguments unchecked", len(calls.refused_by_server)
    )
    report_figure("hostile input: statements run on the server (named)", sum(named.values()))
    report_figure("hostile input: statements other than the intended ones", sum(other.values()))
    report_figure(
        "hostile input: tables whose rows or checksum changed (reads)",
        sum(
            before[1][t] != after[1][t] or before[0].rows[t] != after[0].rows[t] for t in before[1]
        ),
    )
    assert reads["worked as data"] > 10_000 and reads["refused before SQL"] > 10_000


# --- 6. least privilege ----------------------------------------------------------------------

_CODE_KINDS = (Kind.TEXT, Kind.CAST, Kind.PARAM, Kind.SLOT)
_VERBS = [
    (re.compile(r"\bINSERT\s+INTO\s+ims\.(\w+)", re.IGNORECASE), "INSERT"),
    (re.compile(r"\bUPDATE\s+ims\.(\w+)", re.IGNORECASE), "UPDATE"),
    (re.compile(r"\bDELETE\s+FROM\s+ims\.(\w+)", re.IGNORECASE), "DELETE"),
    (re.compile(r"\b(?:FROM|JOIN)\s+ims\.(\w+)", re.IGNORECASE), "SELECT"),
    # SELECT … FOR UPDATE locks rows, which needs UPDATE (0011's refresh of the rank
    # bounds takes its stale rows so); within one statement: no ';'
    (
        re.compile(r"\bFROM\s+ims\.(\w+)[^;]*?\bFOR\s+UPDATE\b", re.IGNORECASE),
        "UPDATE",
    ),
    # INSERT … ON CONFLICT DO UPDATE needs UPDATE too (within one statement: no ';')
    (
        re.compile(
            r"\bINSERT\s+INTO\s+ims\.(\w+)[^;]*?\bON\s+CONFLICT\b[^;]*?\bDO\s+UPDATE", re.IGNORECASE
        ),
        "UPDATE",
    ),
]
_CALL = re.compile(r"\bims\.(\w+)\s*\(")
_TEMP_TABLE = re.compile(r"\bCREATE\s+TEMP(?:ORARY)?\s+TABLE\b", re.IGNORECASE)

Privilege = tuple[str, str, str]  # (kind, object, privilege)

# Granted, and not needed by any statement; listed here so that anything *else* fails.
TOLERATED: dict[Privilege, str] = {
    ("schema", "public", "USAGE"): "PostgreSQL's default for PUBLIC; nothing there is readable",
    ("function", "ims.set_current_user", "EXECUTE"): "the manual context of SPEC §4: "
    "s.execute('SELECT ims.set_current_user(...)'); sessions inline its set_config",
}


def code_of(text: str) -> str:
    """SQL without its comments and literals (names in them are not uses)."""
    return " ".join(t.text for t in tokenize(text) if t.kind in _CODE_KINDS)


def needed_privileges(conn: psycopg.Connection[Any]) -> set[Privilege]:
    """What the runtime role needs: derived from every named statement the package ships,
    the policies that apply to it and the bodies of the SECURITY INVOKER functions these
    call (a definer function runs with its owner's rights, a trigger needs none)."""
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'ims'::regnamespace AND relkind IN ('r', 'v')"
        )
    }
    functions = {
        name: (source, definer)
        for name, source, definer in conn.execute(
            """
            SELECT p.proname, p.prosrc, p.prosecdef
            FROM pg_proc AS p
            WHERE p.pronamespace = 'ims'::regnamespace
              AND NOT EXISTS (
                  SELECT FROM pg_depend AS d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
              )
            """
        )
    }
    policies = [
        expression
        for (expression,) in conn.execute(
            """
            SELECT concat_ws(' ', pg_get_expr(p.polqual, p.polrelid),
                             pg_get_expr(p.polwithcheck, p.polrelid))
            FROM pg_policy AS p
            WHERE 'ims_app'::regrole = ANY (p.polroles) OR 0::oid = ANY (p.polroles)
            """
        )
    ]
    needs: set[Privilege] = {("database", "", "CONNECT"), ("schema", "ims", "USAGE")}
    pending = [
        code_of(st.sql) for file in loader.packaged_files() for st in file.statements.values()
    ]
    pending += [code_of(expression) for expression in policies]
    called: set[str] = set()
    while pending:
        code = pending.pop()
        for pattern, privilege in _VERBS:
            for match in pattern.finditer(code):
                if match.group(1) in tables:
                    needs.add(("table", f"ims.{match.group(1)}", privilege))
        if _TEMP_TABLE.search(code):
            needs.add(("database", "", "TEMPORARY"))
        for match in _CALL.finditer(code):
            name = match.group(1)
            if name in functions and name not in called:
                called.add(name)
                needs.add(("function", f"ims.{name}", "EXECUTE"))
                source, definer = functions[name]
                if not definer:
                    pending.append(code_of(source))
    return needs


GRANTED = """
SELECT 'table', n.nspname || '.' || c.relname, p.privilege
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'),
                   ('REFERENCES'), ('TRIGGER')) AS p (privilege)
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND (has_table_privilege(%(login)s, c.oid, p.privilege)
       OR (p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
           AND has_any_column_privilege(%(login)s, c.oid, p.privilege)))
UNION ALL
SELECT 'sequence', n.nspname || '.' || c.relname, p.privilege
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN (VALUES ('USAGE'), ('SELECT'), ('UPDATE')) AS p (privilege)
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND has_sequence_privilege(%(login)s, c.oid, p.privilege)
UNION ALL
SELECT 'function', n.nspname || '.' || p.proname, 'EXECUTE'
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (
      SELECT FROM pg_depend AS d
      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  )
  AND has_function_privilege(%(login)s, p.oid, 'EXECUTE')
UNION ALL
SELECT 'schema', n.nspname, p.privilege
FROM pg_namespace AS n
CROSS JOIN (VALUES ('USAGE'), ('CREATE')) AS p (privilege)
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND has_schema_privilege(%(login)s, n.oid, p.privilege)
UNION ALL
SELECT 'database', '', p.privilege
FROM (VALUES ('CREATE'), ('CONNECT'), ('TEMPORARY')) AS p (privilege)
WHERE has_database_privilege(%(login)s, current_database(), p.privilege)
UNION ALL
SELECT 'role attribute', a.attribute, ''
FROM pg_roles AS r
CROSS JOIN LATERAL (VALUES ('SUPERUSER', r.rolsuper), ('CREATEROLE', r.rolcreaterole),
                           ('CREATEDB', r.rolcreatedb), ('REPLICATION', r.rolreplication),
                           ('BYPASSRLS', r.rolbypassrls)) AS a (attribute, held)
WHERE r.rolname = %(login)s AND a.held
UNION ALL
SELECT 'member of', r.rolname, ''
FROM pg_roles AS r
WHERE r.rolname <> %(login)s AND pg_has_role(%(login)s, r.oid, 'MEMBER')
UNION ALL
SELECT 'owner of', o.what, ''
FROM (
    SELECT 'relation ' || oid::regclass::text AS what, relowner AS owner FROM pg_class
    UNION ALL SELECT 'schema ' || nspname, nspowner FROM pg_namespace
    UNION ALL SELECT 'function ' || oid::regprocedure::text, proowner FROM pg_proc
    UNION ALL SELECT 'database ' || datname, datdba FROM pg_database
) AS o
WHERE pg_has_role(%(login)s, o.owner, 'MEMBER')
"""

# Tried as the runtime login; every one must be refused (SQLSTATE 42501). ALTER SYSTEM is
# not among them: it cannot even run in a session, which is always in a transaction.
FORBIDDEN = [
    # DDL
    "CREATE TABLE ims.intruder (a int)",
    "CREATE TABLE public.intruder (a int)",
    "CREATE SCHEMA intruder",
    "CREATE VIEW ims.intruder AS SELECT 1 AS a",
    "CREATE FUNCTION ims.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE INDEX intruder ON ims.issues (title)",
    "ALTER TABLE ims.issues ADD COLUMN intruder int",
    "ALTER TABLE ims.crawl_sessions DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE ims.crawl_sessions NO FORCE ROW LEVEL SECURITY",
    "CREATE POLICY intruder ON ims.crawl_sessions USING (true)",
    "DROP POLICY crawl_sessions_app_own_rows ON ims.crawl_sessions",
    "DROP TABLE ims.audit_log",
    "DROP FUNCTION ims.set_current_user(bigint)",
    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
    # writing the audit trail directly
    "INSERT INTO ims.audit_log (action, table_name, record_id) VALUES ('DELETE', 'users', '1')",
    "UPDATE ims.audit_log SET action = 'UPDATE'",
    "DELETE FROM ims.audit_log",
    "SELECT ims.audit_changes()",
    # other schemas, the catalog's secrets, the server's files and programs
    "SELECT secret FROM other.secret",
    "SELECT secret FROM public.secret",
    "SELECT rolpassword FROM pg_catalog.pg_authid",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "COPY ims.users TO PROGRAM 'id'",
    "COPY ims.users FROM '/etc/passwd'",
    "LOAD 'pg_stat_statements'",
    # becoming someone else
    "SET ROLE ims_owner",
    "SET SESSION AUTHORIZATION ims_owner",
    "GRANT ims_owner TO CURRENT_USER",
    "ALTER ROLE CURRENT_USER BYPASSRLS",
    "ALTER ROLE ims_app SUPERUSER",
    "SET log_statement = 'none'",  # a superuser-only setting
]


def test_the_runtime_role_holds_exactly_what_the_statements_need(
    ims_db: Database, ims_admin_url: str, report_figure: ReportFigure
) -> None:
    with psycopg.connect(ims_admin_url, autocommit=True) as admin:
        # Something to be refused in another schema, and in public.
        admin.execute("CREATE SCHEMA other")
        admin.execute("CREATE TABLE other.secret AS SELECT 'other' AS secret")
        admin.execute("CREATE TABLE public.secret AS SELECT 'public' AS secret")
        needed = needed_privileges(admin)
        granted = {
            (kind, name, privilege)
            for kind, name, privilege in admin.execute(GRANTED, {"login": RUNTIME_LOGIN})
        }
        role_updatable = admin.execute(
            "SELECT has_column_privilege(%s, 'ims.users', 'role', 'UPDATE')", [RUNTIME_LOGIN]
        ).fetchone()
        [audit_rows] = admin.execute("SELECT count(*) FROM ims.audit_log").fetchone() or [None]

    memberships = {p for p in granted if p[0] == "member of"}
    extra = granted - needed - set(TOLERATED) - {("member of", "ims_app", "")}
    missing = needed - granted
    assert memberships == {("member of", "ims_app", "")}
    assert extra == set(), "privileges no statement needs"
    assert missing == set(), "statements that would fail for lack of a privilege"
    assert set(TOLERATED) <= granted, "a tolerated grant is gone: drop it from TOLERATED"
    assert role_updatable == (False,)
    assert ("table", "ims.audit_log", "SELECT") in needed  # the derivation does see the SQL
    assert ("function", "ims.rls_min_user_id", "EXECUTE") in needed  # …and the policies

    refused = 0
    schema = snapshot(ims_admin_url).schema
    with ims_db.session() as s:
        # Granting what it does not own only warns ("no privileges were granted").
        s.execute("GRANT SELECT, TRUNCATE ON ims.crawl_sessions, ims.audit_log TO PUBLIC")
        for statement in FORBIDDEN:
            with pytest.raises(PermissionDenied), s.savepoint():
                s.execute(statement)
            refused += 1
        for table in sorted({name for kind, name, _ in needed if kind == "table"}):
            kind = "SELECT relkind FROM pg_class WHERE oid = %(t)s::regclass"
            if s.execute(kind, {"t": table}) == [{"relkind": "v"}]:
                continue  # a view cannot be truncated at all
            with pytest.raises(PermissionDenied), s.savepoint():
                s.execute(f"TRUNCATE {table}")
            refused += 1
    with psycopg.connect(ims_admin_url) as admin:
        assert admin.execute("SELECT count(*) FROM ims.audit_log").fetchone() == (audit_rows,)
    assert snapshot(ims_admin_url).schema == schema  # tables, grants, policies, functions

    report_figure("least privilege: privileges the runtime login holds", len(granted))
    report_figure(
        "least privilege: privileges no statement needs (beyond the tolerated)", len(extra)
    )
    report_figure("least privilege: privileges statements need but lack", len(missing))
    report_figure("least privilege: DDL, TRUNCATE, audit writes, other schemas… refused", refused)
