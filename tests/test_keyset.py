"""Keyset pages: ``find(after=page[-1])`` walks exactly the rows, in exactly the order, of
an ``OFFSET`` walk: for mixed directions, NULL sort values and ties, as the runtime login
(row-level security still decides what a page can hold); a bad ``after`` is refused before
any SQL is sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ims_repo import Database, InvalidInput, Issue, NewIssue, Session
from ims_repo.core.filters import Column, FilterSet
from ims_repo.db._async.repositories.base import bind_find
from ims_repo.db._async.repositories.issues import FILTERS, FIND
from ims_repo.services.sample_data import Sample
from tests.seed import crawl, people

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
# Few distinct values, so every order has ties and NULLs to get through.
TIMES = [None, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
STATUSES = [None, "Open", "New", "Closed"]
PRIORITIES = [None, "High", "Low"]
PRODUCTS = ["OpenFrame", "Tibero"]
SORTABLE = ["product", "status", "priority", "issue_updated_at", "title", "crawl_count"]

Find = Callable[..., list[Any]]


def seed_issues(db: Database, count: int = 37) -> None:
    """``count`` issues whose sort columns cycle through short lists of values (NULLs
    included), at co-prime periods: every combination of ties occurs."""
    with db.session() as s:
        for n in range(count):
            s.issues.create(
                NewIssue(
                    issue_id=f"K-{n:03}",
                    title=f"title {n % 5}",
                    product=PRODUCTS[n % 2],
                    status=STATUSES[n % 4],
                    priority=PRIORITIES[n % 3],
                    issue_updated_at=TIMES[(n * 7) % 4 if n % 5 else 0],
                )
            )


def walk_after(find: Find, size: int, **arguments: Any) -> list[Any]:
    """Every row, a keyset page at a time, as a crawler writes the loop."""
    rows: list[Any] = []
    after = None
    while True:
        page = find(limit=size, after=after, **arguments)
        rows.extend(page)
        if len(page) < size:
            return rows
        after = page[-1]


def walk_offset(find: Find, size: int, **arguments: Any) -> list[Any]:
    rows: list[Any] = []
    while True:
        page = find(limit=size, offset=len(rows), **arguments)
        rows.extend(page)
        if len(page) < size:
            return rows


ORDERS: list[list[str]] = [
    ["-issue_updated_at", "issue_pk"],  # the crawler's order (and the index's)
    ["issue_updated_at"],  # NULLs last, ascending
    ["-issue_updated_at", "-issue_pk"],
    ["status", "-priority"],  # two nullable keys, mixed directions
    ["-status", "priority", "-issue_updated_at"],
    ["title", "-issue_updated_at"],
    ["-issue_pk"],
    ["issue_pk", "title"],  # the key first: later keys change nothing
    [],  # the default order (issue_pk)
]


@pytest.mark.parametrize("order_by", ORDERS, ids=lambda keys: ",".join(keys) or "default")
@pytest.mark.parametrize("size", [1, 4])
def test_keyset_walk_is_the_offset_walk(ims_db: Database, order_by: list[str], size: int) -> None:
    seed_issues(ims_db)
    with ims_db.session() as s:
        everything = s.issues.find(order_by=order_by)
        assert len(everything) == 37
        by_keyset = walk_after(s.issues.find, size, order_by=order_by)
        assert [i.issue_pk for i in by_keyset] == [i.issue_pk for i in everything]
        assert by_keyset == walk_offset(s.issues.find, size, order_by=order_by)


def test_keyset_with_filters_mapping_after_and_find_detailed(ims_db: Database) -> None:
    seed_issues(ims_db)
    order = ["-issue_updated_at", "issue_pk"]
    filters: dict[str, Any] = {"product": "OpenFrame", "status_in": ["Open", "New"]}
    with ims_db.session() as s:
        expected = s.issues.find(order_by=order, **filters)
        assert 5 < len(expected) < 37
        assert walk_after(s.issues.find, 3, order_by=order, **filters) == expected
        detailed = walk_after(s.issues.find_detailed, 2, order_by=order, **filters)
        assert [d.issue_pk for d in detailed] == [i.issue_pk for i in expected]
        # The sort key as a mapping (e.g. kept between runs) pages the same way.
        last = expected[4]
        key = {"issue_updated_at": last.issue_updated_at, "issue_pk": last.issue_pk}
        assert s.issues.find(order_by=order, after=key, **filters) == expected[5:]
        # A NULL in the sort key: the page after the last NULL row.
        nulls = [i for i in expected if i.issue_updated_at is None]
        assert nulls and expected[: len(nulls)] == nulls  # NULLS FIRST when descending
        key = {"issue_updated_at": None, "issue_pk": nulls[-1].issue_pk}
        assert s.issues.find(order_by=order, after=key, **filters) == expected[len(nulls) :]
        # After the last row: an empty page.
        assert s.issues.find(order_by=order, after=expected[-1], **filters) == []


@st.composite
def orders(draw: st.DrawFn) -> list[str]:
    keys = draw(st.lists(st.sampled_from([*SORTABLE, "issue_pk"]), unique=True, max_size=4))
    return [("-" if draw(st.booleans()) else "") + key for key in keys]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_order_any_page_size(ims_db: Database, data: st.DataObject) -> None:
    with ims_db.session() as s:
        if not s.issues.count():  # the database lives for the whole test: seed it once
            seed_issues(ims_db)
        order_by = data.draw(orders(), label="order_by")
        size = data.draw(st.integers(1, 12), label="size")
        choices: list[dict[str, Any]] = [{}, {"product": "Tibero"}, {"has_status": True}]
        filters = data.draw(st.sampled_from(choices), label="filters")
        expected = s.issues.find(order_by=order_by, **filters)
        by_keyset = walk_after(s.issues.find, size, order_by=order_by, **filters)
        assert [i.issue_pk for i in by_keyset] == [i.issue_pk for i in expected]


def test_rls_still_decides_what_a_keyset_page_holds(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    mine = crawl(ims_db, p.alice, 5, started_at=T0) + crawl(ims_db, p.alice, 3)  # 3 unstarted
    theirs = crawl(ims_db, p.bob, 6, started_at=T0 + timedelta(minutes=1))
    order = ["-started_at"]  # NULLs (never started) first; ties broken by session_id
    with ims_db.session(user_id=p.alice) as s:
        walked = walk_after(s.crawl_sessions.find, 2, order_by=order)
        assert walked == walk_offset(s.crawl_sessions.find, 2, order_by=order)
        assert [c.session_id for c in walked] == mine[5:] + mine[:5]
        # Bob's row as the cursor: his values position the page, his rows stay hidden.
    with ims_db.session(user_id=p.bob) as s:
        bobs_first = s.crawl_sessions.find(order_by=order, limit=1)[0]
    with ims_db.session(user_id=p.alice) as s:
        assert s.crawl_sessions.find(order_by=order, after=bobs_first) == walked[3:]
    with ims_db.session(user_id=p.admin) as s:
        everyone = walk_after(s.crawl_sessions.find, 4, order_by=order)
        assert sorted(c.session_id for c in everyone) == sorted(mine + theirs)


EVERY_FIND: list[tuple[str, list[str]]] = [
    ("users", ["role", "-last_login_at"]),
    ("crawl_sessions", ["status", "-started_at"]),
    ("crawl_sessions", ["-duration_seconds", "product"]),
    ("comments", ["comment_order", "-commented_at"]),
    ("history", ["field_name", "-changed_at"]),
    ("attachments", ["-session_id", "file_type"]),
    ("search_queries", ["-result_count", "query_language"]),
    ("session_errors", ["severity", "-occurred_at"]),
]


@pytest.mark.parametrize("repository, order_by", EVERY_FIND, ids=str)
def test_every_find_pages_by_keyset(
    ims_db: Database, ims_sample: Sample, repository: str, order_by: list[str]
) -> None:
    with ims_db.session(user_id=ims_sample.admin) as s:  # every user's rows
        find = getattr(s, repository).find
        expected = find(order_by=order_by)
        assert len(expected) >= 3  # more than one page of 2
        assert walk_after(find, 2, order_by=order_by) == expected
        assert walk_offset(find, 2, order_by=order_by) == expected


# --- refused before SQL ------------------------------------------------------------------


def issue(**fields: Any) -> Issue:
    base: dict[str, Any] = {
        "issue_pk": 7,
        "issue_id": "K-007",
        "title": "t",
        "description": None,
        "product": "OpenFrame",
        "module": None,
        "version": None,
        "status": None,
        "priority": None,
        "severity": None,
        "reporter": None,
        "assignee": None,
        "issue_created_at": None,
        "issue_updated_at": T0,
        "url": None,
        "raw_data": {},
        "first_crawled_at": T0,
        "last_crawled_at": T0,
        "crawl_count": 1,
    }
    return Issue.model_validate(base | fields)


ORDER = ["-issue_updated_at", "issue_pk"]


@pytest.mark.parametrize(
    "after, message",
    [
        ({"issue_updated_at": T0}, "exactly the sort keys issue_updated_at, issue_pk"),
        ({"issue_updated_at": T0, "issue_pk": 1, "title": "x"}, "exactly the sort keys"),
        ({"issue_pk": 1, "updated": T0}, "exactly the sort keys"),
        ({"issue_updated_at": "2026-11-01", "issue_pk": 1}, "after: issue_updated_at"),
        ({"issue_updated_at": T0, "issue_pk": "1"}, "after: issue_pk"),
        ({"issue_updated_at": T0, "issue_pk": True}, "after: issue_pk"),
        ({"issue_updated_at": T0, "issue_pk": None}, "issue_pk cannot be None"),
        ((T0, 1), "not tuple"),
        (7, "not int"),
        (NewIssue(issue_id="x", title="t", product="p"), "a NewIssue has no issue_pk"),
    ],
)
def test_bad_after_is_refused_before_sql(after: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        bind_find(FIND, FILTERS, {}, ORDER, 10, 0, after)


def test_after_with_offset_or_a_bad_order_is_refused() -> None:
    with pytest.raises(InvalidInput, match="after and offset cannot be combined"):
        bind_find(FIND, FILTERS, {}, ORDER, 10, 50, issue())
    with pytest.raises(InvalidInput, match="unknown order_by key"):
        bind_find(FIND, FILTERS, {}, ["nope"], 10, 0, issue())
    # offset=0 beside after is the default, not a combination
    assert bind_find(FIND, FILTERS, {}, ORDER, 10, 0, issue()).params["k_issue_pk"] == 7


def test_the_api_refuses_before_reaching_the_server(ims_db: Database) -> None:
    with ims_db.session() as s:
        user = s.users.create({"username": "u", "email": "u@example.com"})
        sent = s.statements_sent
        with pytest.raises(InvalidInput, match="after and offset"):
            s.issues.find(order_by=ORDER, limit=5, offset=5, after=issue())
        with pytest.raises(InvalidInput, match="a User has no issue_updated_at, issue_pk"):
            s.issues.find(order_by=ORDER, after=user)
        with pytest.raises(InvalidInput, match="unknown filter 'after'"):  # no keyset here
            s.session_issues.find(after={"session_id": 1})
        assert s.statements_sent == sent


# --- the SQL ------------------------------------------------------------------------------

ITEMS = FilterSet(
    columns={
        "item_id": Column(int),
        "name": Column(str),
        "rank": Column(int, nullable=True),
        "seen_at": Column(datetime, nullable=True),
    },
    key="item_id",
)


def keyset(order_by: Sequence[str], after: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    fragment = ITEMS.after(order_by, after)
    return fragment.sql, dict(fragment.params)


def test_keyset_sql_for_mixed_directions_and_nulls() -> None:
    # The first key's range once (where an index starts), then "not equal, or after on
    # the next keys".
    assert keyset(["-seen_at"], {"seen_at": T0, "item_id": 3}) == (
        "seen_at <= %(k_seen_at)s AND (seen_at <> %(k_seen_at)s OR item_id > %(k_item_id)s)",
        {"k_seen_at": T0, "k_item_id": 3},
    )
    # Ascending nullable: NULLs come after every value.
    assert keyset(["rank"], {"rank": 2, "item_id": 3})[0] == (
        "(rank >= %(k_rank)s OR rank IS NULL) AND "
        "((rank <> %(k_rank)s OR rank IS NULL) OR item_id > %(k_item_id)s)"
    )
    # A NULL in the cursor shapes the SQL (no value is compared with =), binds nothing.
    assert keyset(["rank"], {"rank": None, "item_id": 3}) == (
        "rank IS NULL AND item_id > %(k_item_id)s",
        {"k_item_id": 3},
    )
    assert keyset(["-rank", "name"], {"rank": None, "name": "b", "item_id": 3}) == (
        "(rank IS NOT NULL OR "
        "(name >= %(k_name)s AND (name <> %(k_name)s OR item_id > %(k_item_id)s)))",
        {"k_name": "b", "k_item_id": 3},
    )
    assert keyset(["name", "rank"], {"name": "a", "rank": None, "item_id": 3})[0] == (
        "name >= %(k_name)s AND (name <> %(k_name)s OR (rank IS NULL AND item_id > %(k_item_id)s))"
    )
    # Only the key: one comparison.
    assert keyset(["-item_id"], {"item_id": 3}) == ("item_id < %(k_item_id)s", {"k_item_id": 3})


def test_values_are_bound_never_sql() -> None:
    hostile = "'; DROP TABLE ims.issues; --"
    sql, params = keyset(["name"], {"name": hostile, "item_id": 1})
    assert hostile not in sql and params["k_name"] == hostile


def test_a_keyset_page_uses_the_order_index(ims_db: Database) -> None:
    """What the migration 0008 index is for: the crawler's order, first and deep pages,
    served by ``issues_product_updated_idx`` (plans only; speed is the bench's)."""
    seed_issues(ims_db)
    with ims_db.session() as s:
        page = s.issues.find(product="OpenFrame", order_by=ORDER, limit=3)
        for after in (None, page[-1]):
            bound = bind_find(FIND, FILTERS, {"product": "OpenFrame"}, ORDER, 3, 0, after)
            assert "issues_product_updated_idx" in plan(s, bound.text, bound.params)


def plan(s: Session, text: str, params: Mapping[str, Any]) -> str:
    s.execute("SET LOCAL enable_seqscan = off")  # 37 rows: a seq scan would win otherwise
    s.execute("SET LOCAL enable_bitmapscan = off")
    return "\n".join(row["QUERY PLAN"] for row in s.execute(f"EXPLAIN {text}", params))
