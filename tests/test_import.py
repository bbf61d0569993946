"""``import_file`` and ``ims-repo import``: bulk import of crawled issues from JSON Lines,
as the runtime login (row-level security applies) or as a superuser acting as it."""

from __future__ import annotations

import json
import logging
import os
import pty
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import make_conninfo

from ims_repo import Database, InvalidInput, NotFound, Session
from ims_repo.core import loader
from ims_repo.faces.cli import import_command, main
from ims_repo.services.checks import check_statements
from ims_repo.services.importer import (
    ImportFailed,
    ImportReport,
    Rejected,
    import_file,
    parse_line,
    summary,
)
from tests.seed import People, crawl, people

CHECKSUM = "ab" * 32
STATEMENTS_PER_BATCH = 14  # upsert_many's 10, 3 child lists, links


def issue(n: int, **fields: Any) -> dict[str, Any]:
    return {"issue_id": f"IMS-{n:06d}", "title": f"이슈 {n}", "product": "OpenFrame", **fields}


def full_issue(n: int) -> dict[str, Any]:
    """An issue with two comments, one history entry and one attachment."""
    return issue(
        n,
        status="Open",
        raw_data={"n": n},
        crawl_duration_ms=10 * n,
        comments=[
            {"content": f"first on {n}", "author": "kim", "comment_order": 1},
            {"content": f"second on {n}", "commented_at": "2026-11-02T09:00:00Z"},
        ],
        history=[{"field_name": "status", "old_value": "New", "new_value": "Open"}],
        attachments=[{"filename": f"log-{n}.txt", "file_size": 120, "checksum_sha256": CHECKSUM}],
    )


def write(path: Path, *lines: Any) -> Path:
    """A JSON Lines file: dicts are dumped, str and bytes written as they are."""
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, bytes):
                out.write(line + b"\n")
            elif isinstance(line, str):
                out.write(line.encode() + b"\n")
            else:
                out.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
    return path


def children(s: Session, issue_id: str) -> tuple[list[Any], list[Any], list[Any]]:
    detail = s.issues.detail(issue_id)
    assert detail is not None, issue_id
    return detail.comments, detail.history, detail.attachments


def counts(s: Session) -> tuple[int, int, int, int]:
    [row] = s.execute(
        "SELECT (SELECT count(*) FROM ims.issues) AS i, (SELECT count(*) FROM ims.issue_comments) AS c,"
        " (SELECT count(*) FROM ims.issue_history) AS h, (SELECT count(*) FROM ims.attachments) AS a"
    )
    return row["i"], row["c"], row["h"], row["a"]


@pytest.fixture
def p(ims_db: Database, ims_admin_url: str) -> People:
    return people(ims_db, ims_admin_url)


# --- the statements -------------------------------------------------------------------


def test_the_import_statements_match_the_schema(ims_admin_url: str) -> None:
    imports = loader.load("imports")
    assert set(imports.statements) == set(imports.registered)  # all used by importer.py
    assert check_statements(ims_admin_url, [imports]) == []


# --- a good file ------------------------------------------------------------------------


