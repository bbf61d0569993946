"""``s.issues``: every method but the bulk upsert (tests/test_upsert.py), through the
public API, as the runtime login."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ims_repo import (
    Database,
    Duplicate,
    ForeignKeyViolation,
    InvalidInput,
    Issue,
    NewIssue,
    NotFound,
    Session,
)
from ims_repo.db._async.repositories.issues import FILTERS, FIND_DETAILED
from tests.seed import crawl, people

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
HOSTILE = ["'; DROP TABLE ims.issues; --", "%s", "%(title)s", "$$", "\\", "a\tb\nc", "\\N"]
KOREAN_TITLE = "연결 시간 초과 오류 — 재시도 후에도 발생"
KOREAN_TEXT = "고객사 환경에서 OpenFrame 7.1 배치 작업이 30초 후 중단됩니다.\n로그 첨부."


def new(issue_id: str, **fields: Any) -> NewIssue:
    base: dict[str, Any] = {"issue_id": issue_id, "title": f"Title of {issue_id}"}
    return NewIssue(**({"product": "OpenFrame"} | base | fields))


def link(s: Session, session_id: int, issue_pk: int, user_id: int, order: int) -> None:
    """A session-issue link by raw SQL (the session_issues repository is not under test)."""
    s.execute(
        "INSERT INTO ims.session_issues (session_id, issue_pk, user_id, crawl_order, "
        "crawl_duration_ms) VALUES (%(s)s, %(i)s, %(u)s, %(o)s, %(d)s)",
        {"s": session_id, "i": issue_pk, "u": user_id, "o": order, "d": order * 100},
    )


# --- create, get ---------------------------------------------------------------------


def test_create_with_defaults_and_read_back_by_key_and_issue_id(ims_db: Database) -> None:
    with ims_db.session() as s:
        created = s.issues.create(
            new(
                "SAMPLE-001",
                title=KOREAN_TITLE,
                description=KOREAN_TEXT,
                module="batch",
                status="Open",
                priority="High",
                issue_created_at=T0,
                url="https://ims.example.com/SAMPLE-001",
                raw_data={"담당": "김", "tags": ["a", "b"]},
            )
        )
        assert created.issue_pk > 0
        assert (created.title, created.description) == (KOREAN_TITLE, KOREAN_TEXT)
        assert created.raw_data == {"담당": "김", "tags": ["a", "b"]}
        assert created.crawl_count == 1
        assert created.first_crawled_at == created.last_crawled_at
        assert created.issue_created_at == T0 and created.version is None
        assert s.issues.get(created.issue_pk) == created
        assert s.issues.get_by_issue_id("SAMPLE-001") == created
        assert s.issues.get(created.issue_pk + 1000) is None
        assert s.issues.get_by_issue_id("SAMPLE-002") is None
        minimal = s.issues.create({"issue_id": "SAMPLE-002", "title": "", "product": "OF"})
        assert minimal.raw_data == {} and minimal.description is None and minimal.title == ""


def test_a_second_issue_with_the_same_issue_id_is_a_duplicate(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.issues.create(new("SAMPLE-001"))
    with pytest.raises(Duplicate, match=r"ims\.issues") as raised, ims_db.session() as s:
        s.issues.create(new("SAMPLE-001", title="again"))
    assert raised.value.table == "issues"
    assert raised.value.__cause__ is not None
    with ims_db.session() as s:
        assert s.issues.count() == 1
        assert s.issues.get_by_issue_id("SAMPLE-001").title == "Title of SAMPLE-001"  # type: ignore[union-attr]


def test_hostile_strings_are_plain_data_as_values_and_filter_values(ims_db: Database) -> None:
    with ims_db.session() as s:
        made = [
            s.issues.create(new(f"H-{n}", title=text, description=text, status=text))
            for n, text in enumerate(HOSTILE)
        ]
        for issue, text in zip(made, HOSTILE, strict=True):
            assert (issue.title, issue.description, issue.status) == (text, text, text)
            assert s.issues.find(title=text) == [issue]
            assert s.issues.find(status_in=[text]) == [issue]
            assert s.issues.get_by_issue_id(issue.issue_id) == issue
        assert s.issues.count() == len(HOSTILE)
        # As LIKE patterns they mean what LIKE says, nothing more: "%s" ends with s.
        assert s.issues.count(title_like="%s") == 2
        assert s.issues.count(title_like="'; DROP TABLE%") == 1
        assert s.issues.count(title_like="$$") == 1
        assert s.issues.count(title_like="\\\\") == 1  # an escaped backslash


def test_bad_input_is_refused_before_any_sql(ims_db: Database) -> None:
    bad_issues: list[dict[str, Any]] = [
        {"issue_id": "X-1", "product": "OF"},  # no title
        {"issue_id": "", "title": "t", "product": "OF"},
        {"issue_id": "X-1", "title": "t", "product": "OF", "issue_pk": 3},
        {"issue_id": "X-1", "title": "nul \x00 here", "product": "OF"},
        {"issue_id": "X-1", "title": "t", "product": "OF", "raw_data": {"k": "\x00"}},
        {"issue_id": "X-1", "title": "t", "product": "OF", "issue_created_at": "soon"},
    ]
    with ims_db.session() as s:
        for bad in bad_issues:
            with pytest.raises(InvalidInput):
                s.issues.create(bad)
            with pytest.raises(InvalidInput):
                s.issues.upsert(bad)
        calls: list[Any] = [
            lambda: s.issues.get("1"),  # type: ignore[arg-type]
            lambda: s.issues.get_by_issue_id(1),  # type: ignore[arg-type]
            lambda: s.issues.update(1),
            lambda: s.issues.update(1, issue_id="Y-1"),
            lambda: s.issues.update(1, crawl_count=5),
            lambda: s.issues.update(1, title=None),
            lambda: s.issues.update("1", title="t"),  # type: ignore[arg-type]
            lambda: s.issues.delete(True),
            lambda: s.issues.find(colour="red"),
            lambda: s.issues.find(description="x"),  # not a filter: free text
            lambda: s.issues.find(status=None),
            lambda: s.issues.find(order_by=["-colour"]),
            lambda: s.issues.find(limit=-1),
            lambda: s.issues.count(crawl_count="1"),
            lambda: s.issues.find_detailed(has_title=True),
            lambda: s.issues.set_status([1, "2"], "Closed"),  # type: ignore[list-item]
            lambda: s.issues.set_status("12", "Closed"),  # type: ignore[arg-type]
            lambda: s.issues.set_status([1], None),  # type: ignore[arg-type]
            lambda: s.issues.replace_status("New", "a\x00b"),
            lambda: s.issues.replace_status("New", "x" * 501),  # too long for the index
            lambda: s.issues.set_status([1], "x" * 501),
            lambda: s.issues.update_many([{"status": "Closed"}]),
            lambda: s.issues.update_many([{"issue_pk": 1}]),
            lambda: s.issues.update_many([{"issue_pk": 1, "colour": "red"}]),
            lambda: s.issues.update_many({"issue_pk": 1, "status": "x"}),  # type: ignore[dict-item]
            lambda: s.issues.detail(None),  # type: ignore[arg-type]
            lambda: s.issues.sessions("1"),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(InvalidInput):
                call()
        assert s.statements_sent == 0


# --- find, count -------------------------------------------------------------------------


def seed_find(s: Session) -> list[Issue]:
    specs: list[dict[str, Any]] = [
        {"product": "OpenFrame", "status": "Open", "priority": "High", "module": "batch"},
        {"product": "OpenFrame", "status": "Closed", "priority": "Low", "module": None},
        {"product": "Tibero", "status": "Open", "priority": "High", "module": "sql"},
        {"product": "Tibero", "status": None, "priority": "Low", "module": "sql"},
        {"product": "JEUS", "status": "New", "priority": "High", "module": None},
    ]
    return [
        s.issues.create(
            new(f"F-{n}", issue_created_at=T0 + timedelta(days=n), assignee=f"dev{n % 2}", **spec)
        )
        for n, spec in enumerate(specs)
    ]


def test_find_filters_order_and_pages(ims_db: Database) -> None:
    with ims_db.session() as s:
        i = seed_find(s)

        def pks(found: list[Issue]) -> list[int]:
            return [issue.issue_pk for issue in found]

        assert s.issues.find() == i
        assert pks(s.issues.find(product="Tibero")) == pks([i[2], i[3]])
        assert pks(s.issues.find(status_not="Open")) == pks([i[1], i[4]])  # NULL never matches
        assert pks(s.issues.find(status_in=["New", "Closed"])) == pks([i[1], i[4]])
        assert s.issues.find(status_in=[]) == []
        assert pks(s.issues.find(product_like="Open%")) == pks(i[:2])
        assert pks(s.issues.find(has_module=False)) == pks([i[1], i[4]])
        assert pks(s.issues.find(has_status=False)) == pks([i[3]])
        assert pks(
            s.issues.find(
                issue_created_at_from=T0 + timedelta(days=1),
                issue_created_at_to=T0 + timedelta(days=3),
            )
        ) == pks(i[1:3])
        assert pks(s.issues.find(priority="High", product_in=["OpenFrame", "JEUS"])) == pks(
            [i[0], i[4]]
        )
        assert pks(s.issues.find(issue_pk_in=[i[4].issue_pk, i[0].issue_pk])) == pks([i[0], i[4]])
        assert pks(s.issues.find(crawl_count=1)) == pks(i)
        assert pks(s.issues.find(last_crawled_at_to=T0)) == []
        assert pks(s.issues.find(first_crawled_at_from=T0)) == pks(i)
        assert pks(s.issues.find(order_by=["product", "-issue_created_at"])) == pks(
            [i[4], i[1], i[0], i[3], i[2]]
        )
        assert pks(s.issues.find(order_by=["-priority", "-issue_created_at"])) == pks(
            [i[3], i[1], i[4], i[2], i[0]]
        )
        assert pks(s.issues.find(assignee="dev1", order_by=["title"])) == pks([i[1], i[3]])
        assert pks(s.issues.find(order_by=["-issue_pk"], limit=2, offset=1)) == pks([i[3], i[2]])
        assert s.issues.find(limit=0) == []


def test_count_with_filters_and_by_product(ims_db: Database) -> None:
    with ims_db.session() as s:
        assert s.issues.count() == 0 and s.issues.count_by_product() == {}
        seed_find(s)
        assert s.issues.count() == 5
        assert s.issues.count(product="Tibero") == 2
        assert s.issues.count(priority="High", has_module=True) == 2
        assert s.issues.count(status_in=["Open", "New"], product_not="JEUS") == 2
        assert s.issues.count(title_like="Title of F-%") == 5
        assert s.issues.count_by_product() == {"JEUS": 1, "OpenFrame": 2, "Tibero": 2}


# --- update, delete, bulk updates --------------------------------------------------------


def test_update_changes_given_fields_only_and_leaves_the_crawl_bookkeeping(
    ims_db: Database,
) -> None:
    with ims_db.session() as s:
        issue = s.issues.create(new("U-1", description="keep me", status="New", raw_data={"a": 1}))
        updated = s.issues.update(
            issue.issue_pk, status="Open", assignee="박지성", issue_updated_at=T0, raw_data={"b": 2}
        )
        assert (updated.status, updated.assignee, updated.issue_updated_at) == (
            "Open",
            "박지성",
            T0,
        )
        assert updated.raw_data == {"b": 2}
        assert updated.description == "keep me" and updated.title == issue.title
        assert updated.crawl_count == 1 and updated.last_crawled_at == issue.last_crawled_at
        cleared = s.issues.update(
            issue.issue_pk, description=None, title="'; DROP TABLE ims.issues; --"
        )
        assert cleared.description is None and cleared.title == "'; DROP TABLE ims.issues; --"
        assert s.issues.get(issue.issue_pk) == cleared
    with pytest.raises(NotFound, match="issue_pk=999999"), ims_db.session() as s:
        s.issues.update(999999, status="Open")


def test_delete_removes_the_issue_with_its_children(ims_db: Database) -> None:
    with ims_db.session() as s:
        issue = s.issues.create(new("D-1"))
        keep = s.issues.create(new("D-2"))
        s.execute(
            "INSERT INTO ims.issue_comments (issue_pk, content) VALUES (%(i)s, 'c'), (%(k)s, 'c')",
            {"i": issue.issue_pk, "k": keep.issue_pk},
        )
        assert s.issues.delete(issue.issue_pk) is True
        assert s.issues.delete(issue.issue_pk) is False
        assert s.issues.get(issue.issue_pk) is None
        assert s.issues.find() == [keep]
        [row] = s.execute("SELECT count(*) AS n FROM ims.issue_comments")
        assert row["n"] == 1


def test_delete_is_refused_while_a_session_the_caller_cannot_see_links_it(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [bobs] = crawl(ims_db, p.bob, 1)
    with ims_db.session(user_id=p.bob) as s:
        pk = s.issues.create(new("L-1")).issue_pk
        link(s, bobs, pk, p.bob, 1)
    for user_id in (p.alice, None):
        with ims_db.session(user_id=user_id) as s:
            assert s.issues.sessions(pk) == []  # alice cannot see bob's session ...
        with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=user_id) as s:
            s.issues.delete(pk)  # ... and still cannot delete through it
    with ims_db.session(user_id=p.alice) as s:
        assert s.issues.get(pk) is not None


def test_set_status_and_replace_status_count_rows_changed(ims_db: Database) -> None:
    with ims_db.session() as s:
        i = [
            s.issues.create(new(f"S-{n}", status=status))
            for n, status in enumerate(["New", "New", "Open", None, "New"])
        ]
        assert (
            s.issues.set_status([i[0].issue_pk, i[2].issue_pk, i[3].issue_pk, 999999], "Open") == 2
        )
        assert [issue.status for issue in s.issues.find()] == ["Open", "New", "Open", "Open", "New"]
        assert s.issues.set_status([], "Closed") == 0
        assert s.issues.set_status((i[1].issue_pk,), "$$") == 1
        assert s.issues.replace_status("Open", "Closed") == 3
        assert s.issues.replace_status("Closed", "Closed") == 0
        assert s.issues.replace_status("Missing", "Open") == 0
        assert s.issues.replace_status("New", "Open") == 1  # the guide's New -> Open
        assert [issue.status for issue in s.issues.find()] == [
            "Closed",
            "$$",
            "Closed",
            "Closed",
            "Open",
        ]
        assert s.issues.get(i[0].issue_pk).crawl_count == 1  # type: ignore[union-attr]


def test_update_many_is_one_statement_and_keeps_absent_fields(ims_db: Database) -> None:
    with ims_db.session() as s:
        i = [
            s.issues.create(new(f"M-{n}", status="New", priority="Low", description=f"d{n}"))
            for n in range(4)
        ]
    with ims_db.session() as s:
        changed = s.issues.update_many(
            [
                {"issue_pk": i[0].issue_pk, "status": "Closed"},
                {"issue_pk": i[1].issue_pk, "status": "In Progress", "priority": "High"},
                {"issue_pk": i[2].issue_pk, "status": "New"},  # no change
                {"issue_pk": i[3].issue_pk, "issue_updated_at": T0, "raw_data": {"k": "값"}},
                {"issue_pk": i[3].issue_pk, "description": None},  # later mapping, same issue
                {"issue_pk": 999999, "status": "Closed"},  # no such issue
            ]
        )
        assert s.statements_sent == 2  # the lock order's statement, then the one update
        assert changed == 3
        after = s.issues.find()
        assert [(x.status, x.priority, x.description) for x in after] == [
            ("Closed", "Low", "d0"),
            ("In Progress", "High", "d1"),
            ("New", "Low", "d2"),
            ("New", "Low", None),
        ]
        assert after[3].issue_updated_at == T0 and after[3].raw_data == {"k": "값"}
        assert s.issues.update_many([]) == 0
        assert s.statements_sent == 3  # find() was one; the empty list sent nothing


# --- upsert (one issue) ------------------------------------------------------------------


def test_upsert_inserts_then_updates_only_the_fields_given(ims_db: Database) -> None:
    with ims_db.session() as s:
        first = s.issues.upsert(
            new("R-1", description=KOREAN_TEXT, status="New", raw_data={"v": 1})
        )
        assert first.crawl_count == 1 and first.first_crawled_at == first.last_crawled_at
        assert first.description == KOREAN_TEXT
    with ims_db.session() as s:
        again = s.issues.upsert(new("R-1", status="Open", title=KOREAN_TITLE))
        assert again.issue_pk == first.issue_pk
        assert (again.title, again.status) == (KOREAN_TITLE, "Open")
        assert again.description == KOREAN_TEXT and again.raw_data == {"v": 1}  # unset: kept
        assert again.first_crawled_at == first.first_crawled_at
        assert again.last_crawled_at > first.last_crawled_at
        assert again.crawl_count == 2
        # In the same transaction too: the time is the statement's, not the transaction's.
        third = s.issues.upsert(
            {"issue_id": "R-1", "title": KOREAN_TITLE, "product": "OpenFrame", "description": None}
        )
        assert third.description is None and third.status == "Open"  # explicit None is set
        assert third.last_crawled_at > again.last_crawled_at and third.crawl_count == 3
        assert s.issues.get(first.issue_pk) == third
        assert s.issues.count() == 1


# --- detail, find_detailed, sessions -----------------------------------------------------


def add_children(s: Session, pk: int, tag: str) -> None:
    """Comments, history and attachments inserted out of their display order."""
    for order, at, content in [
        (None, T0, f"{tag} unnumbered late"),
        (2, T0, f"{tag} second"),
        (1, T0 + timedelta(hours=3), f"{tag} first"),
        (None, T0 - timedelta(days=1), f"{tag} unnumbered early"),
        (2, T0 - timedelta(hours=1), f"{tag} second but earlier"),
    ]:
        s.execute(
            "INSERT INTO ims.issue_comments (issue_pk, author, content, commented_at, "
            "comment_order) VALUES (%(i)s, '김철수', %(c)s, %(t)s, %(o)s)",
            {"i": pk, "c": content, "t": at, "o": order},
        )
    for hours, field in [(5, "status"), (1, "priority"), (3, "assignee")]:
        s.execute(
            "INSERT INTO ims.issue_history (issue_pk, changed_at, field_name, new_value) "
            "VALUES (%(i)s, %(t)s, %(f)s, %(v)s)",
            {"i": pk, "t": T0 + timedelta(hours=hours), "f": field, "v": f"{tag} {field}"},
        )
    for name in ("z.log", "a.txt"):
        s.execute(
            "INSERT INTO ims.attachments (issue_pk, filename, file_size) VALUES (%(i)s, %(f)s, 10)",
            {"i": pk, "f": f"{tag}-{name}"},
        )


def test_detail_loads_the_issue_and_its_ordered_children_in_one_statement(ims_db: Database) -> None:
    with ims_db.session() as s:
        pk = s.issues.create(new("SAMPLE-001", title=KOREAN_TITLE)).issue_pk
        other = s.issues.create(new("SAMPLE-002")).issue_pk
        add_children(s, pk, "a")
        add_children(s, other, "b")
        bare = s.issues.create(new("SAMPLE-003")).issue_pk
    with ims_db.session() as s:
        detail = s.issues.detail("SAMPLE-001")
        assert s.statements_sent == 1
    assert detail is not None and detail.issue_pk == pk and detail.title == KOREAN_TITLE
    assert [c.content for c in detail.comments] == [
        "a first",
        "a second but earlier",
        "a second",
        "a unnumbered early",
        "a unnumbered late",
    ]
    assert all(c.issue_pk == pk and c.author == "김철수" for c in detail.comments)
    assert detail.comments[0].commented_at == T0 + timedelta(hours=3)
    assert [h.field_name for h in detail.history] == ["priority", "assignee", "status"]
    assert detail.history[0].changed_at == T0 + timedelta(hours=1)
    assert [a.filename for a in detail.attachments] == ["a-z.log", "a-a.txt"]  # by id
    with ims_db.session() as s:
        empty = s.issues.detail("SAMPLE-003")
        assert empty is not None and empty.issue_pk == bare
        assert (empty.comments, empty.history, empty.attachments) == ([], [], [])
        assert s.issues.detail("SAMPLE-404") is None
        assert s.issues.get(pk) == Issue.model_validate(
            detail.model_dump(exclude={"comments", "history", "attachments"})
        )


def test_find_detailed_is_one_statement_with_filters_order_and_pages(ims_db: Database) -> None:
    with ims_db.session() as s:
        pks = [
            s.issues.create(new(f"FD-{n}", product="JEUS" if n == 1 else "OpenFrame")).issue_pk
            for n in range(4)
        ]
        for n, pk in enumerate(pks[:3]):
            add_children(s, pk, f"i{n}")
    with ims_db.session() as s:
        found = s.issues.find_detailed(product="OpenFrame", order_by=["-issue_pk"], limit=2)
        assert s.statements_sent == 1
    assert [d.issue_pk for d in found] == [pks[3], pks[2]]
    assert (found[0].comments, found[0].history, found[0].attachments) == ([], [], [])
    assert [c.content for c in found[1].comments][:2] == ["i2 first", "i2 second but earlier"]
    assert [h.field_name for h in found[1].history] == ["priority", "assignee", "status"]
    assert [a.filename for a in found[1].attachments] == ["i2-z.log", "i2-a.txt"]
    with ims_db.session() as s:
        everything = s.issues.find_detailed()
        assert s.statements_sent == 1
        assert [d.issue_pk for d in everything] == pks
        assert [len(d.comments) for d in everything] == [5, 5, 5, 0]
        assert {c.issue_pk for c in everything[1].comments} == {pks[1]}
        assert s.issues.find_detailed(issue_id="nope") == []


def test_find_detailed_reads_children_through_their_issue_pk_indexes(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, product) "
            "SELECT 'P-' || n, 'title', 'OpenFrame' FROM generate_series(1, 2000) AS n"
        )
        for table, columns, values in [
            ("issue_comments", "issue_pk, content, comment_order", "i.issue_pk, 'c', n"),
            ("issue_history", "issue_pk, field_name", "i.issue_pk, 'status'"),
            ("attachments", "issue_pk, filename", "i.issue_pk, 'f'"),
        ]:
            s.execute(
                f"INSERT INTO ims.{table} ({columns}) SELECT {values} "
                "FROM ims.issues AS i CROSS JOIN generate_series(1, 5) AS n"
            )
        bound = FIND_DETAILED.bind(
            {"limit": 20, "offset": 0},
            filters=FILTERS.where({"product": "OpenFrame"}),
            order_by=FILTERS.order_by(None),
        )
        plan = "\n".join(
            row["QUERY PLAN"] for row in s.execute("EXPLAIN " + bound.text, bound.params)
        )
    for index in (
        "issue_comments_issue_pk_order_idx",
        "issue_history_issue_pk_changed_at_idx",
        "attachments_issue_pk_idx",
    ):
        assert index in plan, plan
    assert "Seq Scan on issue_comments" not in plan, plan


def test_sessions_lists_the_visible_sessions_that_crawled_an_issue(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    alices = crawl(ims_db, p.alice, 3, product="OpenFrame")
    bobs = crawl(ims_db, p.bob, 2)
    with ims_db.session(user_id=p.alice) as s:
        pk = s.issues.create(new("X-1")).issue_pk
        other = s.issues.create(new("X-2")).issue_pk
        link(s, alices[2], pk, p.alice, 7)
        link(s, alices[0], pk, p.alice, 3)
        link(s, alices[1], other, p.alice, 1)
    with ims_db.session(user_id=p.bob) as s:
        link(s, bobs[0], pk, p.bob, 1)
    with ims_db.session(user_id=p.alice) as s:
        crawls = s.issues.sessions(pk)
        assert s.statements_sent == 1
        assert [c.session.session_id for c in crawls] == [alices[0], alices[2]]
        assert [(c.crawl_order, c.crawl_duration_ms) for c in crawls] == [(3, 300), (7, 700)]
        assert crawls[0].session == s.crawl_sessions.get(alices[0])
        assert all(c.session.user_id == p.alice for c in crawls)
        assert crawls[0].crawled_at is not None
        assert s.issues.sessions(999999) == []
    with ims_db.session(user_id=p.bob) as s:
        assert [c.session.session_id for c in s.issues.sessions(pk)] == [bobs[0]]
        assert s.issues.sessions(other) == []
    with ims_db.session() as s:
        assert s.issues.sessions(pk) == []  # no context: no rows
    with ims_db.session(user_id=p.admin) as s:
        assert [c.session.session_id for c in s.issues.sessions(pk)] == [
            alices[0],
            alices[2],
            bobs[0],
        ]
