"""``s.issues.upsert_many``: COPY-based, streaming re-crawl upserts, through the public
API, as the runtime login."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ims_repo import Database, InvalidInput, Issue, NewIssue, Session, UpsertResult
from tests.seed import people

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
STATEMENTS_PER_BATCH = 10  # the lock order; digests: create, COPY, add missing, fast path, empty;
# items: 4 alike


def new(n: int, **fields: Any) -> NewIssue:
    base: dict[str, Any] = {
        "issue_id": f"IMS-{n:06d}",
        "title": f"이슈 {n}",
        "product": "OpenFrame",
    }
    return NewIssue(**(base | fields))


def by_issue_id(s: Session) -> dict[str, Issue]:
    return {issue.issue_id: issue for issue in s.issues.find()}


def test_bulk_recrawl_of_ten_thousand_issues_with_half_already_stored(ims_db: Database) -> None:
    with ims_db.session() as s:
        first = s.issues.upsert_many(
            (
                new(
                    n,
                    description=f"설명 {n}",
                    status="New",
                    priority="Low",
                    issue_created_at=T0,
                    raw_data={"n": n},
                )
                for n in range(5000)
            ),
            batch_size=2000,
        )
        assert first == UpsertResult(inserted=5000, updated=0, unchanged=0)
        before = by_issue_id(s)
    # The re-crawl: 0-2499 identical (but this crawl gives no description: kept),
    # 2500-4999 with a new status, 5000-9999 new issues.
    recrawl = [
        new(n, status="New", priority="Low", issue_created_at=T0, raw_data={"n": n})
        if n < 2500
        else new(
            n,
            description=f"설명 {n}",
            status="Open",
            priority="Low",
            issue_created_at=T0,
            raw_data={"n": n},
        )
        for n in range(10000)
    ]
    with ims_db.session() as s:
        result = s.issues.upsert_many(recrawl)
        assert s.statements_sent == STATEMENTS_PER_BATCH * 2  # two batches of 5000
        assert result == UpsertResult(inserted=5000, updated=2500, unchanged=2500)
        after = by_issue_id(s)
    assert len(after) == 10000
    for n in (0, 2499, 2500, 4999):
        old, now = before[f"IMS-{n:06d}"], after[f"IMS-{n:06d}"]
        assert now.issue_pk == old.issue_pk
        assert now.description == f"설명 {n}"  # unset in the re-crawl: kept
        assert now.status == ("New" if n < 2500 else "Open")
        assert now.first_crawled_at == old.first_crawled_at
        assert now.last_crawled_at > old.last_crawled_at
        assert now.crawl_count == 2
    fresh = after["IMS-009999"]
    assert fresh.crawl_count == 1 and fresh.first_crawled_at == fresh.last_crawled_at
    assert fresh.last_crawled_at == after["IMS-005000"].last_crawled_at  # one batch, one time
    assert after["IMS-000000"].last_crawled_at == after["IMS-004999"].last_crawled_at
    # New rows are written in issue_id order (here also the input order).
    assert [after[f"IMS-{n:06d}"].issue_pk for n in range(5000, 10000)] == sorted(
        after[f"IMS-{n:06d}"].issue_pk for n in range(5000, 10000)
    )
    with ims_db.session() as s:
        assert s.issues.upsert_many(recrawl[2500:2600]) == UpsertResult(unchanged=100)
        assert s.issues.get_by_issue_id("IMS-002500").crawl_count == 3  # type: ignore[union-attr]


def test_a_duplicate_issue_id_in_one_batch_keeps_the_last_and_counts_every_upsert(
    ims_db: Database,
) -> None:
    with ims_db.session() as s:
        s.issues.upsert(new(1, description="stored", status="New"))
    items: list[NewIssue | dict[str, Any]] = [
        new(1, status="Open", assignee="kim"),
        new(2, title="first"),
        new(1, status="Closed"),  # the last one for IMS-000001 ...
        new(2, title="second", description="d"),
        {"issue_id": "IMS-000003", "title": "only once", "product": "Tibero"},
    ]
    with ims_db.session() as s:
        result = s.issues.upsert_many(items)
        # Counted per issue and batch: 1 updated, 2 inserted.
        assert result == UpsertResult(inserted=2, updated=1, unchanged=0)
        got = by_issue_id(s)
    one, two = got["IMS-000001"], got["IMS-000002"]
    assert one.status == "Closed"  # the last wins
    assert one.assignee == "kim"  # set only by an earlier item: kept, as if upserted in turn
    assert one.description == "stored"  # set by none: the stored value
    assert one.crawl_count == 3  # one create + two upserts
    assert (two.title, two.description, two.crawl_count) == ("second", "d", 2)
    assert got["IMS-000003"].crawl_count == 1 and got["IMS-000003"].product == "Tibero"
    # The result does not depend on where the batches split the input.
    with ims_db.session() as s:
        s.execute("DELETE FROM ims.issues")
        s.issues.upsert(new(1, description="stored", status="New"))
        s.issues.upsert_many(items, batch_size=1)
        again = by_issue_id(s)
    assert [
        (i.issue_id, i.title, i.description, i.status, i.assignee, i.crawl_count)
        for i in again.values()
    ] == [
        (i.issue_id, i.title, i.description, i.status, i.assignee, i.crawl_count)
        for i in got.values()
    ]


def test_text_of_every_kind_round_trips_through_copy(ims_db: Database) -> None:
    texts = [
        "연결 시간 초과 — 재시도 후에도 발생 🚨",
        "'; DROP TABLE ims.issues; --",
        "%s %(title)s %%",
        "$$ $tag$",
        "back\\slash \\N \\t \\\\",
        "tab\there\nnew line\r\nCRLF",
        "",
        "  padded  ",
        '"quoted", {braces}, NULL',
    ]
    with ims_db.session() as s:
        items = [
            new(n, title=text, description=text, assignee=text, raw_data={"t": text, text: [text]})
            for n, text in enumerate(texts)
        ]
        items.append(
            new(99, description=None, issue_updated_at=datetime(2026, 1, 2, 3, 4, 5, 678901))
        )
        assert s.issues.upsert_many(items).inserted == len(texts) + 1
        got = by_issue_id(s)
        for n, text in enumerate(texts):
            issue = got[f"IMS-{n:06d}"]
            assert (issue.title, issue.description, issue.assignee) == (text, text, text)
            assert issue.raw_data == {"t": text, text: [text]}
            assert s.issues.find(title=text) == [issue]
        # A naive time means the session's time zone, as for create and update.
        [row] = s.execute(
            "SELECT %(t)s::timestamptz AS t", {"t": datetime(2026, 1, 2, 3, 4, 5, 678901)}
        )
        assert got["IMS-000099"].issue_updated_at == row["t"]
        assert s.issues.upsert_many(items) == UpsertResult(unchanged=len(items))


def test_explicit_none_clears_a_field_and_mappings_set_only_their_keys(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.issues.upsert_many(
            [new(1, description="d", module="m", raw_data={"a": 1}), new(2, description="d")]
        )
        result = s.issues.upsert_many(
            [
                new(1, description=None),  # given: cleared; module, raw_data: kept
                {
                    "issue_id": "IMS-000002",
                    "title": "이슈 2",
                    "product": "OpenFrame",
                    "raw_data": {},
                },
            ]
        )
        assert result == UpsertResult(updated=1, unchanged=1)
        got = by_issue_id(s)
    assert (got["IMS-000001"].description, got["IMS-000001"].module) == (None, "m")
    assert got["IMS-000001"].raw_data == {"a": 1}
    assert got["IMS-000002"].description == "d" and got["IMS-000002"].raw_data == {}


def test_bad_items_are_refused_with_their_position_and_nothing_of_their_batch_is_written(
    ims_db: Database,
) -> None:
    with ims_db.session() as s:
        s.issues.upsert_many([new(0)])  # stored with its digest: [new(0), …] below is settled
        s.commit()
        sent = s.statements_sent
        for bad, message in [
            ([new(0), {"issue_id": "X", "product": "OF"}], r"issues\[1\]: NewIssue: title"),
            (
                [new(0), {"issue_id": "X", "title": "nul \x00", "product": "OF"}],
                r"issues\[1\]: NewIssue: title",
            ),
            (
                [new(0), {"issue_id": "X", "title": "t", "product": "OF", "colour": 1}],
                r"issues\[1\]",
            ),
            ([new(0), "IMS-1"], r"issues\[1\]"),
            (new(0), "iterable"),
            ({"issue_id": "X"}, "iterable"),
            ("IMS-1", "iterable"),
            (None, "iterable"),
        ]:
            with pytest.raises(InvalidInput, match=message):
                s.issues.upsert_many(bad)  # type: ignore[arg-type]
        for size in (0, -1, True, 2.5, "10"):
            with pytest.raises(InvalidInput, match="batch_size"):
                s.issues.upsert_many([new(0)], batch_size=size)  # type: ignore[arg-type]
        # new(0)'s digest matched in each bad batch, and the savepoint undid that crawl.
        assert s.statements_sent > sent
        assert [(i.issue_id, i.crawl_count) for i in s.issues.find()] == [("IMS-000000", 1)]
        sent = s.statements_sent
        assert s.issues.upsert_many([]) == UpsertResult()
        assert s.issues.upsert_many(iter(())) == UpsertResult()
        assert s.statements_sent == sent
        assert s.issues.upsert_many([new(0)]) == UpsertResult(unchanged=1)  # still usable
    # A bad item in a later batch: earlier batches were written in the block's
    # transaction, which the exception rolls back.
    with pytest.raises(InvalidInput, match=r"issues\[3\]"), ims_db.session() as s:
        s.issues.upsert_many([new(0), new(1), new(2), {"issue_id": "X"}], batch_size=2)
    with ims_db.session() as s:
        assert s.issues.count() == 1


def test_the_stage_lives_in_the_callers_transaction_and_never_reaches_the_next_checkout(
    ims_db: Database,
) -> None:
    stage = "SELECT to_regclass('pg_temp.ims_issue_upsert_stage') IS NOT NULL AS present"
    with ims_db.session() as s:
        assert s.issues.upsert_many([new(0), new(1)]).inserted == 2
        assert s.execute(stage) == [{"present": True}]
        assert s.issues.upsert_many([new(1), new(2)]) == UpsertResult(inserted=1, unchanged=1)
        s.commit()  # the caller commits per chunk
        assert s.execute(stage) == [{"present": False}]
        assert s.issues.upsert_many([new(3)]).inserted == 1
        s.rollback()
        assert s.issues.count() == 3
    with ims_db.session() as s:
        assert s.execute(stage) == [{"present": False}]
        assert sorted(by_issue_id(s)) == ["IMS-000000", "IMS-000001", "IMS-000002"]
        with s.savepoint():
            s.issues.upsert_many([new(4)])
        assert s.issues.count() == 4


def test_a_generator_may_commit_between_batches(ims_db: Database) -> None:
    with pytest.raises(InvalidInput, match=r"issues\[7\]"), ims_db.session() as s:

        def crawl() -> Iterator[NewIssue | dict[str, Any]]:
            for n in range(10):
                if n and n % 3 == 0:
                    s.commit()  # the batches so far are kept whatever happens next
                yield new(n) if n != 7 else {"issue_id": "bad"}

        s.issues.upsert_many(crawl(), batch_size=3)
    with ims_db.session() as s:
        assert sorted(by_issue_id(s)) == [f"IMS-{n:06d}" for n in range(6)]


def test_a_bulk_upsert_audits_per_changed_row_and_not_an_unchanged_recrawl(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    audit = (
        "SELECT action, count(*) AS n FROM ims.audit_log WHERE table_name = 'issues' "
        "GROUP BY action ORDER BY action"
    )
    with ims_db.session(user_id=p.alice) as s:
        s.issues.upsert_many(new(n) for n in range(300))
        assert s.execute(audit) == [{"action": "INSERT", "n": 300}]
        s.issues.upsert_many(new(n, status="Open" if n < 7 else None) for n in range(300))
        assert s.execute(audit) == [{"action": "INSERT", "n": 300}, {"action": "UPDATE", "n": 7}]
        assert s.issues.count(crawl_count=2) == 300


@pytest.mark.slow
def test_upsert_many_streams_a_generator_one_batch_at_a_time(ims_db: Database) -> None:
    total, size = 50_000, 1000
    sent_when_yielded: dict[int, int] = {}

    with ims_db.session() as s:

        def crawl() -> Iterator[NewIssue]:
            for n in range(total):
                if n % size == 0:
                    sent_when_yielded[n] = s.statements_sent
                yield new(n, description="본문 " * 20, raw_data={"n": n})

        result = s.issues.upsert_many(crawl(), batch_size=size)
        assert result == UpsertResult(inserted=total)
        assert s.issues.count() == total
    # When item k·size is taken from the generator, the k batches before it have been
    # written: the input is never held beyond the batch being read.
    assert sent_when_yielded == {k * size: STATEMENTS_PER_BATCH * k for k in range(total // size)}


@pytest.mark.slow
def test_upsert_many_memory_does_not_grow_with_the_input(ims_db: Database) -> None:
    total, size = 20_000, 500

    def crawl() -> Iterator[NewIssue]:
        for n in range(total):
            yield new(n, description=f"본문 {n} " * 20, raw_data={"n": n, "tags": ["a", "b"]})

    tracemalloc.start()
    try:
        whole = list(crawl())  # what holding the whole input would cost
        _, held = tracemalloc.get_traced_memory()
        del whole
        tracemalloc.reset_peak()
        with ims_db.session() as s:
            baseline, _ = tracemalloc.get_traced_memory()
            assert s.issues.upsert_many(crawl(), batch_size=size).inserted == total
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < held / 10, (peak - baseline, held)


def test_a_concurrent_first_crawl_of_the_same_issue_keeps_both_crawls_fields(
    ims_db: Database, ims_admin_url: str
) -> None:
    """B's batch waits for A's lock on the issue (the lock order) before it reads
    anything, so it finds A's committed row and updates only the fields B gave."""
    outcome: dict[str, UpsertResult] = {}

    def second_crawler() -> None:
        with ims_db.session() as s:
            outcome["b"] = s.issues.upsert_many([new(1, status="Open"), new(2)])

    with ims_db.session() as s:
        s.issues.upsert_many([new(1, description="from A", status="New")])
        b = threading.Thread(target=second_crawler)
        b.start()
        with psycopg.connect(ims_admin_url, autocommit=True) as watcher:
            for _ in range(500):  # B waits for A's lock
                [(waiting,)] = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchall()
                if waiting:
                    break
                time.sleep(0.01)
        assert waiting == 1 and b.is_alive()
    b.join(timeout=30)
    with ims_db.session() as s:
        one = s.issues.get_by_issue_id("IMS-000001")
    assert one is not None
    assert (one.description, one.status, one.crawl_count) == ("from A", "Open", 2)
    # B read after A committed: issue 1 is an update (its status changed), 2 is new.
    assert outcome["b"] == UpsertResult(inserted=1, updated=1)
