"""What the package logs for an operator: slow statements, pool recovery, the importer's
rejected lines and its splitting of a refused batch; never a parameter's value.

(The issue writers' lock retries, on ``ims_repo.issues``, are tested in
``test_reliability.py``.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ims_repo import Database, DatabaseUnavailable, InvalidInput, QueryFile
from ims_repo.services.importer import import_file
from tests.seed import crawl, people
from tests.test_import import full_issue, write

SECRET = "parameter-value-4711"


@pytest.fixture
def sleepy(tmp_path: Path) -> QueryFile:
    """An application's own statement that takes a known time, with a parameter."""
    path = tmp_path / "sleepy.sql"
    path.write_text(
        "-- name: nap :scalar\n"
        "-- Sleeps for the given seconds, then returns the marker.\n"
        "SELECT pg_catalog.pg_sleep(:seconds) IS NULL AND :marker::text IS NOT NULL;\n"
    )
    return QueryFile(path)


def test_a_statement_over_the_threshold_is_logged_by_name_without_parameters(
    ims_app_url: str, sleepy: QueryFile, caplog: pytest.LogCaptureFixture
) -> None:
    nap = sleepy.statement("nap", "seconds", "marker")
    caplog.set_level(logging.WARNING, logger="ims_repo.db.statements")
    with Database(ims_app_url, slow_statement=0.02) as db, db.session() as s:
        s.users.get(1)  # well under 20 ms: not logged
        s.fetch_value(nap.bind({"seconds": 0.05, "marker": SECRET}))  # 50 ms at least
        s.execute("SELECT pg_catalog.pg_sleep(0.05)")
    messages = [r.getMessage() for r in caplog.records if r.name == "ims_repo.db.statements"]
    assert len(messages) == 2, messages
    assert messages[0].startswith("slow statement sleepy.nap: ")
    assert messages[0].endswith(" ms (slow_statement=0.02 s)")
    assert messages[1].startswith("slow statement (raw SQL from execute()): ")
    assert SECRET not in caplog.text


def test_a_slow_copy_and_a_slow_pipeline_are_logged_by_name(
    ims_app_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "loads.sql"
    path.write_text(
        "-- name: stage :none\n-- A table to load.\n"
        "CREATE TEMP TABLE loaded (n integer NOT NULL) ON COMMIT DROP;\n\n"
        "-- name: load :none\n-- Streams numbers into it.\n"
        "COPY pg_temp.loaded (n) FROM STDIN;\n\n"
        "-- name: nap :scalar\n-- Sleeps for the given seconds.\n"
        "SELECT pg_catalog.pg_sleep(:seconds) IS NULL;\n"
    )
    loads = QueryFile(path)
    stage, load = loads.statement("stage"), loads.statement("load")
    nap = loads.statement("nap", "seconds")

    def numbers() -> Iterator[tuple[int]]:
        yield (1,)
        time.sleep(0.05)  # a crawler producing its rows while the COPY runs
        yield (2,)

    caplog.set_level(logging.WARNING, logger="ims_repo.db.statements")
    with Database(ims_app_url, slow_statement=0.02) as db, db.session() as s:
        s.run(stage.bind({}))
        s.copy_rows(load.bind({}), numbers())
        s.fetch_pipeline([nap.bind({"seconds": 0.03}), nap.bind({"seconds": 0.0})])
    messages = [r.getMessage() for r in caplog.records if r.name == "ims_repo.db.statements"]
    assert [m.split(":")[0] for m in messages] == [
        "slow statement loads.load",
        "slow statement pipeline of 2 (loads.nap, loads.nap)",
    ]


def test_no_threshold_logs_nothing(
    ims_app_url: str, sleepy: QueryFile, caplog: pytest.LogCaptureFixture
) -> None:
    nap = sleepy.statement("nap", "seconds", "marker")
    caplog.set_level(logging.DEBUG, logger="ims_repo")
    with Database(ims_app_url) as db, db.session() as s:
        s.fetch_value(nap.bind({"seconds": 0.05, "marker": SECRET}))
    assert [r for r in caplog.records if r.name == "ims_repo.db.statements"] == []


def test_the_threshold_is_checked(ims_app_url: str) -> None:
    with pytest.raises(InvalidInput, match="slow_statement must be a positive number"):
        Database(ims_app_url, slow_statement=-1)


def test_pool_recovery_is_logged(
    ims_app_url: str, ims_admin_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ims_repo.db.pool")
    with Database(ims_app_url, min_size=2, max_size=2, name="logged") as db:
        with db.session() as a, db.session() as b:  # two connections open
            a.users.get(1)
            b.users.get(1)
        with psycopg.connect(ims_admin_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND usename = 'ims_test_app'"
            ).fetchone()
        assert ended == (2,)
        with pytest.raises(DatabaseUnavailable), db.session() as s:
            s.users.get(1)
        for _ in range(3):  # the other connection is tested at a checkout, and replaced
            with db.session() as s:
                s.users.get(1)
    messages = [r.getMessage() for r in caplog.records if r.name == "ims_repo.db.pool"]
    assert messages[0] == (
        "pool 'logged': a connection was lost during a session; the pool replaces it and "
        "tests the others at their next checkout"
    )
    assert len(messages) == 2, messages
    assert messages[1].startswith("pool 'logged': a connection opened before a loss is dead (")
    assert messages[1].endswith("); replaced")


def test_rejected_lines_and_the_split_of_a_refused_batch_are_logged(
    ims_db: Database, ims_admin_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = people(ims_db, ims_admin_url)
    [session_id] = crawl(ims_db, p.alice, 1)
    lines: list[object] = [full_issue(n) for n in range(1, 5)]
    lines[1]["comments"][0]["comment_order"] = 3_000_000_000  # type: ignore[index]  # line 2
    lines.append("{not json")  # line 5
    path = write(tmp_path / "crawl.jsonl", *lines)
    caplog.set_level(logging.INFO, logger="ims_repo.importer")
    report = import_file(ims_db, path, user_id=p.alice, session_id=session_id, batch_size=4)
    assert report.rejected == 2
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "ims_repo.importer"]
    assert records == [
        ("INFO", "lines 1 to 4 refused by the database (comments, SQLSTATE 22003): storing "
         "each half on its own to find the line"),
        ("INFO", "lines 1 to 2 refused by the database (comments, SQLSTATE 22003): storing "
         "each half on its own to find the line"),
        ("WARNING", "line 2 refused by the database (comments, SQLSTATE 22003); the rest of "
         "its batch is stored"),
        ("WARNING", "line 5 rejected: not JSON: Expecting property name enclosed in double "
         "quotes (column 2)"),
    ]
    assert "3000000000" not in caplog.text  # the server's message quotes the value: not logged


def test_the_library_prints_nothing_unless_the_application_sets_up_logging() -> None:
    """A NullHandler on ``ims_repo``: Python's last-resort handler stays out of it."""
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("ims_repo").handlers)
