"""``s.issues.store_page``: the crawler's unit of work (a page of issues with their
comments, history and attachments, linked to the crawl session, the search logged), as
the runtime login (row-level security applies)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ims_repo import (
    Database,
    InvalidInput,
    NewIssue,
    NewSearchQuery,
    NotFound,
    PageIssue,
    PermissionDenied,
    StoredPage,
    TransactionConflict,
)
from ims_repo.core.staging import item_digest
from tests.seed import People, crawl, people, server_deadlocks

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SHA = "cd" * 32
STATEMENTS = 9
"""A page's statements after its lock: the stage (create, fill, write, clear), the
three lists, the links, the search; with the lock, 10."""


@pytest.fixture
def p(ims_db: Database, ims_admin_url: str) -> People:
    return people(ims_db, ims_admin_url)


def item(n: int, **fields: Any) -> dict[str, Any]:
    """Issue ``PG-n`` as a crawler hands it over: the issue's fields and its lists."""
    return {
        "issue_id": f"PG-{n:04d}",
        "title": f"Page issue {n}",
        "product": "OpenFrame",
        "description": f"description {n}",
        "issue_created_at": T0 + timedelta(hours=n),
        "comments": [
            {"author": "kim", "content": f"comment {n}.{k}", "commented_at": T0, "comment_order": k}
            for k in range(n % 3 + 1)
        ],
        "history": [{"field_name": "status", "old_value": "New", "new_value": "Open"}],
        "attachments": [{"filename": f"log_{n}.txt", "file_size": 10 * n, "checksum_sha256": SHA}],
        **fields,
    }


def search(user_id: int, session_id: int, results: int) -> NewSearchQuery:
    return NewSearchQuery(
        user_id=user_id, session_id=session_id, query_text="timeout", result_count=results
    )


def stored_lists(db: Database, issue_id: str) -> tuple[list[str], list[str], list[str]]:
    with db.session() as s:
        detail = s.issues.detail(issue_id)
    assert detail is not None
    return (
        [c.content for c in detail.comments],
        [f"{h.field_name}:{h.new_value}" for h in detail.history],
        [a.filename for a in detail.attachments],
    )


