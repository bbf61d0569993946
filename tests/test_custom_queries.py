"""The escape hatch (SPEC §4, "OR across columns, other ad-hoc shapes"): an application's
own ``.sql`` file and typed functions, ``docs/examples/reports.{sql,py}``, loaded from the
repository and run on a small data set, under the same RLS and the same schema check."""

from __future__ import annotations

from dataclasses import dataclass

from docs.examples import reports
from ims_repo import Database
from ims_repo.services.checks import check_statements
from tests.seed import People, crawl, people

ISSUES = [
    # issue_id, priority, severity
    ("OF-1", "High", "Minor"),
    ("OF-2", "Low", "Critical"),
    ("OF-3", "High", "Critical"),
    ("OF-4", "Low", "Minor"),
    ("OF-5", None, None),
]


@dataclass(frozen=True)
class Data:
    people: People
    issue_pks: dict[str, int]
    alice_session: int
    bob_session: int


def load(db: Database, owner_url: str) -> Data:
    """Five OpenFrame issues and one ProObject issue; alice's session crawled OF-3 then
    OF-1 (and the ProObject one), bob's session crawled OF-3."""
    who = people(db, owner_url)
    [alice_session] = crawl(db, who.alice, 1)
    [bob_session] = crawl(db, who.bob, 1)
    with db.session() as s:
        rows = [
            s.execute(
                "INSERT INTO ims.issues (issue_id, title, product, priority, severity) "
                "VALUES (%(id)s, %(title)s, %(product)s, %(priority)s, %(severity)s) "
                "RETURNING issue_pk, issue_id",
                {
                    "id": issue_id,
                    "title": f"title of {issue_id}",
                    "product": "OpenFrame",
                    "priority": priority,
                    "severity": severity,
                },
            )[0]
            for issue_id, priority, severity in ISSUES
        ]
        rows += s.execute(
            "INSERT INTO ims.issues (issue_id, title, product, priority) "
            "VALUES ('PO-1', 'title of PO-1', 'ProObject', 'High') RETURNING issue_pk, issue_id"
        )
    pks = {row["issue_id"]: row["issue_pk"] for row in rows}
    links = [
        (who.alice, alice_session, [("OF-3", 1), ("OF-1", 2), ("PO-1", 3)]),
        (who.bob, bob_session, [("OF-3", 1)]),
    ]
    for user_id, session_id, crawled in links:
        with db.session(user_id=user_id) as s:
            for issue_id, order in crawled:
                s.execute(
                    "INSERT INTO ims.session_issues (session_id, issue_pk, user_id, crawl_order) "
                    "VALUES (%(s)s, %(i)s, %(u)s, %(o)s)",
                    {"s": session_id, "i": pks[issue_id], "u": user_id, "o": order},
                )
    return Data(who, pks, alice_session, bob_session)


def test_or_across_columns(ims_db: Database, ims_admin_url: str) -> None:
    data = load(ims_db, ims_admin_url)
    with ims_db.session() as s:
        urgent = reports.urgent_issues(s)  # High OR Critical
        assert s.statements_sent == 1
        assert [i.issue_id for i in urgent] == ["OF-1", "OF-2", "OF-3", "PO-1"]
        assert urgent[0] == reports.UrgentIssue(
            issue_pk=data.issue_pks["OF-1"],
            issue_id="OF-1",
            title="title of OF-1",
            product="OpenFrame",
            status=None,
            priority="High",
            severity="Minor",
        )
        low_or_minor = reports.urgent_issues(s, priority="Low", severity="Minor")
        assert [i.issue_id for i in low_or_minor] == ["OF-1", "OF-2", "OF-4"]
        assert reports.urgent_issues(s, priority="x' OR '1'='1", severity="--") == []


def test_multi_join_follows_row_level_security(ims_db: Database, ims_admin_url: str) -> None:
    data = load(ims_db, ims_admin_url)
    p = data.people
    with ims_db.session(user_id=p.alice) as s:
        mine = reports.who_crawled(s, "OpenFrame")
        assert s.statements_sent == 1
    assert [(r.username, r.session_id, r.issue_id, r.crawl_order) for r in mine] == [
        ("alice", data.alice_session, "OF-3", 1),
        ("alice", data.alice_session, "OF-1", 2),
    ]
    assert mine[1].title == "title of OF-1"
    with ims_db.session(user_id=p.admin) as s:
        everyone = reports.who_crawled(s, "OpenFrame")
        assert [(r.username, r.issue_id) for r in everyone] == [
            ("alice", "OF-3"),
            ("alice", "OF-1"),
            ("bob", "OF-3"),
        ]
        assert [r.issue_id for r in reports.who_crawled(s, "ProObject")] == ["PO-1"]
    with ims_db.session(user_id=p.bob) as s:
        assert [(r.username, r.session_id) for r in reports.who_crawled(s, "OpenFrame")] == [
            ("bob", data.bob_session)
        ]
    with ims_db.session() as s:  # no context: no crawl data
        assert reports.who_crawled(s, "OpenFrame") == []


def test_the_examples_pass_the_schema_check(ims_admin_url: str) -> None:
    assert set(reports.SQL.statements) == {"urgent_issues", "who_crawled"}
    assert check_statements(ims_admin_url, files=[reports.SQL]) == []
    assert check_statements(ims_admin_url, files=[reports.SQL], report_unused=True) == []
