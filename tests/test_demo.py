"""``ims-repo demo``: every section of the walkthrough, twice with the same output, and
the private server it starts when no server is configured or none answers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from ims_repo.faces.cli import main
from ims_repo.services import demo
from ims_repo.services.local_server import LocalServer, find_bindir, free_port, why_unavailable
from tests.test_migrations import ALL_IDS

SECTIONS = [
    "Quick start",
    "CRUD",
    "Relationships",
    "Filters, ordering, pagination",
    "Aggregation",
    "Joins",
    "JSONB",
    "Bulk insert and re-crawl",
    "Transactions",
    "Raw SQL",
    "Full-text search",
    "Analytics",
    "Audit trail",
    "Row-level security",
]


def _demo(*args: str) -> Result:
    result = CliRunner().invoke(main, ["demo", *args])
    assert result.exit_code == 0, result.output
    return result


def _walkthrough(output: str) -> list[str]:
    """The lines from the first section on (before it: where it runs, what was loaded)."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("== 1. "))
    return lines[start:]


def _counts(url: str) -> dict[str, int]:
    """Rows per table, as the superuser (every user's)."""
    tables = ["users", "crawl_sessions", "issues", "session_issues", "search_queries"]
    tables += ["session_errors", "issue_comments", "audit_log", "analytics_daily"]
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM ims.{table}").fetchone()[0]  # type: ignore[index]
            for table in tables
        }


def _titles(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("== ")]


def test_demo_on_an_empty_database_prints_every_section_and_rls_from_both_sides(
    ims_empty_url: str,
) -> None:
    output = _demo("--database", ims_empty_url).output
    lines = output.splitlines()
    assert lines[1] == f"migrate: {len(ALL_IDS)} migration(s) applied"
    assert lines[2].startswith("sample data: created 4 users, 6 sessions, 12 issues,")
    assert "users: admin=1, yijae.shin=2, john.doe=3, minji.kim=4" in lines[3]
    titles = _titles(output)
    assert len(titles) == len(SECTIONS)
    for number, (title, expected) in enumerate(zip(titles, SECTIONS, strict=True), start=1):
        assert title.startswith(f"== {number}. {expected}"), title
    assert 80 <= len(lines) <= 150, f"{len(lines)} lines"
    assert lines[-1].startswith("done:")
    # A few results that pin the walkthrough to the data set.
    for expected in [
        's.issues.detail("SAMPLE-001")  -> SAMPLE-001, 1 statement: 3 comments, 3 changes, 2 attachments',
        "s.issues.count_by_product()  -> {'OpenFrame': 8, 'Tibero': 4}",
        "    -> inserted 10, updated 1, unchanged 1",
        "    -> Duplicate: ims.users already has this key (users_username_key)",
        "s.search.issues('시간 초과')  -> SAMPLE-003 (0.908), SAMPLE-006 (0.751), SAMPLE-001 (0.304)",
        "  2026-11-03: 2 sessions (1 completed, 1 failed), 4 issues, 3 errors, avg 172.50 s",
        "s.rollback(); s.issues.count(status='New')  -> 4 (nothing kept)",
    ]:
        assert expected in lines, expected
    # Row-level security from both sides: the same query in four contexts.
    rls = lines[
        lines.index("== 14. Row-level security: s.crawl_sessions.find() in four contexts ==") :
    ]
    assert rls[1:5] == [
        "as yijae.shin (user 2)     sessions 1, 2, 3 (yijae.shin), 5 errors",
        "as john.doe (user 3)       sessions 4, 5 (john.doe), 1 error",
        "with no user context       no sessions, 0 errors",
        "as admin (user 1)          sessions 1, 2, 3, 4, 5, 6 (john.doe, minji.kim, yijae.shin), 6 errors",
    ]
    assert "    -> None (hidden by RLS)" in rls
    assert any(line.startswith("    -> PermissionDenied: ims.crawl_sessions") for line in rls)
    assert rls[-3].endswith("-> sessions 1, 2, 3")  # the manual context


def test_second_run_prints_the_same_walkthrough_and_writes_nothing(
    ims_empty_url: str,
) -> None:
    first = _demo("--database", ims_empty_url).output
    counts = _counts(ims_empty_url)
    assert counts["issues"] == 12 and counts["search_queries"] == 6 and counts["audit_log"] > 0
    seen: list[str] = []
    demo.run(ims_empty_url, echo=seen.append)  # the function the command calls
    again = "\n".join(seen)
    assert again.splitlines()[1:3] == [
        "migrate: up to date",
        "sample data: already loaded, nothing created",
    ]
    assert _walkthrough(again) == _walkthrough(first)
    assert _counts(ims_empty_url) == counts  # the demo's own writes were all rolled back