def test_a_page_is_stored_with_its_lists_links_and_search_in_a_fixed_number_of_statements(
    ims_db: Database, p: People
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    for size, first in ((3, 1), (12, 4)):
        page = [item(n) for n in range(first, first + size)]
        with ims_db.session(user_id=p.alice) as s:
            done = s.issues.store_page(
                session_id, page, first_crawl_order=first, search=search(p.alice, session_id, size)
            )
            assert s.statements_sent == 1 + STATEMENTS  # whatever the page's length
        comments = sum(len(i["comments"]) for i in page)
        assert done.model_dump(exclude={"search"}) == {
            "inserted": size,
            "updated": 0,
            "unchanged": 0,
            "comments_added": comments,
            "comments_removed": 0,
            "history_added": size,
            "history_removed": 0,
            "attachments_added": size,
            "attachments_removed": 0,
            "linked": size,
            "relinked": 0,
        }
        assert done.search is not None and done.search.result_count == size

    assert stored_lists(ims_db, "PG-0002") == (
        ["comment 2.0", "comment 2.1", "comment 2.2"],
        ["status:Open"],
        ["log_2.txt"],
    )
    with ims_db.session(user_id=p.alice) as s:
        crawled = s.crawl_sessions.issues(session_id)
        assert [(c.issue.issue_id, c.crawl_order) for c in crawled] == [
            (f"PG-{n:04d}", n) for n in range(1, 16)
        ]
        [attachment] = s.attachments.for_issue(crawled[0].issue.issue_pk)
        assert attachment.session_id == session_id  # downloaded by the page's session
        assert [q.result_count for q in s.search_queries.find(order_by=["query_id"])] == [3, 12]


def test_storing_the_same_page_again_rewrites_nothing_but_counts_the_crawl(
    ims_db: Database, p: People, ims_admin_url: str
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    page = [item(n) for n in range(1, 6)]
    with ims_db.session(user_id=p.alice) as s:
        s.issues.store_page(session_id, page, first_crawl_order=1)
    audit_before = audit_rows(ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        again = s.issues.store_page(session_id, page, first_crawl_order=1)
    assert again == StoredPage(inserted=0, updated=0, unchanged=5, linked=0, relinked=0)
    assert audit_rows(ims_admin_url) == audit_before  # no issue row was written
    with ims_db.session() as s:
        assert [i.crawl_count for i in s.issues.find(issue_id_like="PG-%")] == [2] * 5


def test_the_digest_stored_lets_the_next_upsert_many_take_the_fast_path(
    ims_db: Database, p: People, ims_admin_url: str
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    fields = {"issue_id": "PG-0001", "title": "Digest", "product": "OpenFrame"}
    with ims_db.session(user_id=p.alice) as s:
        s.issues.store_page(session_id, [{**fields, "comments": []}])
    with psycopg.connect(ims_admin_url) as conn:
        row = conn.execute(
            "SELECT c.content_hash FROM ims.issue_crawls AS c "
            "JOIN ims.issues AS i USING (issue_pk) WHERE i.issue_id = 'PG-0001'"
        ).fetchone()
    identity = item_digest(NewIssue(**fields))
    assert identity is not None and row is not None and bytes(row[0]) == identity[1]
    with ims_db.session(user_id=p.alice) as s:
        assert s.issues.upsert_many([NewIssue(**fields)]).unchanged == 1


def test_a_list_given_replaces_the_stored_one_and_a_list_left_out_keeps_it(
    ims_db: Database, p: People
) -> None:
    [first, second] = crawl(ims_db, p.alice, 2)
    with ims_db.session(user_id=p.alice) as s:
        s.issues.store_page(first, [item(1), item(2), item(3)])
    recrawl = [
        item(1, comments=[{"content": "only this one"}]),  # replaced
        item(2, history=[]),  # emptied
        {k: v for k, v in item(3).items() if k not in ("comments", "attachments")},  # kept
    ]
    with ims_db.session(user_id=p.alice) as s:
        done = s.issues.store_page(second, recrawl)
    assert (done.comments_added, done.comments_removed) == (1, 2)  # PG-0001 had 2
    assert (done.history_added, done.history_removed) == (0, 1)
    assert (done.attachments_added, done.attachments_removed) == (0, 0)
    assert (done.linked, done.unchanged) == (3, 3)  # new to this session; content as stored
    assert stored_lists(ims_db, "PG-0001")[0] == ["only this one"]
    assert stored_lists(ims_db, "PG-0002")[1] == []
    assert stored_lists(ims_db, "PG-0003") == (
        ["comment 3.0"],
        ["status:Open"],
        ["log_3.txt"],
    )


def test_fields_a_page_item_leaves_out_keep_their_stored_value(ims_db: Database, p: People) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        s.issues.store_page(session_id, [item(1, status="Open", assignee="lee")])
        done = s.issues.store_page(
            session_id,
            [PageIssue(issue_id="PG-0001", title="Renamed", product="OpenFrame", status="Closed")],
        )
        assert (done.updated, done.relinked) == (1, 0)
        stored = s.issues.get_by_issue_id("PG-0001")
    assert stored is not None
    assert (stored.title, stored.status, stored.assignee, stored.description) == (
        "Renamed",
        "Closed",
        "lee",
        "description 1",
    )


def test_the_same_issue_twice_on_a_page_is_merged_and_the_later_item_wins(
    ims_db: Database, p: People
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    page = [
        item(1, status="New"),
        item(2),
        item(1, status="Open", comments=[{"content": "later"}], crawl_duration_ms=7),
    ]
    with ims_db.session(user_id=p.alice) as s:
        done = s.issues.store_page(session_id, page, first_crawl_order=10)
        stored = s.issues.get_by_issue_id("PG-0001")
        links = {
            c.issue.issue_id: (c.crawl_order, c.crawl_duration_ms)
            for c in s.crawl_sessions.issues(session_id)
        }
    assert (done.inserted, done.linked, done.comments_added) == (2, 2, 1 + 3)
    assert stored is not None and (stored.status, stored.crawl_count) == ("Open", 2)
    assert links == {"PG-0001": (12, 7), "PG-0002": (11, None)}
    assert stored_lists(ims_db, "PG-0001")[0] == ["later"]


# --- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "options", "message"),
    [
        ([{"issue_id": "PG-1"}], {}, r"issues\[0\]: PageIssue: title"),
        ([item(1), item(2, comments=[{"author": "no content"}])], {}, r"issues\[1\].*content"),
        ([item(1, comments=[{"content": "x", "issue_pk": 5}])], {}, r"comments\[0\]\.issue_pk"),
        ([item(1, attachments=[{"filename": "x", "issue_pk": 5}])], {}, r"issue_pk"),
        ([item(1, crawl_duration_ms=-1)], {}, "crawl_duration_ms"),
        ([item(1, title="a\x00b")], {}, "title"),
        ([item(1, raw_data={"k": "a\x00b"})], {}, "raw_data"),
        ([item(1)], {"first_crawl_order": -1}, "first_crawl_order"),
        ([item(1)], {"first_crawl_order": 2**31 - 1}, None),
        ([item(1), item(2)], {"first_crawl_order": 2**31 - 1}, "first_crawl_order"),
        ([item(1)], {"search": {"user_id": 1}}, "query_text"),
        ({"issue_id": "PG-1"}, {}, "issues must be an iterable"),
        ("PG-1", {}, "issues must be an iterable"),
        (PageIssue(issue_id="PG-1", title="t", product="P"), {}, "issues must be an iterable"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    ims_db: Database, p: People, page: Any, options: dict[str, Any], message: str | None
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        if message is None:  # the largest first order a one-issue page may have
            assert s.issues.store_page(session_id, page, **options).inserted == 1
            return
        with pytest.raises(InvalidInput, match=message):
            s.issues.store_page(session_id, page, **options)
        assert s.statements_sent == 0 and not s.in_transaction
    with ims_db.session() as s:
        assert s.issues.count() == 0


def test_a_page_the_server_refuses_leaves_the_connection_usable(
    ims_app_url: str, p: People
) -> None:
    """The server refuses the page's comments (a number out of range) on the run of the
    page's statements at which psycopg prepares them (the sixth on a connection): the
    statements after the refused one never reach the server, and the next pages on the
    same connection must still run (psycopg takes a skipped statement for prepared)."""
    with Database(ims_app_url, min_size=1, max_size=1) as db:
        [session_id] = crawl(db, p.alice, 1)
        with db.session() as s:  # psycopg forgets its prepared statements at the first
            s.execute("SELECT 1")  # ROLLBACK it sees on a connection, not at later ones
            s.rollback()
        for n in range(1, 9):
            page = [item(n)]
            if n == 6:
                page = [item(n, comments=[{"content": "x", "comment_order": 2**40}])]
            with db.session(user_id=p.alice) as s:
                if n == 6:
                    with pytest.raises(InvalidInput):
                        s.issues.store_page(session_id, page, search=search(p.alice, session_id, 1))
                    continue
                done = s.issues.store_page(session_id, page, search=search(p.alice, session_id, 1))
                assert done.inserted == 1
        with db.session() as s:
            assert s.issues.count() == 7


def test_a_page_item_is_not_an_issue_for_the_other_writes(ims_db: Database) -> None:
    """A ``PageIssue`` carries lists the single-issue writes would drop: refused there."""
    page_issue = PageIssue(issue_id="PG-1", title="t", product="P", comments=[])
    with ims_db.session() as s:
        for write in (s.issues.create, s.issues.upsert):
            with pytest.raises(InvalidInput, match="NewIssue"):
                write(page_issue)  # type: ignore[arg-type]
        assert s.statements_sent == 0
        with pytest.raises(InvalidInput, match=r"issues\[0\]"):
            s.issues.upsert_many([page_issue])  # type: ignore[list-item]
        s.rollback()  # upsert_many's digest round ran; nothing was written
        assert s.issues.count() == 0


def test_a_crawl_session_the_context_cannot_see_stores_nothing_of_the_page(
    ims_db: Database, p: People
) -> None:
    [bobs] = crawl(ims_db, p.bob, 1)
    [alices] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s, pytest.raises(NotFound, match=f"session {bobs}"):
        s.issues.store_page(bobs, [item(1)])
    # In an open transaction: the page is undone, the transaction's earlier work kept.
    with ims_db.session(user_id=p.alice) as s:
        s.issues.store_page(alices, [item(2)])
        with pytest.raises(NotFound):
            s.issues.store_page(bobs, [item(3)])
    with ims_db.session() as s:
        assert [i.issue_id for i in s.issues.find()] == ["PG-0002"]
        assert len(s.comments.find()) == 3 and len(s.attachments.find()) == 1


def test_a_search_logged_for_another_user_is_refused_and_nothing_is_kept(
    ims_db: Database, p: People
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(PermissionDenied):
            s.issues.store_page(session_id, [item(1)], search=search(p.bob, session_id, 1))
        assert s.issues.count() == 0  # the session goes on, without the page
        s.issues.store_page(session_id, [item(2)])
    with ims_db.session() as s:
        assert [i.issue_id for i in s.issues.find()] == ["PG-0002"]


def test_a_search_alone_is_logged_without_touching_issues(ims_db: Database, p: People) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        done = s.issues.store_page(session_id, [], search=search(p.alice, session_id, 0))
        assert s.statements_sent == 1  # the log
        assert s.issues.store_page(session_id, []) == StoredPage(
            inserted=0, updated=0, unchanged=0, linked=0, relinked=0
        )
        assert s.statements_sent == 1
    assert done.search is not None and done.inserted == 0


def test_in_an_open_transaction_the_page_takes_its_locks_first(ims_db: Database, p: People) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    with ims_db.session(user_id=p.alice) as s:
        s.users.update(p.alice, department="QA")
        sent = s.statements_sent
        done = s.issues.store_page(session_id, [item(1), item(2)])
        # The lock in a savepoint, then the page's pipeline.
        assert s.statements_sent - sent == 1 + STATEMENTS - 1  # no search given
        s.issues.upsert_many([NewIssue(issue_id="PG-0003", title="t", product="OpenFrame")])
    assert done.inserted == 2
    with ims_db.session() as s:
        assert s.issues.count() == 3


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.slow
def test_crawlers_storing_overlapping_pages_never_deadlock(
    ims_db: Database, p: People, ims_admin_url: str
) -> None:
    """4 crawlers store overlapping issues in shuffled orders, 15 rounds each: a page per
    transaction (one pipeline) on even rounds, two pages in one transaction on odd ones
    (the second takes its locks after the first's, in a savepoint). The server's deadlock
    counter must not move, and every issue's crawl count equals the upserts of the
    transactions that committed (a ``TransactionConflict``, the bounded retry giving up,
    is allowed and counted)."""
    crawlers, rounds, size = 4, 15, 20
    sessions = crawl(ims_db, p.alice, crawlers)
    upserts: Counter[str] = Counter()
    conflicts: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(crawlers)
    before = server_deadlocks(ims_admin_url)

    def crawler(k: int) -> None:
        rng = random.Random(k)
        try:
            start.wait(timeout=30)
            for round_ in range(rounds):
                numbers = rng.sample(range(50), 2 * size)
                pages = [
                    [item(n, title=f"crawler {k} round {round_}") for n in numbers[:size]],
                    [item(n, title=f"crawler {k} round {round_}") for n in numbers[size:]],
                ]
                stored: list[str] = []
                try:
                    for part in [pages] if round_ % 2 else [[pages[0]], [pages[1]]]:
                        with ims_db.session(user_id=p.alice) as s:
                            for page in part:
                                s.issues.store_page(sessions[k], page)
                        stored += [i["issue_id"] for page in part for i in page]
                except TransactionConflict:
                    with lock:
                        conflicts.append(k)
                with lock:
                    upserts.update(stored)
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=crawler, args=(k,)) for k in range(crawlers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert server_deadlocks(ims_admin_url) == before
    with ims_db.session() as s:
        counts = {i.issue_id: i.crawl_count for i in s.issues.find(issue_id_like="PG-%")}
    assert counts == dict(upserts)
    assert len(conflicts) < crawlers * rounds // 2  # most two-page transactions commit


def audit_rows(admin_url: str) -> int:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM ims.audit_log").fetchone()
    assert row is not None
    return int(row[0])
