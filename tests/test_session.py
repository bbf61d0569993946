"""Sessions: transactions, the RLS context on pooled connections, and the login check.

Every test here connects as the runtime login (a member of ims_app, subject to RLS),
except where it checks that a superuser login is refused.
"""

from __future__ import annotations

import contextlib
import gc
import random
import weakref
from pathlib import Path

import pytest

from ims_repo import (
    Database,
    Duplicate,
    InvalidInput,
    NewUser,
    QueryFile,
    TransactionAborted,
    UnsafeLogin,
)
from tests.seed import crawl, people

CONTEXT = "SELECT current_setting('ims.current_user_id', true) AS ctx"


def visible_owners(s: object) -> set[int]:
    rows = s.execute("SELECT DISTINCT user_id FROM ims.crawl_sessions")  # type: ignore[attr-defined]
    return {row["user_id"] for row in rows}


def test_a_user_sees_only_their_rows_no_context_sees_none_an_admin_sees_all(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.alice, 2)
    crawl(ims_db, p.bob, 3)
    with ims_db.session(user_id=p.alice) as s:
        assert visible_owners(s) == {p.alice}
        assert len(s.crawl_sessions.find()) == 2
    with ims_db.session() as s:
        assert s.crawl_sessions.find() == []
        assert s.execute("SELECT count(*) AS n FROM ims.crawl_sessions") == [{"n": 0}]
    with ims_db.session(user_id=p.admin) as s:
        assert visible_owners(s) == {p.alice, p.bob}