def test_a_good_file_is_imported_with_children_and_links_in_few_statements(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(tmp_path / "crawl.jsonl", *(full_issue(n) for n in range(1, 6)))
    with ims_db.session(user_id=p.alice) as s:
        report = import_file(s, path, session_id=session_id, batch_size=2)
        # 2 up front (the user, the session), then one fixed set per batch of 2, 2, 1
        assert s.statements_sent == 2 + 3 * STATEMENTS_PER_BATCH

    assert (report.lines_read, report.issues_stored, report.rejected, report.batches) == (
        5,
        5,
        0,
        3,
    )
    assert (report.issues_inserted, report.issues_updated, report.issues_unchanged) == (5, 0, 0)
    assert (report.comments_added, report.history_added, report.attachments_added) == (10, 5, 5)
    assert (report.comments_removed, report.history_removed, report.attachments_removed) == (
        0,
        0,
        0,
    )
    assert (report.links_added, report.links_updated) == (5, 0)
    assert report.last_committed_line == 5
    assert report.bytes_read == path.stat().st_size
    assert (report.session_id, report.session_created) == (session_id, False)

    with ims_db.session(user_id=p.alice) as s:
        comments, history, attachments = children(s, "IMS-000003")
        assert [(c.content, c.author, c.comment_order) for c in comments] == [
            ("first on 3", "kim", 1),
            ("second on 3", None, None),
        ]
        assert comments[1].commented_at is not None
        assert comments[1].commented_at.isoformat() == "2026-11-02T09:00:00+00:00"
        assert [(h.field_name, h.old_value, h.new_value) for h in history] == [
            ("status", "New", "Open")
        ]
        assert [(a.filename, a.file_size, a.session_id) for a in attachments] == [
            ("log-3.txt", 120, session_id)  # downloaded by the import's session
        ]
        crawled = s.crawl_sessions.issues(session_id)
        assert [(c.issue.issue_id, c.crawl_order, c.crawl_duration_ms) for c in crawled] == [
            (f"IMS-{n:06d}", n, 10 * n) for n in range(1, 6)
        ]
        stored = s.issues.get_by_issue_id("IMS-000002")
        assert stored is not None
        assert (stored.status, stored.raw_data, stored.crawl_count) == ("Open", {"n": 2}, 1)


def test_progress_is_reported_after_each_committed_batch(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(tmp_path / "crawl.jsonl", *(issue(n) for n in range(7)))
    seen: list[tuple[int, int, int]] = []

    def progress(report: ImportReport) -> None:
        seen.append((report.batches, report.issues_stored, report.last_committed_line))
        with ims_db.session(user_id=p.alice) as other:  # committed: another session sees it
            assert other.issues.count() == report.issues_stored

    import_file(
        ims_db, path, user_id=p.alice, session_id=session_id, batch_size=3, on_progress=progress
    )
    assert seen == [(1, 3, 3), (2, 6, 6), (3, 7, 7)]


# --- bad lines --------------------------------------------------------------------------


def test_bad_lines_are_rejected_with_line_and_reason_and_the_good_ones_all_stored(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(
        tmp_path / "mixed.jsonl",
        issue(1),  # 1
        '{"issue_id": "IMS-X", "title": ',  # 2: cut short
        issue(3, status=7),  # 3: wrong type
        "",  # 4: blank
        issue(5, title="a\u0000b"),  # 5: NUL (escaped in JSON)
        b'{"issue_id": "IMS-6", "title": "a\x00b", "product": "P"}',  # 6: raw NUL byte
        {"issue_id": "IMS-000007", "product": "OpenFrame"},  # 7: no title
        "[1, 2]",  # 8: not an object
        issue(9, comments=[{"author": "kim"}, {"content": "ok"}]),  # 9: bad comment
        b'{"issue_id": "IMS-10", "title": "caf\xe9", "product": "P"}',  # 10: Latin-1
        issue(11, colour="red"),  # 11: unknown field
        issue(12, attachments=[{"filename": "a", "issue_pk": 1}]),  # 12: issue_pk given
        issue(13, history="status changed"),  # 13: not an array
        issue(14, crawl_duration_ms=-1),  # 14: negative duration
        '{"issue_id": "IMS-15", "title": "t", "product": "P", "raw_data": {"x": NaN}}',  # 15
        issue(16, comments=[{"content": "fine", "comment_order": 2}]),  # 16
        "   ",  # 17: blank
        issue(18, issue_created_at="yesterday"),  # 18
        issue(19),  # 19
    )
    with ims_db.session(user_id=p.alice) as s:
        report = import_file(s, path, session_id=session_id, batch_size=4)

    assert [str(r) for r in report.rejects] == [
        "line 2: not JSON: Expecting value (column 32)",
        "line 3: issues.status: Input should be a valid string",
        "line 5: issues.title: Value error, text contains a NUL character (U+0000), "
        "which PostgreSQL cannot store",
        "line 6: not JSON: Invalid control character (column 34)",
        "line 7: issues.title: Field required",
        "line 8: not a JSON object but an array",
        "line 9: comments[0].content: Field required",
        "line 10: not UTF-8: byte 37 is 0xe9",
        "line 11: issues.colour: Extra inputs are not permitted",
        "line 12: attachments[0].issue_pk: not allowed (the line's issue is meant)",
        "line 13: history: must be an array of objects, not a string",
        "line 14: crawl_duration_ms: Input should be greater than or equal to 0",
        "line 15: not JSON: NaN is not a JSON number",
        "line 18: issues.issue_created_at: Input should be a valid datetime or date, "
        "input is too short",
    ]
    assert (report.rejected, report.blank_lines, report.issues_stored) == (14, 2, 3)
    assert report.lines_read == 19
    with ims_db.session(user_id=p.alice) as s:
        assert [i.issue_id for i in s.issues.find()] == ["IMS-000001", "IMS-000016", "IMS-000019"]
        assert [c.crawl_order for c in s.crawl_sessions.issues(session_id)] == [1, 16, 19]
        assert [c.content for c in children(s, "IMS-000016")[0]] == ["fine"]
        assert counts(s) == (3, 1, 0, 0)


def test_several_problems_of_one_line_are_all_named(tmp_path: Path) -> None:
    line = json.dumps({"issue_id": "", "comments": [{}], "history": [{"field_name": ""}]})
    parsed = parse_line(4, line.encode())
    assert parsed == Rejected(
        4,
        "issues.issue_id: String should have at least 1 character; "
        "issues.title: Field required; issues.product: Field required; "
        "comments[0].content: Field required; "
        "history[0].field_name: String should have at least 1 character",
    )
    assert parse_line(1, b"\xef\xbb\xbf  \r\n") is None  # a BOM and a blank line
    assert parse_line(2, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000) == Rejected(
        2, "not JSON: nested too deeply"
    )


# --- re-imports ---------------------------------------------------------------------------


def test_a_reimport_duplicates_no_child_rewrites_nothing_and_bumps_crawl_count(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    first_session, second_session = crawl(ims_db, p.alice, 2)
    path = write(tmp_path / "crawl.jsonl", *(full_issue(n) for n in range(1, 4)))
    import_file(ims_db, path, user_id=p.alice, session_id=first_session)
    with ims_db.session(user_id=p.alice) as s:
        before = {n: children(s, f"IMS-{n:06d}") for n in range(1, 4)}

    again = import_file(ims_db, path, user_id=p.alice, session_id=first_session)
    assert (again.issues_inserted, again.issues_updated, again.issues_unchanged) == (0, 0, 3)
    assert (again.comments_added, again.comments_removed) == (0, 0)
    assert (again.history_added, again.history_removed) == (0, 0)
    assert (again.attachments_added, again.attachments_removed) == (0, 0)
    assert (again.links_added, again.links_updated) == (0, 0)  # same session: no Duplicate

    elsewhere = import_file(ims_db, path, user_id=p.alice, session_id=second_session)
    assert (elsewhere.links_added, elsewhere.comments_added, elsewhere.attachments_added) == (
        3,
        0,
        0,
    )
    with ims_db.session(user_id=p.alice) as s:
        after = {n: children(s, f"IMS-{n:06d}") for n in range(1, 4)}
        assert after == before  # same rows, same ids: history times were not reset either
        assert after[1][2][0].session_id == first_session  # the first download is kept
        assert {i.crawl_count for i in s.issues.find()} == {3}
        assert counts(s) == (3, 6, 3, 3)
        assert [len(s.crawl_sessions.issues(x)) for x in (first_session, second_session)] == [3, 3]


def test_a_recrawl_replaces_changed_lists_keeps_absent_ones_and_clears_empty_ones(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    first = write(tmp_path / "first.jsonl", *(full_issue(n) for n in range(1, 5)))
    import_file(ims_db, first, user_id=p.alice, session_id=session_id)
    with ims_db.session(user_id=p.alice) as s:
        untouched = children(s, "IMS-000001")

    changed = full_issue(2)
    changed["comments"].append({"content": "a third comment"})
    no_lists = issue(3, status="Closed")  # no comments/history/attachments keys
    cleared = issue(4, comments=[], history=[], attachments=[])
    second = write(tmp_path / "second.jsonl", full_issue(1), changed, no_lists, cleared)
    report = import_file(ims_db, second, user_id=p.alice, session_id=session_id)

    # Issue 2's comments are rewritten (2 out, 3 in), issue 4's cleared (2 out).
    assert (report.comments_added, report.comments_removed) == (3, 4)
    assert (report.history_added, report.history_removed) == (0, 1)
    assert (report.attachments_added, report.attachments_removed) == (0, 1)
    assert (report.issues_updated, report.issues_unchanged) == (1, 3)  # only 3's status changed
    with ims_db.session(user_id=p.alice) as s:
        assert children(s, "IMS-000001") == untouched
        assert [c.content for c in children(s, "IMS-000002")[0]] == [
            "first on 2",
            "second on 2",
            "a third comment",
        ]
        kept = children(s, "IMS-000003")
        assert [len(x) for x in kept] == [2, 1, 1]
        assert [len(x) for x in children(s, "IMS-000004")] == [0, 0, 0]
        stored = s.issues.get_by_issue_id("IMS-000003")
        assert stored is not None
        assert (stored.status, stored.raw_data) == ("Closed", {"n": 3})  # raw_data kept


def test_the_same_issue_twice_in_a_file_the_later_line_wins(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(
        tmp_path / "twice.jsonl",
        issue(1, status="New", comments=[{"content": "old"}]),
        issue(2),
        issue(1, status="Open", comments=[{"content": "new"}]),
        issue(1, priority="High"),  # no comments key: the list from line 3 stands
    )
    for batch_size in (10, 1):  # in one batch, and across batches
        with ims_db.session(user_id=p.alice) as s:
            s.execute("DELETE FROM ims.session_issues")
            s.execute("DELETE FROM ims.issues")
        report = import_file(
            ims_db, path, user_id=p.alice, session_id=session_id, batch_size=batch_size
        )
        assert report.issues_stored == 4
        with ims_db.session(user_id=p.alice) as s:
            stored = s.issues.get_by_issue_id("IMS-000001")
            assert stored is not None
            assert (stored.status, stored.priority, stored.crawl_count) == ("Open", "High", 3)
            assert [c.content for c in children(s, "IMS-000001")[0]] == ["new"]
            orders = {c.issue.issue_id: c.crawl_order for c in s.crawl_sessions.issues(session_id)}
            assert orders == {"IMS-000001": 4, "IMS-000002": 2}


# --- sessions and row-level security ---------------------------------------------------


def test_a_new_session_is_created_for_the_user_and_completed(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    path = write(tmp_path / "crawl.jsonl", *(issue(n) for n in range(3)))
    report = import_file(
        ims_db,
        path,
        user_id=p.bob,
        new_session={"product": "OpenFrame", "original_query": "crash on start"},
    )
    assert report.session_created
    with ims_db.session(user_id=p.bob) as s:
        [created] = s.crawl_sessions.list_for_user(p.bob)
        assert created.session_id == report.session_id
        assert (created.user_id, created.product, created.original_query) == (
            p.bob,
            "OpenFrame",
            "crash on start",
        )
        assert (created.status, created.total_issues) == ("completed", 3)
        assert created.started_at is not None and created.completed_at is not None
        assert created.completed_at >= created.started_at
    with ims_db.session(user_id=p.alice) as s:
        assert s.crawl_sessions.get(created.session_id) is None  # bob's own


def test_importing_into_another_users_session_is_refused_and_stores_nothing(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    [bobs] = crawl(ims_db, p.bob, 1)
    path = write(tmp_path / "crawl.jsonl", issue(1))
    with pytest.raises(NotFound, match=f"crawl session {bobs} is not visible to user {p.alice}"):
        import_file(ims_db, path, user_id=p.alice, session_id=bobs)
    with pytest.raises(NotFound, match="there is no user with user_id=999"):
        import_file(ims_db, path, user_id=999, new_session={"product": "P", "original_query": "q"})
    with pytest.raises(InvalidInput, match="not the importing user"):
        import_file(
            ims_db,
            path,
            user_id=p.alice,
            new_session={"user_id": p.bob, "product": "P", "original_query": "q"},
        )
    with ims_db.session(user_id=p.admin) as s:
        assert counts(s) == (0, 0, 0, 0)
        assert len(s.crawl_sessions.find()) == 1
    # The admin may import into anyone's session; the links stay bob's.
    import_file(ims_db, path, user_id=p.admin, session_id=bobs)
    with ims_db.session(user_id=p.bob) as s:
        assert [link.user_id for link in s.session_issues.for_session(bobs)] == [p.bob]


def test_arguments_are_checked_before_anything_runs(ims_db: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "crawl.jsonl", issue(1))
    with pytest.raises(InvalidInput, match="exactly one"):
        import_file(ims_db, path, user_id=1)
    with pytest.raises(InvalidInput, match="batch_size"):
        import_file(ims_db, path, user_id=1, session_id=1, batch_size=0)
    with pytest.raises(InvalidInput, match="user_id is required"):
        import_file(ims_db, path, session_id=1)
    with ims_db.session(user_id=1) as s, pytest.raises(InvalidInput, match="context"):
        import_file(s, path, user_id=2, session_id=1)


# --- failures -----------------------------------------------------------------------------


def test_a_line_the_server_refuses_is_found_rejected_and_its_batch_otherwise_stored(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    """comment_order 3e9 passes validation (an int) but not the integer column: the
    batch is rolled back, then stored in halves until the one refused line is left."""
    [session_id] = crawl(ims_db, p.alice, 1)
    lines = [full_issue(n) for n in range(1, 11)]
    lines[5]["comments"][0]["comment_order"] = 3_000_000_000  # line 6
    path = write(tmp_path / "crawl.jsonl", *lines)
    report = import_file(ims_db, path, user_id=p.alice, session_id=session_id, batch_size=4)

    assert report.rejects == [
        Rejected(
            6,
            'refused by the database (comments): value "3000000000" is out of range for '
            "type integer",
        )
    ]
    assert (report.issues_stored, report.batches, report.split_batches) == (9, 3, 2)
    assert (report.comments_added, report.links_added) == (18, 9)
    with ims_db.session(user_id=p.alice) as s:
        # Line 6 left nothing behind: not its issue, nor its history, nor a link.
        assert s.issues.get_by_issue_id("IMS-000006") is None
        assert counts(s) == (9, 18, 9, 9)
        assert [c.crawl_order for c in s.crawl_sessions.issues(session_id)] == [
            1,
            2,
            3,
            4,
            5,
            7,
            8,
            9,
            10,
        ]


def test_a_crash_mid_file_keeps_committed_batches_loses_only_the_one_in_flight(
    ims_db: Database, ims_admin_url: str, p: People, tmp_path: Path
) -> None:
    """The connection dies during the third batch: the first two are stored, the third
    not at all, the report says where to resume, and resuming completes the file."""
    path = write(tmp_path / "crawl.jsonl", *(full_issue(n) for n in range(1, 11)))
    batches = 0

    def kill_the_connection_after_two_batches(report: ImportReport) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            with psycopg.connect(ims_admin_url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'ims_repo import test'"
                )

    url = make_conninfo(ims_db.conninfo, application_name="ims_repo import test")
    with Database(url, min_size=1, max_size=1) as db, pytest.raises(ImportFailed) as failed:
        import_file(
            db,
            path,
            user_id=p.alice,
            new_session={"product": "OpenFrame", "original_query": "q"},
            batch_size=3,
            on_progress=kill_the_connection_after_two_batches,
        )
    report = failed.value.report
    assert (report.batches, report.issues_stored, report.last_committed_line) == (2, 6, 6)
    message = str(failed.value)
    assert message.startswith("import stopped after line 6: ")
    assert message.endswith(
        "; lines 7 to 9 (the batch in flight) were rolled back; "
        "lines 1 to 6 are stored: resume with from_line=7"
    )
    assert isinstance(failed.value.__cause__, Exception)

    with ims_db.session(user_id=p.alice) as s:
        assert counts(s) == (6, 12, 6, 6)
        assert report.session_id is not None
        assert len(s.crawl_sessions.issues(report.session_id)) == 6

    resumed = import_file(ims_db, path, user_id=p.alice, session_id=report.session_id, from_line=7)
    assert (resumed.skipped_lines, resumed.issues_stored, resumed.issues_inserted) == (6, 4, 4)
    with ims_db.session(user_id=p.alice) as s:
        assert counts(s) == (10, 20, 10, 10)
        assert {i.crawl_count for i in s.issues.find()} == {1}
        assert [c.crawl_order for c in s.crawl_sessions.issues(report.session_id)] == list(
            range(1, 11)
        )


# --- the command --------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(import_command, list(args), catch_exceptions=False)


def test_the_command_imports_as_the_runtime_login(
    ims_db: Database, ims_app_url: str, p: People, tmp_path: Path
) -> None:
    path = write(tmp_path / "crawl.jsonl", *(full_issue(n) for n in range(1, 4)), "")
    result = run(
        str(path),
        "--database",
        ims_app_url,
        "--user",
        str(p.alice),
        "--new-session",
        "--product",
        "OpenFrame",
        "--query",
        "timeout",
    )
    assert result.exit_code == 0, result.output
    with ims_db.session(user_id=p.alice) as s:
        [created] = s.crawl_sessions.list_for_user(p.alice)
        assert (created.original_query, created.status, created.total_issues) == (
            "timeout",
            "completed",
            3,
        )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"read 4 lines from {path} into crawl session {created.session_id} (new) in "
    )
    assert lines[1:] == [
        "issues: 3 stored (3 inserted, 0 updated, 0 unchanged), 0 rejected, 1 blank lines",
        "comments: 6 added, 0 removed; history: 3 added, 0 removed; "
        "attachments: 3 added, 0 removed",
        "links: 3 added, 0 updated",
    ]
    assert "importing" not in result.output  # no progress bar off a terminal


def test_the_command_reports_rejects_writes_them_all_and_exits_3(
    ims_db: Database, ims_app_url: str, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(tmp_path / "crawl.jsonl", *(("nope" if n % 2 else issue(n)) for n in range(50)))
    rejects = tmp_path / "rejects.txt"
    result = run(
        str(path),
        *("--database", ims_app_url, "--user", str(p.alice), "--session", str(session_id)),
        *("--rejects", str(rejects), "--batch-size", "7"),
    )
    assert result.exit_code == 3, result.output
    out = result.stdout.splitlines()
    assert (
        out[1]
        == "issues: 25 stored (25 inserted, 0 updated, 0 unchanged), 25 rejected, 0 blank lines"
    )
    assert out[4] == "rejected lines (first 20):"
    assert out[5] == "  line 2: not JSON: Expecting value (column 1)"
    assert out[-2:] == ["  … and 5 more", f"all 25 rejected lines are in {rejects}"]
    assert rejects.read_text().splitlines() == [
        f"line {n}: not JSON: Expecting value (column 1)" for n in range(2, 51, 2)
    ]


def test_the_command_as_a_superuser_acts_as_the_runtime_role_so_rls_still_applies(
    ims_db: Database, ims_admin_url: str, p: People, tmp_path: Path
) -> None:
    [bobs] = crawl(ims_db, p.bob, 1)
    path = write(tmp_path / "crawl.jsonl", issue(1))
    common = ("--database", ims_admin_url, str(path))
    refused = run(*common, "--user", str(p.alice), "--session", str(bobs))
    assert refused.exit_code == 1
    assert "note: the login bypasses row-level security; acting as ims_app" in refused.stderr
    assert f"Error: crawl session {bobs} is not visible to user {p.alice}" in refused.stderr
    assert "nothing was imported" in refused.stderr

    done = run(*common, "--user", str(p.bob), "--session", str(bobs))
    assert done.exit_code == 0, done.output
    with ims_db.session(user_id=p.bob) as s:
        assert len(s.crawl_sessions.issues(bobs)) == 1
        [entry] = s.audit.find(table_name="issues")
        assert entry.user_id == p.bob  # the context was set: audited as bob


def test_the_command_refuses_unclear_options(ims_app_url: str, tmp_path: Path) -> None:
    path = str(write(tmp_path / "crawl.jsonl", issue(1)))
    db = ("--database", ims_app_url, "--user", "1")
    both = run(path, *db, "--session", "1", "--new-session", "--product", "P", "--query", "q")
    assert both.exit_code == 2
    assert "give either --session ID or --new-session" in both.output
    half = run(path, *db, "--new-session", "--product", "P")
    assert half.exit_code == 2
    assert "--new-session needs --product and --query" in half.output
    missing = run(str(tmp_path / "absent.jsonl"), *db, "--session", "1")
    assert missing.exit_code == 2
    assert "is not a file" in missing.output


def test_the_summary_of_a_report() -> None:
    report = ImportReport(
        source="x.jsonl",
        session_id=4,
        lines_read=3,
        issues_stored=2,
        issues_inserted=2,
        rejected=1,
        rejects=[Rejected(2, "not JSON: Expecting value (column 1)")],
        seconds=2.0,
    )
    assert summary(report) == [
        "read 3 lines from x.jsonl into crawl session 4 in 2.0 s (2 lines/s)",
        "issues: 2 stored (2 inserted, 0 updated, 0 unchanged), 1 rejected, 0 blank lines",
        "comments: 0 added, 0 removed; history: 0 added, 0 removed; attachments: 0 added, 0 removed",
        "links: 0 added, 0 updated",
        "rejected lines:",
        "  line 2: not JSON: Expecting value (column 1)",
    ]


# --- memory -------------------------------------------------------------------------------


def generate(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            line = issue(
                n,
                description="본문 " * 20,
                comments=[{"content": f"comment {n}"}],
                history=[{"field_name": "status", "new_value": "Open"}],
            )
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


@pytest.mark.slow
def test_memory_stays_bounded_whatever_the_file_size(
    ims_db: Database, p: People, tmp_path: Path
) -> None:
    """The traced peak of a 200k-line import is about that of a 50k-line one: memory
    holds one batch (and the first rejects), not the file."""
    peaks: dict[int, int] = {}
    rates: dict[int, float] = {}
    for count in (50_000, 200_000):
        path = generate(tmp_path / f"{count}.jsonl", count)
        tracemalloc.start()
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            started = time.perf_counter()
            report = import_file(
                ims_db,
                path,
                user_id=p.alice,
                new_session={"product": "OpenFrame", "original_query": f"{count}"},
            )
            rates[count] = count / (time.perf_counter() - started)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.issues_stored == count
        peaks[count] = peak - baseline
        path.unlink()
    print(f"\ntraced peak: {peaks}; lines/s under tracemalloc: {rates}")
    assert peaks[200_000] < 1.25 * peaks[50_000], peaks
    assert peaks[200_000] < 16 * 2**20, peaks  # a batch, not 200k lines (~65 MB of JSON)


def test_the_command_shows_a_progress_bar_on_a_terminal_only(
    ims_db: Database, ims_app_url: str, p: People, tmp_path: Path
) -> None:
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(tmp_path / "crawl.jsonl", *(issue(n) for n in range(30)))
    code = "from ims_repo.faces.cli import import_command; import_command()"
    args = [str(path), "--database", ims_app_url, "--user", str(p.alice)]
    args += ["--session", str(session_id), "--batch-size", "10"]
    terminal, stderr = pty.openpty()  # stderr is a terminal, stdout a pipe
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=stderr, timeout=60
        )
        os.close(stderr)
        shown = b""
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the other end is closed and everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0, (done.stdout, shown)
    assert b"importing" in shown and b"100%" in shown
    assert b"importing" not in done.stdout
    assert done.stdout.decode().splitlines()[1].startswith("issues: 30 stored (30 inserted")


def fail_comments_saying_boom(admin_url: str) -> None:
    """A trigger (set up by the owner) that fails the comment 'boom' with an error that
    is not about data (SQLSTATE P0001), as a full disk would."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION ims.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.content = 'boom' THEN RAISE EXCEPTION 'the disk is full'; END IF; "
            "RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON ims.issue_comments "
            "FOR EACH ROW EXECUTE FUNCTION ims.boom()"
        )


def test_after_a_failure_the_callers_session_is_usable_again(
    ims_db: Database, ims_admin_url: str, p: People, tmp_path: Path
) -> None:
    fail_comments_saying_boom(ims_admin_url)
    [session_id] = crawl(ims_db, p.alice, 1)
    path = write(tmp_path / "crawl.jsonl", issue(1), issue(2, comments=[{"content": "boom"}]))
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(ImportFailed, match="the disk is full") as failed:
            import_file(s, path, session_id=session_id, batch_size=1)
        assert failed.value.report.issues_stored == 1
        assert s.issues.count() == 1  # the failed batch was rolled back, not left aborted


def test_the_command_stops_on_a_failure_that_is_not_about_a_line_and_says_how_to_resume(
    ims_db: Database, ims_app_url: str, ims_admin_url: str, p: People, tmp_path: Path
) -> None:
    """A failure that is not about a line stops the import there instead of blaming a
    line; the batches before it are kept."""
    fail_comments_saying_boom(ims_admin_url)
    [session_id] = crawl(ims_db, p.alice, 1)
    lines = [issue(n, comments=[{"content": "fine"}]) for n in range(1, 9)]
    lines[4]["comments"] = [{"content": "boom"}]  # line 5, in the third batch of 2
    path = write(tmp_path / "crawl.jsonl", *lines)
    result = run(
        str(path),
        *("--database", ims_app_url, "--user", str(p.alice), "--session", str(session_id)),
        *("--batch-size", "2"),
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1] == (
        "issues: 4 stored (4 inserted, 0 updated, 0 unchanged), 0 rejected, 0 blank lines"
    )
    assert (
        f"to resume: ims-repo import {path} --user {p.alice} --session {session_id} --from-line 5"
        in result.stderr
    )
    assert "Error: import stopped after line 4: the disk is full" in result.stderr
    assert "lines 5 to 6 (the batch in flight) were rolled back" in result.stderr
    with ims_db.session(user_id=p.alice) as s:
        assert counts(s) == (4, 4, 0, 0)


def test_the_command_shows_the_importer_logs_on_standard_error_from_the_level_asked(
    ims_db: Database, ims_app_url: str, p: People, tmp_path: Path
) -> None:
    """``ims-repo --log-level`` shows ims_repo's log records on standard error: by default
    (warning) the line the server refused; with ``info`` also how its batch was narrowed
    down. Never the refused value itself, and nothing stays attached after the command."""
    [session_id] = crawl(ims_db, p.alice, 1)
    lines = [full_issue(n) for n in range(1, 11)]
    lines[5]["comments"][0]["comment_order"] = 3_000_000_000  # line 6
    path = write(tmp_path / "crawl.jsonl", *lines)
    common = ("import", str(path), "--database", ims_app_url, "--user", str(p.alice))
    common += ("--session", str(session_id), "--batch-size", "4")
    handlers = list(logging.getLogger("ims_repo").handlers)

    default = CliRunner().invoke(main, list(common), catch_exceptions=False)
    assert default.exit_code == 3, default.output
    assert default.stderr.splitlines() == [
        "WARNING ims_repo.importer: line 6 refused by the database (comments, SQLSTATE "
        "22003); the rest of its batch is stored"
    ]
    verbose = CliRunner().invoke(main, ["--log-level", "info", *common], catch_exceptions=False)
    logged = verbose.stderr.splitlines()
    assert logged[0].startswith("INFO ims_repo.importer: lines 5 to 8 refused by the database")
    assert logged[-1] == default.stderr.splitlines()[0]
    assert "3000000000" not in verbose.stderr
    assert logging.getLogger("ims_repo").handlers == handlers
