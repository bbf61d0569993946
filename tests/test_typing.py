"""The types a caller's editor and mypy see, sync and async (psycopg's test_typing way):
snippets are checked by ``mypy --strict`` through its API and their ``reveal_type``
notes compared with the expected types. A regression (a method losing its return type,
an async method that is not awaitable, a context manager yielding ``Any``) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

SYNC = """
from ims_repo import Database, NewIssue

def use(db: Database) -> None:
    with db.session(user_id=2) as s:
        reveal_type(s)
        reveal_type(s.issues.get(1))
        reveal_type(s.issues.find(limit=5))
        reveal_type(s.users.get_by_username("kim"))
        reveal_type(s.issues.upsert_many([NewIssue(issue_id="A", title="t", product="P")]))
        reveal_type(s.execute("SELECT 1"))
    reveal_type(db.session())
    reveal_type(db.upsert_issues([], connections=2))
"""

ASYNC = """
from collections.abc import AsyncIterator
from ims_repo import AsyncDatabase, NewIssue

async def crawl() -> AsyncIterator[NewIssue]:
    yield NewIssue(issue_id="A", title="t", product="P")

async def use(db: AsyncDatabase) -> None:
    async with db.session(user_id=2) as s:
        reveal_type(s)
        pending = s.issues.get(1)
        reveal_type(pending)  # type: ignore[unused-coroutine]  # (reveal_type returns it)
        reveal_type(await pending)
        reveal_type(await s.issues.find(limit=5))
        reveal_type(await s.users.get_by_username("kim"))
        reveal_type(await s.issues.upsert_many(crawl()))
        reveal_type(await s.execute("SELECT 1"))
    reveal_type(db.session())
    reveal_type(await db.upsert_issues(crawl(), connections=2))
    async with AsyncDatabase.from_env() as opened:
        reveal_type(opened)
"""

MISUSE = """
from ims_repo import AsyncDatabase, Issue

async def use(db: AsyncDatabase) -> None:
    async with db.session() as s:
        issue: Issue | None = s.issues.get(1)  # not awaited
    with db.session() as t:  # not `async with`
        pass
"""

EXPECTED_SYNC = [
    "ims_repo.db._sync.session.Session",
    "ims_repo.core.records.issues.Issue | None",
    "list[ims_repo.core.records.issues.Issue]",
    "ims_repo.core.records.users.User | None",
    "ims_repo.core.records.issues.UpsertResult",
    "list[dict[str, Any]]",
    "contextlib._GeneratorContextManager[ims_repo.db._sync.session.Session, None, None]",
    "ims_repo.core.records.issues.UpsertResult",
]

EXPECTED_ASYNC = [
    "ims_repo.db._async.session.AsyncSession",
    "typing.Coroutine[Any, Any, ims_repo.core.records.issues.Issue | None]",
    "ims_repo.core.records.issues.Issue | None",
    "list[ims_repo.core.records.issues.Issue]",
    "ims_repo.core.records.users.User | None",
    "ims_repo.core.records.issues.UpsertResult",
    "list[dict[str, Any]]",
    "contextlib._AsyncGeneratorContextManager[ims_repo.db._async.session.AsyncSession, None]",
    "ims_repo.core.records.issues.UpsertResult",
    "ims_repo.db._async.database.AsyncDatabase",
]

_NOTE = re.compile(r"^(?P<file>[^:]+):\d+: (?P<kind>note|error): (?P<text>.*)$")
_REVEALED = re.compile(r'^Revealed type is "(?P<type>.*)"$')


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[str], list[str]]]:
    """``mypy --strict`` once over the three snippets (most of its time goes to reading
    ims_repo): per snippet, the revealed types and the error messages."""
    folder = tmp_path_factory.mktemp("typing")
    snippets = {"sync": SYNC, "async": ASYNC, "misuse": MISUSE}
    for name, source in snippets.items():
        (folder / f"{name}.py").write_text(source)
    stdout, stderr, _ = api.run(
        [
            "--strict",
            "--cache-dir",
            str(folder / ".mypy_cache"),
            "--hide-error-context",
            "--no-error-summary",
            *(str(folder / f"{name}.py") for name in snippets),
        ]
    )
    assert stderr == ""
    found: dict[str, tuple[list[str], list[str]]] = {name: ([], []) for name in snippets}
    for line in stdout.splitlines():
        match = _NOTE.match(line)
        assert match, line
        revealed, errors = found[Path(match.group("file")).stem]
        if match.group("kind") == "error":
            errors.append(match.group("text"))
        elif reveal := _REVEALED.match(match.group("text")):
            # mypy 1 writes builtins.list[…] where mypy 2 writes list[…]
            revealed.append(reveal.group("type").replace("builtins.", ""))
    return found


@pytest.mark.slow
def test_the_sync_session_is_typed(checked: dict[str, tuple[list[str], list[str]]]) -> None:
    assert checked["sync"] == (EXPECTED_SYNC, [])


@pytest.mark.slow
def test_the_async_session_is_typed_and_awaitable(
    checked: dict[str, tuple[list[str], list[str]]],
) -> None:
    assert checked["async"] == (EXPECTED_ASYNC, [])


@pytest.mark.slow
def test_forgetting_await_or_async_with_is_a_type_error(
    checked: dict[str, tuple[list[str], list[str]]],
) -> None:
    revealed, errors = checked["misuse"]
    assert revealed == []
    assert errors[0] == (
        'Incompatible types in assignment (expression has type "Coroutine[Any, Any, '
        'Issue | None]", variable has type "Issue | None")  [assignment]'
    )
    assert errors[1].startswith(
        '"_AsyncGeneratorContextManager[AsyncSession, None]" has no attribute "__enter__"'
    )
