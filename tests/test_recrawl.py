"""Re-crawls that change nothing (migration 0007, issue 5): recognised by the item's
digest, they move the bookkeeping in ``ims.issue_crawls`` and leave the issue row alone;
and ``Database.upsert_issues``, the same upsert over several connections. Through the
public API, as the runtime login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ims_repo import Database, InvalidInput, NewIssue, Session, UpsertResult
from ims_repo.services.migrations import migrate, rollback
from tests.seed import people

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ROW_VERSIONS = "SELECT issue_id, xmin::text AS version FROM ims.issues ORDER BY issue_id"


def item(n: int, **fields: Any) -> dict[str, Any]:
    """A crawled issue as a crawler has it: a plain dict."""
    base: dict[str, Any] = {
        "issue_id": f"RC-{n:05d}",
        "title": f"이슈 {n}",
        "description": f"설명 {n}",
        "product": "OpenFrame",
        "status": "Open",
        "issue_updated_at": T0,
        "raw_data": {"n": n, "labels": ["a", "b"]},
    }
    return base | fields


def bookkeeping(s: Session) -> dict[str, tuple[int, datetime]]:
    return {i.issue_id: (i.crawl_count, i.last_crawled_at) for i in s.issues.find()}


def test_an_unchanged_recrawl_moves_only_the_bookkeeping(ims_db: Database) -> None:
    with ims_db.session() as s:
        assert s.issues.upsert_many(item(n) for n in range(300)) == UpsertResult(inserted=300)
    with ims_db.session() as s:
        rows_before = s.execute(ROW_VERSIONS)
        before = bookkeeping(s)
        sent = s.statements_sent
        result = s.issues.upsert_many([item(n) for n in range(300)], batch_size=100)
        # Per batch: the locks, the digests staged, matched and the stage emptied; no
        # items sent.
        assert s.statements_sent - sent == 3 * 6
        assert result == UpsertResult(unchanged=300)
        after = bookkeeping(s)
        assert s.execute(ROW_VERSIONS) == rows_before  # no issue row was rewritten
        audited = s.execute("SELECT count(*) AS n FROM ims.audit_log WHERE action = 'UPDATE'")
    assert audited == [{"n": 0}]
    assert all(after[k][0] == before[k][0] + 1 for k in before)
    assert all(after[k][1] > before[k][1] for k in before)


def test_a_recrawl_writes_what_changed_and_settles_the_rest(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.issues.upsert_many(item(n) for n in range(10))
    recrawl = [item(n, status="Closed") if n % 2 else item(n) for n in range(12)]
    with ims_db.session() as s:
        assert s.issues.upsert_many(recrawl) == UpsertResult(inserted=2, updated=5, unchanged=5)
        got = {i.issue_id: i for i in s.issues.find()}
    assert [got[f"RC-{n:05d}"].status for n in range(12)] == ["Open", "Closed"] * 6
    assert [got[f"RC-{n:05d}"].crawl_count for n in range(12)] == [2] * 10 + [1] * 2
    # The changed ones now carry their new digest: the next identical crawl settles all.
    with ims_db.session() as s:
        assert s.issues.upsert_many(recrawl) == UpsertResult(unchanged=12)
        assert {i.issue_id: i.crawl_count for i in s.issues.find()}["RC-00001"] == 3


def test_a_digest_is_forgotten_when_the_issue_is_changed_another_way(
    ims_db: Database, ims_admin_url: str
) -> None:
    with ims_db.session() as s:
        s.issues.upsert_many([item(1), item(2), item(3)])
        one = s.issues.get_by_issue_id("RC-00001")
        assert one is not None
        s.issues.update(one.issue_pk, title="edited in the app")
    with psycopg.connect(ims_admin_url, autocommit=True) as admin:
        admin.execute("UPDATE ims.issues SET status = 'Fixed by a DBA' WHERE issue_id = 'RC-00002'")
    with ims_db.session() as s:
        # The crawl brings the IMS's content back over both edits; RC-00003 is settled.
        assert s.issues.upsert_many([item(1), item(2), item(3)]) == UpsertResult(
            updated=2, unchanged=1
        )
        got = {i.issue_id: i for i in s.issues.find()}
    assert got["RC-00001"].title == "이슈 1" and got["RC-00002"].status == "Open"
    assert [got[f"RC-0000{n}"].crawl_count for n in (1, 2, 3)] == [2, 2, 2]


def test_a_single_upsert_keeps_the_counts_and_forgets_the_digest(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.issues.upsert_many([item(1)])
        stored = s.issues.upsert(NewIssue(**item(1, status="Closed")))
        assert (stored.status, stored.crawl_count) == ("Closed", 2)
        unchanged = s.issues.upsert(NewIssue(**item(1, status="Closed")))
        assert unchanged.crawl_count == 3 and unchanged.last_crawled_at > stored.last_crawled_at
        # The bulk digest described the "Open" item: the same item is written again.
        assert s.issues.upsert_many([item(1)]) == UpsertResult(updated=1)
        got = s.issues.get_by_issue_id("RC-00001")
    assert got is not None and (got.status, got.crawl_count) == ("Open", 4)


def test_items_that_cannot_vouch_for_themselves_are_validated(ims_db: Database) -> None:
    class Title(str):
        pass

    with ims_db.session() as s:
        s.issues.upsert_many([item(1), item(2), item(3)])
        # A record: the fields it was given are digested, and it is settled (6 statements
        # with the locks, no items staged). A str subclass: validated and staged (10), then
        # found equal.
        sent = s.statements_sent
        assert s.issues.upsert_many([NewIssue(**item(2))]) == UpsertResult(unchanged=1)
        assert s.statements_sent - sent == 6
        sent = s.statements_sent
        assert s.issues.upsert_many([item(1, title=Title("이슈 1"))]) == UpsertResult(unchanged=1)
        assert s.statements_sent - sent == 10
        # Another JSON form (an unknown key) is validated, and refused.
        with pytest.raises(InvalidInput, match=r"issues\[0\]: NewIssue"):
            s.issues.upsert_many([item(3, colour="red")])
        # Different items of one issue in one batch are merged and written, never settled.
        assert s.issues.upsert_many([item(3, status="A"), item(3)]) == UpsertResult(unchanged=1)
        got = s.issues.get_by_issue_id("RC-00003")
    assert got is not None and (got.status, got.crawl_count) == ("Open", 3)


def test_an_item_without_an_issue_id_among_settled_ones_is_refused(ims_db: Database) -> None:
    """Every item that names its issue is settled by its digest; the one that names none
    is still validated, and refused with its position: nothing of the call is kept."""
    with ims_db.session() as s:
        s.issues.upsert_many([item(1), item(2)])
    unnamed = {k: v for k, v in item(3).items() if k != "issue_id"}
    with ims_db.session() as s:
        before = bookkeeping(s)
        with pytest.raises(InvalidInput, match=r"issues\[2\]: NewIssue"):
            s.issues.upsert_many([item(1), item(2), unnamed])
        s.rollback()
        assert bookkeeping(s) == before


def test_the_view_shows_the_current_bookkeeping_and_a_rollback_keeps_it(
    ims_db: Database, ims_admin_url: str
) -> None:
    with ims_db.session() as s:
        s.issues.upsert_many([item(1), item(2)])
        s.issues.upsert_many([item(1)])
        s.issues.upsert_many([item(1)])
        records = bookkeeping(s)
        shown = {
            row["issue_id"]: (row["crawl_count"], row["last_crawled_at"])
            for row in s.execute("SELECT * FROM ims.issues_with_crawls")
        }
    assert shown == records and records["RC-00001"][0] == 3
    assert rollback(ims_admin_url, count=_applied_after("0006.search", ims_admin_url))
    with psycopg.connect(ims_admin_url) as admin:
        folded = dict(admin.execute("SELECT issue_id, crawl_count FROM ims.issues").fetchall())
    assert folded == {"RC-00001": 3, "RC-00002": 1}
    migrate(ims_admin_url)


def _applied_after(migration_id: str, url: str) -> int:
    with psycopg.connect(url) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc"
            )
        ]
    return len(ids) - ids.index(migration_id) - 1


# --- Database.upsert_issues ------------------------------------------------------------------


def crawl_with_repeats(total: int) -> Iterator[dict[str, Any]]:
    """Items with repeats of the same issue (later ones win) and partial items."""
    for n in range(total):
        yield item(n % (total // 2), status=f"s{n}")
        if n % 7 == 0:
            partial = {"title": f"partial {n}", "product": "OpenFrame"}
            yield {"issue_id": f"RC-{n % (total // 2):05d}"} | partial


def test_upsert_issues_stores_what_upsert_many_stores(
    ims_db: Database, ims_app_url: str, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session() as s:
        sequential = s.issues.upsert_many(crawl_with_repeats(2000), batch_size=300)
        expected = {i.issue_id: i for i in s.issues.find()}
        s.rollback()
    with Database(ims_app_url, min_size=1, max_size=3) as db:
        parallel = db.upsert_issues(
            crawl_with_repeats(2000), user_id=p.alice, connections=3, batch_size=100
        )
        with db.session(user_id=p.alice) as s:
            got = {i.issue_id: i for i in s.issues.find()}
            actors = s.execute("SELECT DISTINCT user_id FROM ims.audit_log")
    # Per-batch counts differ with the batching (a merged issue counts once per batch);
    # the stored rows do not.
    assert parallel.inserted == sequential.inserted == 1000
    skip = {"issue_pk", "first_crawled_at", "last_crawled_at"}
    assert {k: v.model_dump(exclude=skip) for k, v in got.items()} == {
        k: v.model_dump(exclude=skip) for k, v in expected.items()
    }
    assert actors == [{"user_id": p.alice}]


def test_upsert_issues_names_the_refused_item_and_keeps_committed_batches(
    ims_app_url: str,
) -> None:
    items = [item(n) for n in range(50)]
    items[37] = {"issue_id": "RC-bad", "product": "OpenFrame"}  # no title
    with Database(ims_app_url, min_size=1, max_size=2) as db:
        with pytest.raises(InvalidInput, match=r"issues\[37\]: NewIssue: title"):
            db.upsert_issues(items, connections=2, batch_size=5)
        with db.session() as s:
            stored = s.issues.count()
        for bad in ("RC-1", {"issue_id": "x"}, None):
            with pytest.raises(InvalidInput, match="iterable"):
                db.upsert_issues(bad)  # type: ignore[arg-type]
        for connections in (0, True, "2"):
            with pytest.raises(InvalidInput, match="connections"):
                db.upsert_issues([], connections=connections)  # type: ignore[arg-type]
        assert db.upsert_issues(iter(())) == UpsertResult()
    # Some batches were committed before the error stopped the others; never item 37.
    assert 0 < stored < 50