# --- where it runs --------------------------------------------------------------------


def test_a_server_that_answers_is_used(ims_empty_url: str) -> None:
    assert demo._unreachable(ims_empty_url) is None


def test_nothing_configured_means_a_private_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    reason = demo._unreachable("")
    assert reason is not None and reason.startswith("no database configured")


def test_a_refused_connection_means_a_private_server() -> None:
    port = free_port()
    reason = demo._unreachable(f"postgresql://postgres@127.0.0.1:{port}/x")
    assert reason == f"nothing answers at 127.0.0.1:{port} (connection refused)"


def test_other_connection_errors_are_not_hidden(ims_empty_url: str) -> None:
    missing = ims_empty_url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(psycopg.OperationalError, match="no_such_database_here"):
        demo._unreachable(missing)
    result = CliRunner().invoke(main, ["demo", "--database", missing])
    assert result.exit_code == 1
    assert "no_such_database_here" in result.output
    assert "private" not in result.output


def test_no_binaries_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "find_bindir", lambda: None)
    result = CliRunner().invoke(
        main, ["demo", "--database", f"postgresql://postgres@127.0.0.1:{free_port()}/x"]
    )
    assert result.exit_code == 1
    assert "connection refused); starting a private PostgreSQL" in result.output
    assert "Error: cannot start a private PostgreSQL either: no PostgreSQL binaries" in (
        result.output
    )


# --- the private server (starts PostgreSQL: slow) --------------------------------------


def _skip_without_binaries() -> None:
    reason = why_unavailable(find_bindir())
    if reason:
        pytest.skip(f"cannot start a private server here: {reason}")


@pytest.fixture
def open_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A current directory the server's OS user can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ims-demo-"))
    path.chmod(0o755)
    monkeypatch.chdir(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _private_port(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("private server: "))
    return int(line.split("127.0.0.1:")[1].split(",")[0])


@pytest.mark.slow
def test_unreachable_server_runs_the_demo_on_a_private_one(open_dir: Path) -> None:
    _skip_without_binaries()
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/ims_demo"
    first = _demo("--database", dead).output
    lines = first.splitlines()
    assert lines[0].endswith("(connection refused); starting a private PostgreSQL")
    assert lines[2:4] == [
        f"  data: {open_dir / '.ims-pg' / 'data'} (new)",
        f"  log: {open_dir / '.ims-pg' / 'server.log'}",
    ]
    assert f"ims-repo demo: database ims_demo on 127.0.0.1:{_private_port(first)}" in lines[4]
    assert len(_titles(first)) == len(SECTIONS)
    assert lines[-1] == f"private server stopped; data kept in {open_dir / '.ims-pg'}"
    assert (open_dir / ".ims-pg" / ".gitignore").read_text().endswith("*\n")
    with pytest.raises(psycopg.OperationalError):  # stopped
        psycopg.connect(host="127.0.0.1", port=_private_port(first), user="postgres")

    # Again, asked for explicitly: the kept data is found again, nothing is loaded twice.
    again = _demo("--private-server").output
    assert again.splitlines()[0] == (
        "no server to use: asked for (--private-server); starting a private PostgreSQL"
    )
    assert again.splitlines()[2].endswith("(kept from an earlier run)")
    assert "sample data: already loaded, nothing created" in again
    assert _walkthrough(again)[:-1] == _walkthrough(first)[:-1]  # all but the stop line


@pytest.mark.slow
def test_private_server_in_a_temp_dir_when_the_cwd_is_out_of_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skip_without_binaries()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "_reachable_by", lambda path, user: False)
    output = _demo("--private-server").output
    data = output.splitlines()[2]
    assert data.startswith("  data: ") and data.endswith("(temporary, deleted at the end)")
    where = Path(data.split()[1])
    assert where.name == "data"
    assert not where.exists()
    assert not (tmp_path / ".ims-pg").exists()
    assert output.splitlines()[-1] == "private server stopped"


@pytest.mark.slow
def test_a_server_still_running_on_kept_data_is_reused_and_left_running(
    open_dir: Path,
) -> None:
    _skip_without_binaries()
    bindir = find_bindir()
    assert bindir is not None
    first = LocalServer(bindir, root=open_dir / "pg")
    server = first.start()
    try:
        assert first.initialized and first.started
        second = LocalServer(bindir, root=open_dir / "pg")
        assert second.start() == server.__class__(
            "127.0.0.1", server.port, "postgres", "postgres", throwaway=False
        )
        assert not second.started and not second.initialized
        second.stop()  # not ours: it keeps running
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.stop()
    assert (open_dir / "pg" / "data" / "PG_VERSION").exists()  # kept
    assert not (open_dir / "pg" / "data" / "postmaster.pid").exists()  # stopped
