"""Statements that return their rows as one JSON document (``Session.fetch_json``) and
their check: ``issues.detail``/``find_detailed`` and an application's own statement.

The layer validates the document's text with pydantic instead of letting psycopg load
each value, so these tests compare what comes back with what the typed row path (``get``,
psycopg's own loaders) gives for the same rows: text, JSON, timestamps, order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ims_repo import (
    CrawlSession,
    Database,
    Issue,
    IssueDetail,
    NewAttachment,
    NewIssue,
    NewIssueComment,
    NewIssueHistory,
    Session,
)
from ims_repo.core import loader
from ims_repo.core.loader import QueryFile
from ims_repo.errors import DatabaseError
from ims_repo.services.checks import check_statements, document_rows
from tests.seed import crawl, people

CHILDREN = {"comments", "history", "attachments"}

#: Text PostgreSQL stores but JSON must escape, or that a careless codec would mangle.
ODD = (
    '\x01\x08\t\n\r\x0b\x0c\x1b\x1f\x7f "quoted" back\\slash \\u0000 \\n / </script> '
    "\u00a0\u2028\u2029\ufeff\ufffd\uffff 한국어 e\u0301 🐛 \U0010fffd"
)
#: A JSON object with the same text as keys and values, and numbers JSON parsers disagree on.
ODD_JSON: dict[str, Any] = {
    ODD: ODD,
    "": "",
    "numbers": [0, -1, 0.1 + 0.2, -0.5, 1.5e10, 2.5e-300, 12345678901234567890123, -(2**63)],
    "nested": {"list": [True, False, None, [], {}, [ODD]], ODD: {"": [ODD]}},
}


def new(issue_id: str, **fields: Any) -> NewIssue:
    return NewIssue(
        **({"title": f"Title of {issue_id}", "product": "OpenFrame"} | fields), issue_id=issue_id
    )


def issue_fields(detail: IssueDetail) -> dict[str, Any]:
    return detail.model_dump(exclude=CHILDREN)


def same_as_typed_reads(s: Session, detail: IssueDetail) -> None:
    """``detail`` equals what the typed row path reads for the issue and each child."""
    issue = s.issues.get(detail.issue_pk)
    assert issue is not None and issue_fields(detail) == issue.model_dump()
    assert detail.comments == [s.comments.get(c.comment_id) for c in detail.comments]
    assert detail.history == [s.history.get(h.history_id) for h in detail.history]
    assert detail.attachments == [s.attachments.get(a.attachment_id) for a in detail.attachments]


def add_odd_children(s: Session, pk: int, at: datetime) -> None:
    s.comments.add_many(
        pk, [NewIssueComment(content=ODD, author=ODD, commented_at=at, comment_order=1)]
    )
    s.history.add_many(
        pk, [NewIssueHistory(field_name=ODD, old_value=ODD, new_value=None, changed_at=at)]
    )
    s.attachments.create(
        NewAttachment(issue_pk=pk, filename=ODD, storage_path=ODD, downloaded_at=at)
    )


# --- the JSON round trip -----------------------------------------------------------------


def test_odd_text_and_json_survive_the_document_round_trip(ims_db: Database) -> None:
    at = datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=UTC)
    with ims_db.session() as s:
        pk = s.issues.create(
            new(
                "ODD-1",
                title=ODD,
                description=ODD,
                reporter=ODD,
                url=ODD,
                raw_data=ODD_JSON,
                issue_created_at=at,
            )
        ).issue_pk
        add_odd_children(s, pk, at)
    with ims_db.session() as s:
        detail = s.issues.detail("ODD-1")
        [found] = s.issues.find_detailed(issue_id="ODD-1")
        assert detail is not None and found == detail
        assert detail.title == ODD and detail.raw_data == ODD_JSON
        assert detail.raw_data["numbers"] == ODD_JSON["numbers"]  # 0.1 + 0.2 not rounded
        assert [c.content for c in detail.comments] == [ODD]
        same_as_typed_reads(s, detail)


def test_json_nested_deeper_than_the_json_parser_goes_still_reads(ims_db: Database) -> None:
    """pydantic-core's parser stops at ~200 levels; a jsonb value may be deeper."""
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    with ims_db.session() as s:
        s.issues.create(new("DEEP-1", raw_data={"deep": deep}))
    with ims_db.session() as s:
        [found] = s.issues.find_detailed(issue_id="DEEP-1")
        assert found.raw_data == {"deep": deep}
        same_as_typed_reads(s, found)