def test_context_holds_after_commit_and_rollback_for_the_rest_of_the_block(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        s.commit()  # nothing open yet: a no-op
        assert visible_owners(s) == {p.alice}
        s.commit()
        assert visible_owners(s) == {p.alice}
        s.rollback()
        assert s.execute(CONTEXT) == [{"ctx": str(p.alice)}]
        s.set_user(p.bob)
        assert visible_owners(s) == set()
        s.commit()
        assert s.execute(CONTEXT) == [{"ctx": str(p.bob)}]


def test_manual_context_lasts_until_the_transaction_ends(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.alice, 1)
    with ims_db.session() as s:
        s.execute("SELECT ims.set_current_user(%(u)s)", {"u": p.alice})
        assert visible_owners(s) == {p.alice}
        s.commit()
        assert visible_owners(s) == set()


def test_leaving_the_block_commits_and_an_exception_rolls_back(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.users.create(NewUser(username="kept", email="kept@example.com"))
    with pytest.raises(RuntimeError), ims_db.session() as s:
        s.users.create(NewUser(username="lost", email="lost@example.com"))
        raise RuntimeError("boom")
    with ims_db.session() as s:
        assert s.users.get_by_username("kept") is not None
        assert s.users.get_by_username("lost") is None


def test_a_failed_statement_aborts_until_rollback_and_a_savepoint_lets_the_caller_go_on(
    ims_db: Database,
) -> None:
    with ims_db.session() as s:
        s.users.create(NewUser(username="dup", email="dup@example.com"))
        try:
            with s.savepoint():
                s.users.create(NewUser(username="dup", email="other@example.com"))
        except Duplicate:
            pass
        s.users.create(NewUser(username="after", email="after@example.com"))
    with ims_db.session() as s:
        assert {u.username for u in s.users.find()} == {"dup", "after"}

    with ims_db.session() as s:
        with pytest.raises(Duplicate):
            s.users.create(NewUser(username="dup", email="x@example.com"))
        with pytest.raises(TransactionAborted, match="rollback"):
            s.users.get_by_username("dup")
        s.rollback()
        assert s.users.get_by_username("dup") is not None


def test_ending_a_block_after_a_swallowed_failure_says_nothing_was_committed(
    ims_db: Database,
) -> None:
    with (
        pytest.raises(TransactionAborted, match="nothing of it was committed"),
        ims_db.session() as s,
    ):
        s.users.create(NewUser(username="early", email="early@example.com"))
        with contextlib.suppress(Duplicate):
            s.users.create(NewUser(username="early", email="again@example.com"))
    with ims_db.session() as s:
        assert s.users.get_by_username("early") is None


def test_context_never_reaches_the_next_checkout_of_a_pooled_connection(
    ims_app_url: str, ims_db: Database, ims_admin_url: str
) -> None:
    """1,000+ checkouts of a one-connection pool, mixing commits, rollbacks, exceptions,
    failed statements and raw SQL that tries to set the context for the whole session."""
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.alice, 2)
    crawl(ims_db, p.bob, 1)
    expected = {None: set(), p.alice: {p.alice}, p.bob: {p.bob}, p.admin: {p.alice, p.bob}}
    rng = random.Random(2026)
    seen_wrong = 0
    with Database(ims_app_url, min_size=1, max_size=1) as db:
        for _ in range(1200):
            user = rng.choice(list(expected))
            action = rng.choice(["commit", "rollback", "raise", "fail", "leak", "none"])
            try:
                with db.session(user_id=user) as s:
                    if visible_owners(s) != expected[user] or s.execute(CONTEXT) != [
                        {"ctx": "" if user is None else str(user)}
                    ]:
                        seen_wrong += 1
                    if action == "commit":
                        s.commit()
                    elif action == "rollback":
                        s.rollback()
                    elif action == "leak":  # session-level, would outlive the checkout
                        s.execute(
                            "SELECT set_config('ims.current_user_id', %(u)s, false)",
                            {"u": str(p.bob)},
                        )
                    elif action == "fail":
                        s.execute("SELECT 1 / 0")
                    elif action == "raise":
                        raise KeyError("caller bug")
                    if visible_owners(s) != expected[user] and action != "leak":
                        seen_wrong += 1
            except Exception:  # the raised, failed and aborted blocks
                pass
    assert seen_wrong == 0


def test_every_statement_sent_names_itself(ims_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "probe.sql"
    path.write_text(
        "-- name: sent_text :scalar\n-- The text the server received.\nSELECT current_query();\n"
    )
    statement = QueryFile(path).statement("sent_text")
    with ims_db.session() as s:
        assert s.fetch_value(statement.bind({})).startswith("/* ims_repo probe.sent_text */")


def test_a_superuser_login_is_refused_unless_acting_as_the_runtime_role(ims_admin_url: str) -> None:
    with pytest.raises(UnsafeLogin, match="act_as='ims_app'"):
        Database(ims_admin_url)
    with Database(ims_admin_url, act_as="ims_app") as db, db.session() as s:
        assert s.execute("SELECT current_user AS role") == [{"role": "ims_app"}]
        assert s.crawl_sessions.find() == []  # RLS applies: no context, no rows
    with Database(ims_admin_url, bypass_rls=True) as db, db.session() as s:
        assert s.execute("SELECT count(*) AS n FROM ims.users") == [{"n": 0}]


def test_a_read_outside_a_transaction_ends_with_its_result(
    ims_db: Database, ims_admin_url: str
) -> None:
    """Reads skip BEGIN/COMMIT (one round trip) yet see exactly the context's rows; a
    write then opens the explicit transaction that the block commits or rolls back."""
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.alice, 2)
    crawl(ims_db, p.bob, 1)
    with ims_db.session(user_id=p.alice) as s:
        assert {c.user_id for c in s.crawl_sessions.find()} == {p.alice}
        assert len(s.crawl_sessions.list_for_user(p.bob)) == 0
        assert not s.in_transaction  # nothing to commit: the read's transaction is over
        s.users.update(p.alice, department="QA")
        assert s.in_transaction
        assert len(s.crawl_sessions.find()) == 2  # reads inside it see its writes' context
    with pytest.raises(RuntimeError), ims_db.session(user_id=p.alice) as s:
        assert len(s.crawl_sessions.find()) == 2
        s.users.update(p.alice, department="R&D")
        raise RuntimeError("rolled back")
    with ims_db.session() as s:
        assert s.users.get(p.alice).department == "QA"  # type: ignore[union-attr]
        assert s.crawl_sessions.find() == []  # no context: still nothing, also on reads


def test_a_failed_read_outside_a_transaction_leaves_the_session_usable(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.users.create(NewUser(username="kept", email="kept@example.com"))
    with ims_db.session() as s:
        with pytest.raises(InvalidInput):
            s.users.get("abc")  # type: ignore[arg-type]  # not a bigint: refused by the server
        assert s.users.get_by_username("kept") is not None


def test_a_session_is_freed_at_the_end_of_its_block_without_the_garbage_collector(
    ims_db: Database,
) -> None:
    """No reference cycle per checkout (a session and its repositories): a closed session
    goes when its last reference does, not at the collector's next full pass."""
    gc.disable()
    try:
        with ims_db.session(user_id=None) as s:
            s.users.get(1)
            s.issues.get(1)
        gone = weakref.ref(s)
        del s
        assert gone() is None
    finally:
        gc.enable()
