"""docs/GUIDE.md is a checked reference card, not prose that drifts from the code.

- Every ```python block runs, each against its own fresh database holding a small
  demo-like data set (``load_guide_data``), and fails the test if it raises. ``db`` is
  bound to the runtime-login ``Database``; a block that does not open its own session
  (no ``as s:``) runs inside ``with db.session(user_id=2) as s:`` (user 2 is
  ``yijae.shin``). Functions named ``test_*`` that a block defines are then called with
  the plugin fixtures they name, as pytest would.
- A block that says ``await`` or ``async`` is asyncio code: it is compiled with top-level
  ``await`` allowed and run inside ``asyncio.run``, with ``db`` an ``AsyncDatabase`` on
  the same login and, for a block without ``as s:``, inside
  ``async with db.session(user_id=2) as s:``. Its ``async def test_*`` functions are
  awaited.
- Every ```sql block starts with ``-- <file>.sql: <name>`` (or ``-- <path>.sql`` for a
  whole file) and its text, with ``…`` marking elisions, must appear in that named
  statement in that order: the quotes stay true to the files.
- Every ``s.<repository>.<method>(`` and ``s.<method>(`` the guide mentions exists.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, get_type_hints
from uuid import UUID

import pytest

import ims_repo.db._async.database
from ims_repo import (
    AsyncDatabase,
    AsyncSession,
    Database,
    NewAttachment,
    NewCrawlSession,
    NewIssue,
    NewIssueComment,
    NewIssueHistory,
    NewSearchQuery,
    NewUser,
    QueryFile,
    Session,
)
from ims_repo.services.migrations import set_role

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "GUIDE.md"
QUERIES = ROOT / "ims_repo" / "queries"

#: The crawl session of user 2 that is still running (the guide's "update status" pattern).
RUNNING_UUID = UUID("3f6b2a9c-1d4e-4c5f-9a7b-0c1d2e3f4a5b")
STARTED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
#: issue_id, title, product, status, priority, severity
ISSUES = [
    ("SAMPLE-001", "Connection timeout on login", "OpenFrame", "Open", "High", "Critical"),
    ("SAMPLE-002", "Batch job hangs after restart", "OpenFrame", "New", "Low", "Minor"),
    ("SAMPLE-003", "Timeout in transaction monitor", "OpenFrame", "In Progress", "High", "Major"),
    ("SAMPLE-004", "Memory leak in gateway", "ProObject", "New", "Medium", "Critical"),
    ("SAMPLE-005", "Typo in admin console", "Tmax", "Closed", "Low", "Trivial"),
]


# --- the guide's blocks --------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # line in GUIDE.md of the block's first line of code
    text: str


def guide_blocks(lang: str) -> list[Block]:
    """The fenced blocks of ``lang`` in GUIDE.md, in order."""
    found: list[Block] = []
    fence: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(GUIDE.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None:
            if line.startswith("```"):
                fence, start, body = line[3:].strip(), number + 1, []
        elif line.startswith("```"):
            if fence == lang:
                found.append(Block(lang, start, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"docs/GUIDE.md: a ```{fence} block is never closed"
    return found


PYTHON = guide_blocks("python")
SQL = guide_blocks("sql")
_ASYNC = re.compile(r"\b(?:await|async)\b")


def is_async(block: Block) -> bool:
    """Whether a python block is asyncio code (run in ``asyncio.run``, ``db`` async)."""
    return _ASYNC.search(block.text) is not None


def test_the_guide_has_its_blocks() -> None:
    """A parsing slip must not turn the checks below into no checks at all."""
    assert len(PYTHON) >= 18
    assert len([block for block in PYTHON if is_async(block)]) >= 9
    assert len(SQL) >= 12


# --- the data set the snippets assume ------------------------------------------------------


@dataclass(frozen=True)
class GuideData:
    admin: int
    yijae: int
    john: int
    sample_pk: int


def load_guide_data(db: Database, owner_url: str) -> GuideData:
    """Users admin (1), yijae.shin (2) and john.doe (3); five issues, SAMPLE-001 with
    comments, history and an attachment; yijae's three crawl sessions (one completed
    with metadata, one failed, one running) and john's one; links, errors and searches.
    """
    with db.session() as s:
        admin, yijae, john = (
            s.users.create(new)
            for new in (
                NewUser(username="admin", email="admin@company.com", full_name="IMS Admin"),
                NewUser(
                    username="yijae.shin",
                    email="yijae.shin@company.com",
                    full_name="Yijae Shin",
                    department="Engineering",
                    preferences={"theme": "light"},
                ),
                NewUser(username="john.doe", email="john.doe@company.com", full_name="John Doe"),
            )
        )
        issues = [
            s.issues.create(
                NewIssue(
                    issue_id=issue_id,
                    title=title,
                    product=product,
                    status=status,
                    priority=priority,
                    severity=severity,
                    description=f"{title} (reported by QA)",
                )
            )
            for issue_id, title, product, status, priority, severity in ISSUES
        ]
        sample = issues[0]
        s.comments.add_many(
            sample.issue_pk,
            [
                NewIssueComment(
                    author="qa.kim",
                    content="Reproduced on 7.1 with 30s.",
                    comment_order=1,
                    commented_at=STARTED,
                ),
                NewIssueComment(
                    author="dev.lee",
                    content="Fixed in the next patch.",
                    comment_order=2,
                    commented_at=STARTED.replace(hour=10),
                ),
            ],
        )
        s.history.add_many(
            sample.issue_pk,
            [
                NewIssueHistory(
                    field_name="status",
                    old_value="New",
                    new_value="Open",
                    changed_by="qa.kim",
                    changed_at=STARTED,
                ),
                NewIssueHistory(
                    field_name="priority",
                    old_value="Medium",
                    new_value="High",
                    changed_by="dev.lee",
                    changed_at=STARTED.replace(hour=11),
                ),
            ],
        )
        s.attachments.create(
            NewAttachment(
                issue_pk=sample.issue_pk,
                filename="timeout.log",
                file_type="log",
                file_size=2048,
                storage_path="/data/attachments/timeout.log",
            )
        )
    set_role(owner_url, "admin", "admin")

    with db.session(user_id=yijae.user_id) as s:
        done, _failed, _running = (
            s.crawl_sessions.create(new)
            for new in (
                NewCrawlSession(
                    user_id=yijae.user_id,
                    product="OpenFrame",
                    original_query="connection timeout",
                    parsed_query="+connection +timeout",
                    query_language="en",
                    max_results=100,
                    status="completed",
                    started_at=STARTED,
                    completed_at=STARTED.replace(minute=2),
                    duration_seconds=120,
                    total_issues=2,
                    data_path="/data/crawls/openframe-timeout",
                    session_metadata={
                        "crawler_version": "1.0.0",
                        "nl_parsing": {"method": "rule_based", "confidence": 0.9},
                    },
                ),
                NewCrawlSession(
                    user_id=yijae.user_id,
                    product="ProObject",
                    original_query="memory leak",
                    status="failed",
                    started_at=STARTED.replace(hour=12),
                    duration_seconds=30,
                    session_metadata={"crawler_version": "1.1.0"},
                ),
                NewCrawlSession(
                    session_uuid=RUNNING_UUID,
                    user_id=yijae.user_id,
                    product="OpenFrame",
                    original_query="batch hang",
                    status="running",
                    started_at=datetime.now(UTC).replace(microsecond=0),
                ),
            )
        )
        s.session_issues.link_many(
            [
                (done.session_id, issues[0].issue_pk, 1, 850),
                (done.session_id, issues[2].issue_pk, 2, 640),
            ]
        )
        for severity, message in (("info", "retrying page 2"), ("error", "HTTP 503 on page 3")):
            s.session_errors.create(
                {
                    "session_id": done.session_id,
                    "user_id": yijae.user_id,
                    "severity": severity,
                    "error_type": "http",
                    "error_message": message,
                }
            )
        for text in ("connection timeout", "memory leak"):
            s.search_queries.log(NewSearchQuery(user_id=yijae.user_id, query_text=text))

    with db.session(user_id=john.user_id) as s:
        theirs = s.crawl_sessions.create(
            NewCrawlSession(
                user_id=john.user_id,
                product="OpenFrame",
                original_query="timeout",
                status="completed",
                duration_seconds=300,
            )
        )
        s.session_issues.link(theirs.session_id, sample.issue_pk, crawl_order=1)

    ids = (admin.user_id, yijae.user_id, john.user_id)
    assert ids == (1, 2, 3), f"the guide assumes users 1, 2, 3; got {ids}"
    return GuideData(admin.user_id, yijae.user_id, john.user_id, sample.issue_pk)


def test_the_data_set_is_what_the_guide_says(ims_db: Database, ims_admin_url: str) -> None:
    data = load_guide_data(ims_db, ims_admin_url)
    with ims_db.session(user_id=data.yijae) as s:
        detail = s.issues.detail("SAMPLE-001")
        assert detail is not None and detail.issue_pk == data.sample_pk == 1
        assert (len(detail.comments), len(detail.history), len(detail.attachments)) == (2, 2, 1)
        assert [c.status for c in s.crawl_sessions.list_for_user(2)] == [
            "completed",
            "failed",
            "running",
        ]
        assert s.crawl_sessions.get_by_uuid(RUNNING_UUID) is not None
        assert s.crawl_sessions.list_for_user(data.john) == []  # RLS: not yijae's
    with ims_db.session(user_id=data.admin) as s:
        assert len(s.crawl_sessions.find()) == 4


# --- running the python blocks ---------------------------------------------------------------


@pytest.fixture
def guide_env(
    ims_db: Database, ims_admin_url: str, ims_app_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The data set, ``IMS_DATABASE_URL`` for ``Database.from_env``/``get_session``, and
    the fixtures a block's ``test_*`` functions may ask for."""
    load_guide_data(ims_db, ims_admin_url)
    monkeypatch.setenv("IMS_DATABASE_URL", ims_app_url)
    monkeypatch.setattr(ims_repo.db.default, "_default", None)
    fixtures: dict[str, Any] = {
        "ims_db": ims_db,
        "ims_session": ims_db.session,
        "ims_admin_url": ims_admin_url,
        "ims_app_url": ims_app_url,
    }
    try:
        yield fixtures
    finally:
        default = ims_repo.db.default._default
        if default is not None:
            default.close()