@pytest.mark.parametrize("zone", ["America/St_Johns", "Asia/Kolkata", "UTC"])
def test_timestamps_keep_their_instant_and_offset_in_the_sessions_time_zone(
    ims_db: Database, zone: str
) -> None:
    """The document carries timestamps as text in the session's TimeZone (half-hour
    offsets, daylight saving); they read back as the same instants, with the offsets
    psycopg gives the same values."""
    winter = datetime(2026, 1, 15, 23, 59, 59, 999999, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 0, 0, 0, 1, tzinfo=UTC)
    with ims_db.session() as s:
        pk = s.issues.create(new("TZ-1", issue_created_at=winter, issue_updated_at=summer)).issue_pk
        add_odd_children(s, pk, summer)
    with ims_db.session() as s:
        s.execute(f"SET LOCAL TimeZone = '{zone}'")  # a constant of the test, not input
        [found] = s.issues.find_detailed(issue_id="TZ-1")
        issue = s.issues.get(pk)
        assert issue is not None and issue.issue_created_at is not None
    local = ZoneInfo(zone)
    assert (found.issue_created_at, found.issue_updated_at) == (winter, summer)
    assert found.comments[0].commented_at == summer == found.history[0].changed_at
    for ours, psycopgs in [
        (found.issue_created_at, issue.issue_created_at),
        (found.issue_updated_at, issue.issue_updated_at),
        (found.first_crawled_at, issue.first_crawled_at),
    ]:
        assert ours == psycopgs
        assert ours is not None and psycopgs is not None
        assert ours.utcoffset() == psycopgs.utcoffset() == ours.astimezone(local).utcoffset()


# --- pages: empty, large, ordered ----------------------------------------------------------


def test_an_empty_page_is_an_empty_list(ims_db: Database) -> None:
    with ims_db.session() as s:
        assert s.issues.find_detailed() == []
        assert s.issues.find_detailed(product="nothing", limit=10) == []
        assert s.issues.detail("NOPE-1") is None
        assert s.statements_sent == 3


def test_a_large_page_keeps_its_order_when_the_server_sorts_on_disk(ims_db: Database) -> None:
    """3,000 issues (several MB of JSON) in one document, sorted by a key with ties and
    NULLs, with work_mem so small that the aggregate's sort spills to disk."""
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, product, status, description) "
            "SELECT 'BIG-' || n, 'title ' || (n % 7), 'OpenFrame', "
            "       CASE WHEN n % 5 = 0 THEN NULL ELSE 'S' || (n % 3) END, repeat('x', 1500) "
            "FROM generate_series(1, 3000) AS n"
        )
        s.execute(
            "INSERT INTO ims.issue_comments (issue_pk, content, comment_order) "
            "SELECT i.issue_pk, 'comment ' || n, 4 - n "
            "FROM ims.issues AS i CROSS JOIN generate_series(1, 3) AS n"
        )
    order = ["status", "-title"]
    with ims_db.session() as s:
        s.execute("SET LOCAL work_mem = '64kB'")
        detailed = s.issues.find_detailed(order_by=order)
        plain = s.issues.find(order_by=order)
        page = s.issues.find_detailed(order_by=order, limit=500, offset=1000)
    assert len(detailed) == 3000
    assert [issue_fields(d) for d in detailed] == [i.model_dump() for i in plain]
    assert page == detailed[1000:1500]
    assert all(
        [c.content for c in d.comments] == ["comment 3", "comment 2", "comment 1"] for d in detailed
    )


# --- an application's own JSON document statement ---------------------------------------

_SESSION_COLUMNS = ", ".join(CrawlSession.model_fields)
SESSIONS_DOCUMENT = f"""-- name: sessions_document :scalar
-- Every crawl session the context may see, as one JSON array by session_id.
SELECT coalesce(json_agg(d ORDER BY d.session_id), '[]'::json) AS sessions
FROM (
    SELECT {_SESSION_COLUMNS}
    FROM ims.crawl_sessions
) AS d;
"""


def sessions_document(tmp_path: Path, record: type[CrawlSession] = CrawlSession) -> QueryFile:
    path = tmp_path / "documents.sql"
    path.write_text(SESSIONS_DOCUMENT, encoding="utf-8")
    queries = QueryFile(path)
    queries.statement("sessions_document", record=record)
    return queries


def test_an_applications_document_statement_runs_under_row_level_security(
    ims_db: Database, ims_admin_url: str, tmp_path: Path
) -> None:
    p = people(ims_db, ims_admin_url)
    alices = crawl(ims_db, p.alice, 3, session_metadata=ODD_JSON)
    crawl(ims_db, p.bob, 2)
    statement = sessions_document(tmp_path).statements["sessions_document"]
    with ims_db.session(user_id=p.alice) as s:
        mine = s.fetch_json(statement.bind({}), CrawlSession)
        assert [c.session_id for c in mine] == alices
        assert mine == s.crawl_sessions.list_for_user(p.alice)  # the typed rows, equal
        assert mine[0].session_metadata == ODD_JSON
    with ims_db.session() as s:
        assert s.fetch_json(statement.bind({}), CrawlSession) == []  # no context, no rows
    with ims_db.session(user_id=p.admin) as s:
        assert len(s.fetch_json(statement.bind({}), CrawlSession)) == 5
    assert check_statements(ims_admin_url, [sessions_document(tmp_path)]) == []


