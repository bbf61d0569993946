"""``s.session_issues`` and ``s.crawl_sessions.issues``: links between crawl sessions and
the issues they crawled, as the runtime login (row-level security applies)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ims_repo import (
    CrawledIssue,
    Database,
    Duplicate,
    ForeignKeyViolation,
    InvalidInput,
    NewCrawlSession,
    NewSessionIssue,
    NotFound,
    PermissionDenied,
    Session,
)
from tests.seed import People, crawl, people


def new_issue(s: Session, issue_id: str, product: str = "OpenFrame") -> int:
    """An issue inserted by raw SQL (shared table: the runtime role may write it)."""
    [row] = s.execute(
        "INSERT INTO ims.issues (issue_id, title, product) VALUES (%(i)s, %(t)s, %(p)s) "
        "RETURNING issue_pk",
        {"i": issue_id, "t": f"Title of {issue_id}", "p": product},
    )
    return int(row["issue_pk"])


def issues(db: Database, count: int, prefix: str = "ISSUE") -> list[int]:
    with db.session() as s:
        return [new_issue(s, f"{prefix}-{n}") for n in range(count)]


def all_links(db: Database, p: People) -> list[tuple[int, int, int]]:
    """Every link in the database, read as the admin: (session_id, issue_pk, user_id)."""
    with db.session(user_id=p.admin) as s:
        return [(x.session_id, x.issue_pk, x.user_id) for x in s.session_issues.find()]


def test_link_get_for_session_and_unlink(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id, other] = crawl(ims_db, p.alice, 2)
    a, b, c, d = issues(ims_db, 4)
    with ims_db.session(user_id=p.alice) as s:
        first = s.session_issues.link(crawl_id, c, crawl_order=2, crawl_duration_ms=150)
        assert (first.session_id, first.issue_pk, first.user_id) == (crawl_id, c, p.alice)
        assert (first.crawl_order, first.crawl_duration_ms) == (2, 150)
        s.session_issues.link(crawl_id, d)  # no position: listed last
        s.session_issues.link(crawl_id, a, crawl_order=1)
        s.session_issues.link(crawl_id, b)
        s.session_issues.link(other, a, crawl_order=9)
        assert s.session_issues.get(crawl_id, c) == first
        assert s.session_issues.get(crawl_id, c + 1000) is None
        assert [x.issue_pk for x in s.session_issues.for_session(crawl_id)] == [a, c, b, d]
        assert [x.issue_pk for x in s.session_issues.for_session(other)] == [a]
        assert s.session_issues.unlink(crawl_id, d) is True
        assert s.session_issues.unlink(crawl_id, d) is False
        assert s.session_issues.get(crawl_id, d) is None
        assert [x.issue_pk for x in s.session_issues.for_session(crawl_id)] == [a, c, b]


def test_link_refuses_a_second_link_a_missing_issue_and_bad_input(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [crawl_id] = crawl(ims_db, p.alice, 1)
    [pk] = issues(ims_db, 1)
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(crawl_id, pk, crawl_order=1)
    with pytest.raises(Duplicate, match="session_issues"), ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(crawl_id, pk, crawl_order=2)
    with pytest.raises(ForeignKeyViolation, match="issue"), ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(crawl_id, pk + 1000)
    bads: list[dict[str, Any]] = [
        {"crawl_duration_ms": -1},
        {"crawl_order": "first"},
        {"issue_pk": None},
    ]
    for bad in bads:
        args: dict[str, Any] = {"session_id": crawl_id, "issue_pk": pk} | bad
        with ims_db.session(user_id=p.alice) as s:
            with pytest.raises(InvalidInput):
                s.session_issues.link(**args)
            assert s.statements_sent == 0
    with ims_db.session(user_id=p.alice) as s:
        [only] = s.session_issues.for_session(crawl_id)
        assert (only.issue_pk, only.crawl_order) == (pk, 1)


def test_create_session_with_issues_the_guide_way(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        crawl_session = s.crawl_sessions.create(
            NewCrawlSession(
                user_id=p.alice,
                product="OpenFrame",
                original_query="error",
                parsed_query="+error",
                status="running",
            )
        )
        for i in range(5):
            issue_pk = new_issue(s, f"ISSUE-{i}")
            s.session_issues.link(
                crawl_session.session_id, issue_pk, crawl_order=i + 1, crawl_duration_ms=1000
            )
    with ims_db.session(user_id=p.alice) as s:
        crawled = s.crawl_sessions.issues(crawl_session.session_id)
        assert s.statements_sent == 1
    assert all(isinstance(x, CrawledIssue) for x in crawled)
    assert [(x.issue.issue_id, x.crawl_order, x.crawl_duration_ms) for x in crawled] == [
        (f"ISSUE-{i}", i + 1, 1000) for i in range(5)
    ]
    first = crawled[0].issue
    assert (first.title, first.product, first.crawl_count, first.raw_data) == (
        "Title of ISSUE-0",
        "OpenFrame",
        1,
        {},
    )
    assert crawled[0].crawled_at is not None


def test_crawl_sessions_issues_in_crawl_order_and_only_for_a_visible_session(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [alices, other] = crawl(ims_db, p.alice, 2)
    a, b, c = issues(ims_db, 3)
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(alices, c)
        s.session_issues.link(alices, b, crawl_order=2)
        s.session_issues.link(alices, a)
        s.session_issues.link(other, a, crawl_order=1)
        assert [x.issue.issue_pk for x in s.crawl_sessions.issues(alices)] == [b, a, c]
        assert [x.crawl_order for x in s.crawl_sessions.issues(alices)] == [2, None, None]
        assert s.crawl_sessions.issues(alices + 1000) == []
    with ims_db.session(user_id=p.bob) as s:
        assert s.crawl_sessions.issues(alices) == []
    with ims_db.session(user_id=p.admin) as s:
        assert [x.issue.issue_pk for x in s.crawl_sessions.issues(alices)] == [b, a, c]
    with ims_db.session() as s:  # no context: deny by default
        assert s.crawl_sessions.issues(alices) == []


def test_bob_cannot_link_into_or_list_alices_session_an_admin_can(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    a, b = issues(ims_db, 2)
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(alices, a, crawl_order=1)
    missing = alices + 1000
    messages = []
    for session_id in (alices, missing):
        with pytest.raises(NotFound) as raised, ims_db.session(user_id=p.bob) as s:
            s.session_issues.link(session_id, b)
        assert raised.value.table == "crawl_sessions" and raised.value.key == str(session_id)
        assert f"session_id={session_id}" in str(raised.value)
        messages.append(str(raised.value).replace(str(session_id), "N"))
    assert messages[0] == messages[1]  # another user's session looks like a missing one
    with ims_db.session(user_id=p.bob) as s:
        assert s.session_issues.for_session(alices) == []
        assert s.session_issues.get(alices, a) is None
        assert s.session_issues.find() == []
        assert s.session_issues.find(session_id=alices) == []
        assert s.session_issues.unlink(alices, a) is False
        with pytest.raises(NotFound):
            s.session_issues.link_many([(alices, b)])
    assert all_links(ims_db, p) == [(alices, a, p.alice)]
    with ims_db.session(user_id=p.admin) as s:
        linked = s.session_issues.link(alices, b, crawl_order=2)
        assert linked.user_id == p.alice  # from the session, not the admin's context
        assert [x.issue_pk for x in s.session_issues.for_session(alices)] == [a, b]
    with ims_db.session(user_id=p.alice) as s:
        assert [x.issue_pk for x in s.session_issues.for_session(alices)] == [a, b]


def test_link_many_in_one_statement_with_each_sessions_user(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [alices, alices2] = crawl(ims_db, p.alice, 2)
    [bobs] = crawl(ims_db, p.bob, 1)
    a, b, c = issues(ims_db, 3)
    with ims_db.session(user_id=p.alice) as s:
        written = s.session_issues.link_many(
            [
                (alices, a),
                (alices, b, 2),
                (alices, c, 1, 250),
                {"session_id": alices2, "issue_pk": a, "crawl_duration_ms": 7},
                NewSessionIssue(session_id=alices2, issue_pk=c, crawl_order=3),
            ]
        )
        assert (written, s.statements_sent) == (5, 1)
        assert [
            (x.issue_pk, x.crawl_order, x.crawl_duration_ms)
            for x in s.session_issues.for_session(alices)
        ] == [(c, 1, 250), (b, 2, None), (a, None, None)]
        assert s.session_issues.get(alices2, a).crawl_duration_ms == 7  # type: ignore[union-attr]
    with ims_db.session(user_id=p.admin) as s:  # across users: each link gets its session's
        assert s.session_issues.link_many(iter([(bobs, a), (alices2, b)])) == 2
        assert s.statements_sent == 1
    assert sorted(all_links(ims_db, p)) == sorted(
        [
            (alices, a, p.alice),
            (alices, b, p.alice),
            (alices, c, p.alice),
            (alices2, a, p.alice),
            (alices2, c, p.alice),
            (alices2, b, p.alice),
            (bobs, a, p.bob),
        ]
    )
    with ims_db.session(user_id=p.alice) as s:
        assert s.session_issues.link_many([]) == 0
        assert s.statements_sent == 0


def test_link_many_is_all_or_nothing(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    [bobs] = crawl(ims_db, p.bob, 1)
    pks = issues(ims_db, 4)
    missing = bobs + 1000
    # One invisible session among many visible links: NotFound naming it, nothing written.
    for hidden in ([bobs], [missing], [missing, bobs]):
        links = [(alices, pk) for pk in pks] + [(h, pks[0]) for h in hidden]
        with pytest.raises(NotFound) as raised, ims_db.session(user_id=p.alice) as s:
            s.session_issues.link_many(links)
        assert raised.value.key == ", ".join(str(h) for h in sorted(hidden))
        assert "nothing was linked" in str(raised.value)
    assert all_links(ims_db, p) == []
    # Bad items are refused before any SQL, naming their position.
    for bad, where in [
        ((alices,), r"links\[2\]: a tuple"),
        ((alices, pks[0], 1, 2, 3), r"links\[2\]: a tuple"),
        ({"session_id": alices, "issue_pk": pks[0], "user_id": p.bob}, r"links\[2\]"),
        ({"session_id": alices, "issue_pk": pks[0], "crawl_duration_ms": -1}, r"links\[2\]"),
        ("nope", r"links\[2\]"),
    ]:
        batch: list[object] = [(alices, pks[1]), (alices, pks[2]), bad]
        with ims_db.session(user_id=p.alice) as s:
            with pytest.raises(InvalidInput, match=where):
                s.session_issues.link_many(batch)  # type: ignore[arg-type]
            assert s.statements_sent == 0
    with ims_db.session(user_id=p.alice) as s, pytest.raises(InvalidInput, match="iterable"):
        a_mapping: Any = {"session_id": alices, "issue_pk": pks[0]}
        s.session_issues.link_many(a_mapping)
    # A pair given twice, or one already linked, fails the whole statement.
    with pytest.raises(Duplicate), ims_db.session(user_id=p.alice) as s:
        s.session_issues.link_many([(alices, pks[0]), (alices, pks[1]), (alices, pks[0])])
    assert all_links(ims_db, p) == []
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(alices, pks[3])
    with pytest.raises(Duplicate), ims_db.session(user_id=p.alice) as s:
        s.session_issues.link_many([(alices, pks[0]), (alices, pks[3])])
    with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=p.alice) as s:
        s.session_issues.link_many([(alices, pks[0]), (alices, pks[3] + 1000)])
    assert all_links(ims_db, p) == [(alices, pks[3], p.alice)]


def test_find_filters_and_order(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [s1, s2] = crawl(ims_db, p.alice, 2)
    [bobs] = crawl(ims_db, p.bob, 1)
    a, b, c = issues(ims_db, 3)
    with ims_db.session(user_id=p.admin) as s:
        s.session_issues.link_many(
            [(s1, c, 1, 10), (s1, a, 2), (s2, b, None, 30), (s2, a, 1, 20), (bobs, a, 1)]
        )
    with ims_db.session(user_id=p.alice) as s:

        def found(**kw: object) -> list[tuple[int, int]]:
            return [(x.session_id, x.issue_pk) for x in s.session_issues.find(**kw)]  # type: ignore[arg-type]

        assert found() == [(s1, a), (s1, c), (s2, a), (s2, b)]  # session, then issue
        assert found(issue_pk=a) == [(s1, a), (s2, a)]
        assert found(user_id=p.bob) == []  # find adds no filter of its own; RLS does
        assert found(has_crawl_order=False) == [(s2, b)]
        assert found(crawl_duration_ms_in=[10, 30]) == [(s1, c), (s2, b)]
        assert found(order_by=["-crawl_duration_ms"]) == [(s1, a), (s2, b), (s2, a), (s1, c)]
        # crawl_order 1: (s2, a), (s1, c); then (s1, a); NULL last: (s2, b)
        assert found(order_by=["crawl_order", "-session_id"], limit=2, offset=1) == [
            (s1, c),
            (s1, a),
        ]
        with pytest.raises(InvalidInput):
            s.session_issues.find(order_by=["user"])
    with ims_db.session(user_id=p.admin) as s:
        assert [x.user_id for x in s.session_issues.find(issue_pk=a)] == [p.alice, p.alice, p.bob]


def test_the_copied_user_id_cannot_be_forged(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    [bobs] = crawl(ims_db, p.bob, 1)
    [pk] = issues(ims_db, 1)
    forge = (
        "INSERT INTO ims.session_issues (session_id, issue_pk, user_id) "
        "VALUES (%(s)s, %(i)s, %(u)s)"
    )
    attempts = [
        # (context, session, user_id written, error)
        (p.bob, alices, p.bob, ForeignKeyViolation),  # own user_id on alice's session
        (p.bob, alices, p.alice, PermissionDenied),  # alice's row: refused by RLS
        (p.alice, alices, p.bob, PermissionDenied),  # own session, another's user_id
        (p.admin, alices, p.bob, ForeignKeyViolation),  # even an admin: the schema refuses
        (p.admin, bobs, p.admin, ForeignKeyViolation),
    ]
    for context, session_id, user_id, error in attempts:
        with pytest.raises(error), ims_db.session(user_id=context) as s:
            s.execute(forge, {"s": session_id, "i": pk, "u": user_id})
    assert all_links(ims_db, p) == []
    # The composite key checks updates too: a link cannot be moved to another user.
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(alices, pk)
    with pytest.raises(ForeignKeyViolation), ims_db.session(user_id=p.admin) as s:
        s.execute("UPDATE ims.session_issues SET user_id = %(u)s", {"u": p.bob})
    assert all_links(ims_db, p) == [(alices, pk, p.alice)]


def test_a_linked_issue_cannot_be_deleted_even_through_a_hidden_session(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    [alices] = crawl(ims_db, p.alice, 1)
    [pk] = issues(ims_db, 1)
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link(alices, pk)
        s.comments.create(pk, {"content": "kept"})
    delete = "DELETE FROM ims.issues WHERE issue_pk = %(pk)s"
    with (
        pytest.raises(ForeignKeyViolation, match="session_issues"),
        ims_db.session(user_id=p.bob) as s,
    ):
        assert s.session_issues.find() == []  # bob cannot see the link ...
        s.execute(delete, {"pk": pk})  # ... and still cannot delete through it
    with ims_db.session(user_id=p.bob) as s:
        assert len(s.execute("SELECT issue_pk FROM ims.issues")) == 1
        assert [c.content for c in s.comments.for_issue(pk)] == ["kept"]
    with ims_db.session(user_id=p.alice) as s:
        assert s.session_issues.unlink(alices, pk) is True
    with ims_db.session(user_id=p.bob) as s:
        s.execute(delete, {"pk": pk})
        assert s.execute("SELECT issue_pk FROM ims.issues") == []
        assert s.comments.for_issue(pk) == []


def test_deleting_a_session_removes_its_links(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [gone, kept] = crawl(ims_db, p.alice, 2)
    a, b = issues(ims_db, 2)
    with ims_db.session(user_id=p.alice) as s:
        s.session_issues.link_many([(gone, a), (gone, b), (kept, a)])
        assert s.crawl_sessions.delete(gone) is True
        assert s.session_issues.for_session(gone) == []
        assert [x.issue_pk for x in s.session_issues.for_session(kept)] == [a]


def test_not_found_message_names_the_session(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    [pk] = issues(ims_db, 1)
    with (
        pytest.raises(
            NotFound, match=re.escape("ims.crawl_sessions has no visible session_id=424242")
        ),
        ims_db.session(user_id=p.alice) as s,
    ):
        s.session_issues.link(424242, pk)