def run_block(block: Block, db: Database, fixtures: dict[str, Any]) -> None:
    if is_async(block):
        asyncio.run(run_async_block(block, fixtures))
        return
    # Padding puts tracebacks on the block's own lines of docs/GUIDE.md.
    code = compile("\n" * (block.line - 1) + block.text, str(GUIDE), "exec")
    namespace: dict[str, Any] = {"__name__": "guide_snippet", "db": db}
    if "as s:" in block.text:
        exec(code, namespace)
    else:
        with db.session(user_id=2) as s:
            namespace["s"] = s
            exec(code, namespace)
    tests: list[Callable[..., Any]] = [
        value
        for name, value in namespace.items()
        if name.startswith("test_") and inspect.isfunction(value)
    ]
    for test in tests:
        wanted = inspect.signature(test).parameters
        test(**{name: fixtures[name] for name in wanted})


async def run_async_block(block: Block, fixtures: dict[str, Any]) -> None:
    """An asyncio block: top-level ``await`` allowed, ``db`` an ``AsyncDatabase``."""
    code = compile(
        "\n" * (block.line - 1) + block.text,
        str(GUIDE),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    async with AsyncDatabase(fixtures["ims_app_url"], min_size=1, max_size=4) as db:
        namespace: dict[str, Any] = {"__name__": "guide_snippet", "db": db}
        if "as s:" in block.text:
            await _run_code(code, namespace)
        else:
            async with db.session(user_id=2) as s:
                namespace["s"] = s
                await _run_code(code, namespace)
        tests: list[Callable[..., Any]] = [
            value
            for name, value in namespace.items()
            if name.startswith("test_") and inspect.isfunction(value)
        ]
        for test in tests:
            wanted = inspect.signature(test).parameters
            result = test(**{name: fixtures[name] for name in wanted})
            if inspect.isawaitable(result):
                await result


async def _run_code(code: Any, namespace: dict[str, Any]) -> None:
    """Run a module-level code object; with top-level ``await`` it is a coroutine."""
    result = eval(code, namespace)
    if inspect.isawaitable(result):
        await result


@pytest.mark.parametrize("block", PYTHON, ids=[f"GUIDE.md:{b.line}" for b in PYTHON])
def test_python_block_runs(block: Block, ims_db: Database, guide_env: dict[str, Any]) -> None:
    run_block(block, ims_db, guide_env)


def test_a_failing_block_fails(ims_db: Database, guide_env: dict[str, Any]) -> None:
    """The runner reports a snippet that raises (and a test_* function that fails)."""
    with pytest.raises(AssertionError):
        run_block(
            Block("python", 1, "assert s.users.get(2).username == 'nobody'\n"), ims_db, guide_env
        )
    with pytest.raises(AssertionError):
        run_block(Block("python", 1, "def test_x(ims_db):\n    assert False\n"), ims_db, guide_env)


def test_a_failing_async_block_fails(ims_db: Database, guide_env: dict[str, Any]) -> None:
    """An asyncio block runs for real: a failing assertion after an ``await`` and a
    failing ``async def test_*`` both fail the test."""
    with pytest.raises(AssertionError):
        run_block(
            Block("python", 1, "assert (await s.users.get(2)).username == 'nobody'\n"),
            ims_db,
            guide_env,
        )
    with pytest.raises(AssertionError):
        run_block(
            Block("python", 1, "async def test_x(ims_app_url):\n    assert False\n"),
            ims_db,
            guide_env,
        )


# --- the SQL quotes ----------------------------------------------------------------------------

_SOURCE = re.compile(r"^-- (?P<path>[\w./]+\.sql)(?:: (?P<name>[a-z_][a-z0-9_]*))?$", re.M)


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def quotes(block: Block) -> list[tuple[str, str, str]]:
    """Each quote of a sql block: where it says it comes from (``file: name``), that
    statement's text (or the whole file's, for a header without a name), and the quote.

    A block holds one or more quotes, each after its own ``-- file.sql: name`` line.
    """
    headers = list(_SOURCE.finditer(block.text))
    assert headers and headers[0].start() == 0, (
        f"GUIDE.md:{block.line}: a sql block starts with '-- file.sql: name'"
    )
    found = []
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        path, name = header["path"], header["name"]
        file = ROOT / path if "/" in path else QUERIES / path
        assert file.is_file(), f"GUIDE.md:{block.line}: no file {path}"
        if name is None:
            where, source = path, file.read_text(encoding="utf-8")
        else:
            statements = QueryFile(file).statements
            assert name in statements, f"GUIDE.md:{block.line}: {path} has no {name}"
            where, source = f"{path}: {name}", statements[name].sql
        end = following.start() if following else len(block.text)
        found.append((where, source, block.text[header.end() : end]))
    return found


@pytest.mark.parametrize("block", SQL, ids=[f"GUIDE.md:{b.line}" for b in SQL])
def test_sql_quote_is_in_the_named_statement(block: Block) -> None:
    for where, source, quote in quotes(block):
        text = _squeeze(source)
        position = 0
        chunks = [_squeeze(part) for part in quote.split("…")]
        assert any(chunks), f"GUIDE.md:{block.line}: empty quote of {where}"
        for chunk in filter(None, chunks):
            found = text.find(chunk, position)
            assert found >= 0, f"GUIDE.md:{block.line}: not in {where} (in this order): {chunk!r}"
            position = found + len(chunk)


def test_sql_quote_check_can_fail() -> None:
    wrong_order = "-- users.sql: get\nWHERE user_id = :user_id;\n…\nFROM ims.users\n"
    wrong_statement = "-- users.sql: get\nSELECT user_id\n-- users.sql: find\nWHERE username\n"
    for text in (wrong_order, wrong_statement):
        with pytest.raises(AssertionError):
            test_sql_quote_is_in_the_named_statement(Block("sql", 2, text))


# --- the method names ----------------------------------------------------------------------------


def _repositories(session: type = Session) -> dict[str, type]:
    found = {}
    for name, value in vars(session).items():
        if isinstance(value, cached_property):
            found[name] = get_type_hints(value.func)["return"]
    return found


def test_every_method_the_guide_names_exists() -> None:
    """``s.<repository>.<method>`` and ``s.<name>``, in code and in prose alike (not in
    the SQL quotes, where ``s`` may be a table alias)."""
    text = GUIDE.read_text(encoding="utf-8")
    for block in SQL:
        text = text.replace(block.text, "")
    repositories = _repositories()
    assert len(repositories) == 12
    session_names = set(dir(Session)) | {"statements_sent"}  # the one instance attribute
    methods = set(re.findall(r"\bs\.(\w+)\.(\w+)\b", text))
    names = set(re.findall(r"\bs\.(\w+)\b", text))
    assert len(methods) >= 30 and len(names) >= 12
    missing = [
        f"s.{repo}.{method}"
        for repo, method in sorted(methods)
        if repo not in repositories or not hasattr(repositories[repo], method)
    ]
    missing += [f"s.{name}" for name in sorted(names) if name not in session_names]
    assert missing == []
    # The asyncio blocks use the same names on AsyncSession: every one exists there too.
    async_repositories = _repositories(AsyncSession)
    assert set(async_repositories) == set(repositories)
    missing = [
        f"AsyncSession: s.{repo}.{method}"
        for repo, method in sorted(methods)
        if not hasattr(async_repositories[repo], method)
    ]
    missing += [
        f"AsyncSession: s.{name}"
        for name in sorted(names)
        if name not in set(dir(AsyncSession)) | {"statements_sent"}
    ]
    assert missing == []