def test_a_document_that_is_null_is_an_error_naming_the_statement(
    ims_db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "null.sql"
    path.write_text(
        "-- name: none :scalar\n-- json_agg of no rows is NULL: coalesce was forgotten.\n"
        "SELECT json_agg(d) AS sessions\nFROM (\n    SELECT session_id\n"
        "    FROM ims.crawl_sessions\n) AS d;\n",
        encoding="utf-8",
    )
    statement = QueryFile(path).statements["none"]
    with ims_db.session() as s, pytest.raises(DatabaseError, match=r"null\.sql:1: null\.none"):
        s.fetch_json(statement.bind({}), CrawlSession)


# --- the check of document statements -----------------------------------------------------


class SessionPlus(CrawlSession):
    nickname: str


class SessionAge(CrawlSession):
    age: timedelta


def check_one(ims_admin_url: str, tmp_path: Path, text: str, record: type[Any]) -> list[str]:
    path = tmp_path / "probe.sql"
    path.write_text(text, encoding="utf-8")
    queries = QueryFile(path)
    [name] = queries.statements
    queries.statement(name, record=record)
    return [problem.message for problem in check_statements(ims_admin_url, [queries])]


def test_the_check_compares_a_documents_rows_with_its_record(
    ims_admin_url: str, tmp_path: Path
) -> None:
    assert check_one(ims_admin_url, tmp_path, SESSIONS_DOCUMENT, SessionPlus) == [
        "SessionPlus has field 'nickname' that the statement does not return"
    ]
    with_age = SESSIONS_DOCUMENT.replace(
        f"SELECT {_SESSION_COLUMNS}", f"SELECT {_SESSION_COLUMNS}, now() - started_at AS age"
    )
    assert check_one(ims_admin_url, tmp_path, with_age, SessionAge) == [
        "column 'age' is interval, whose JSON text does not read back into SessionAge; "
        "convert it in the statement"
    ]
    as_text = SESSIONS_DOCUMENT.replace("'[]'::json) AS sessions", "'[]'::json)::text AS sessions")
    assert check_one(ims_admin_url, tmp_path, as_text, CrawlSession) == [
        "a :scalar statement with a record (CrawlSession) returns its rows as one JSON "
        "document, but its column is text, not json"
    ]
    no_derived_table = (
        "-- name: flat :scalar\n-- Sessions aggregated straight from the table.\n"
        "SELECT coalesce(json_agg(s), '[]'::json) AS sessions\nFROM ims.crawl_sessions AS s;\n"
    )
    assert check_one(ims_admin_url, tmp_path, no_derived_table, CrawlSession) == [
        "a :scalar statement with a record (CrawlSession) must aggregate one derived "
        "table: SELECT coalesce(json_agg(d ORDER BY …), '[]'::json) FROM (<rows>) AS d"
    ]


def test_document_rows_reads_past_parentheses_and_from_in_literals_and_comments() -> None:
    [statement] = loader.parse(
        "t.sql",
        "-- name: t :scalar\n-- A document whose strings and comments look like SQL.\n"
        "SELECT coalesce(json_agg(d ORDER BY {order_by}), '[]'::json) -- FROM (x)\n"
        "FROM (\n"
        "    SELECT ')' AS a, 'FROM (' AS \"FROM (\" /* ) FROM ( */\n"
        "    FROM ims.users\n"
        "    WHERE user_id = :user_id AND {filters}\n"
        ") AS d;\n",
    )
    assert document_rows(statement) == (
        "SELECT ')' AS a, 'FROM (' AS \"FROM (\" /* ) FROM ( */\n"
        "    FROM ims.users\n"
        "    WHERE user_id = $1 AND TRUE"
    )
    for not_a_document in (
        "SELECT 1 AS x",
        "SELECT json_agg(d) AS x FROM (SELECT 1 AS y) AS d WHERE TRUE",
        "SELECT json_agg(d) AS x FROM (SELECT 1 AS y) AS d, ims.users",
        "SELECT json_agg(d) AS x FROM ims.users AS d",
    ):
        [other] = loader.parse("t.sql", f"-- name: t :scalar\n-- Not one.\n{not_a_document};\n")
        assert document_rows(other) is None, not_a_document


def test_the_packaged_document_statements_are_checked_against_issue_detail() -> None:
    """detail and find_detailed are documents of IssueDetail, so the check compares
    their rows with its fields (test_statements runs it on the live schema)."""
    for name in ("detail", "find_detailed"):
        statement = loader.load("issues").statements[name]
        assert statement.kind is loader.ResultKind.SCALAR and statement.record is IssueDetail
        rows = document_rows(statement)
        assert rows is not None and rows.startswith("SELECT i.issue_pk, i.issue_id")
    assert Issue.model_fields.keys() < IssueDetail.model_fields.keys()
