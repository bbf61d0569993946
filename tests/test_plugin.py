"""The pytest plugin, exercised the way a library user meets it: a test file run by pytest.

Each test writes a small user test module, runs it in-process with ``pytester`` against the
outer session's server (``--ims-dsn``), and checks the outcome and what was left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

# Imported here, before any in-process run: yoyo imports the importlib_metadata backport,
# which adds a finder to sys.meta_path. If that import happened inside a pytester run,
# pytester would unload the module afterwards and leave the finder behind, and the next
# run's plugin discovery (importlib.metadata) would then find no distributions at all.
import ims_repo.services.migrations  # noqa: F401
from ims_repo.faces import pytest_plugin
from ims_repo.faces.pytest_plugin import (
    DSN_ENV,
    PgServer,
    _find_bindir,
    _free_port,
    _why_no_throwaway,
)
from tests.conftest import ReportFigure

# Helpers shared by the user-side test modules below.
USER_HEADER = """
import json
import os
from pathlib import Path

import psycopg


def scalar(url, query):
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()[0]


def record(key, value):
    path = Path(os.environ.get("IMS_PLUGIN_RECORD", "record.json"))
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data))
"""

DATABASE_PER_TEST = (
    USER_HEADER
    + """

def test_first_is_migrated_and_writes(ims_admin_url, ims_template):
    record("template", ims_template)
    record("first", scalar(ims_admin_url, "SELECT current_database()"))
    assert scalar(ims_admin_url, "SELECT to_regclass('ims.users') IS NOT NULL")
    with psycopg.connect(ims_admin_url) as conn:
        conn.execute(
            "INSERT INTO ims.users (username, email) "
            "VALUES ('plugin.probe', 'plugin.probe@example.com')"
        )
    assert scalar(ims_admin_url, "SELECT count(*) FROM ims.users WHERE username = 'plugin.probe'")


def test_second_starts_clean(ims_admin_url):
    record("second", scalar(ims_admin_url, "SELECT current_database()"))
    assert scalar(ims_admin_url, "SELECT to_regclass('ims.users') IS NOT NULL")
    query = "SELECT count(*) FROM ims.users WHERE username = 'plugin.probe'"
    assert scalar(ims_admin_url, query) == 0


def test_app_url_is_the_runtime_login(ims_admin_url, ims_app_url):
    same = "SELECT current_database()"
    assert scalar(ims_app_url, same) == scalar(ims_admin_url, same)
    with psycopg.connect(ims_app_url) as conn:
        row = conn.execute(
            "SELECT current_user::text, rolsuper, rolbypassrls,"
            " pg_has_role(current_user, 'ims_app', 'MEMBER')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == ("ims_test_app", False, False, True)


def test_empty_url_is_unmigrated(ims_empty_url):
    record("empty", scalar(ims_empty_url, "SELECT current_database()"))
    assert scalar(ims_empty_url, "SELECT to_regnamespace('ims') IS NULL")
"""
)

SESSION_FACTORY = """
from ims_repo import Database, NewUser


def test_db_is_a_database(ims_db):
    assert isinstance(ims_db, Database)


def test_session_writes(ims_session):
    with ims_session(user_id=None) as s:
        user = s.users.create(NewUser(username="plugin.session", email="plugin.s@example.com"))
        assert s.users.get(user.user_id) is not None


def test_session_sees_a_fresh_database(ims_session):
    with ims_session(user_id=None) as s:
        assert s.users.get_by_username("plugin.session") is None
"""

SERVER_FACTS = (
    USER_HEADER
    + """

def test_server(ims_server, ims_admin_url):
    record("server", [ims_server.host, ims_server.port, ims_server.user, ims_server.dbname,
                      ims_server.throwaway])
    assert scalar(ims_admin_url, "SELECT to_regclass('ims.users') IS NOT NULL")
"""
)


def _databases(server: PgServer, names: list[str]) -> list[str]:
    """Which of *names* exist on *server*."""
    with psycopg.connect(server.url()) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names]
        ).fetchall()
    return [name for (name,) in rows]


def _recorded(pytester: pytest.Pytester) -> dict[str, Any]:
    """What the user's tests wrote down with ``record()``."""
    data: dict[str, Any] = json.loads((pytester.path / "record.json").read_text())
    return data


def test_each_test_gets_its_own_migrated_database(
    pytester: pytest.Pytester, ims_server: PgServer
) -> None:
    pytester.makepyfile(test_user=DATABASE_PER_TEST)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(passed=4)
    seen = _recorded(pytester)
    names = [str(seen[key]) for key in ("template", "first", "second", "empty")]
    assert len(set(names)) == 4
    assert str(seen["template"]).startswith(f"ims_tmpl_{os.getpid()}_")
    assert _databases(ims_server, names) == [], "the plugin left databases behind"


def test_database_and_session_fixtures(pytester: pytest.Pytester, ims_server: PgServer) -> None:
    pytester.makepyfile(test_user=SESSION_FACTORY)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(passed=3)


def test_option_names_the_server(
    pytester: pytest.Pytester, ims_server: PgServer, ims_empty_url: str
) -> None:
    # A fresh database as the maintenance database shows the option was the one used.
    pytester.makepyfile(test_user=SERVER_FACTS)
    pytester.runpytest(f"--ims-dsn={ims_empty_url}").assert_outcomes(passed=1)
    _, port, user, dbname, throwaway = _recorded(pytester)["server"]
    assert (port, user, throwaway) == (ims_server.port, ims_server.user, False)
    assert dbname == ims_empty_url.rsplit("/", 1)[1]


def test_environment_names_the_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ims_empty_url: str
) -> None:
    monkeypatch.setenv(DSN_ENV, ims_empty_url)
    pytester.makepyfile(test_user=SERVER_FACTS)
    pytester.runpytest().assert_outcomes(passed=1)
    assert _recorded(pytester)["server"][3] == ims_empty_url.rsplit("/", 1)[1]


def test_option_beats_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ims_server: PgServer
) -> None:
    monkeypatch.setenv(DSN_ENV, f"postgresql://nobody@127.0.0.1:{_free_port()}/nowhere")
    pytester.makepyfile(test_user=SERVER_FACTS)
    pytester.runpytest(f"--ims-dsn={ims_server.url()}").assert_outcomes(passed=1)


def test_unreachable_server_is_an_error_not_a_skip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SERVER_FACTS)
    result = pytester.runpytest(f"--ims-dsn=postgresql://postgres@127.0.0.1:{_free_port()}/x")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ims_repo: cannot connect to --ims-dsn*"])


def test_skips_when_no_server_answers_and_none_can_be_started(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_server_anywhere(monkeypatch)
    monkeypatch.delenv("CI", raising=False)  # CI=true (as .ci/run has it) would fail instead
    pytester.makepyfile(test_user=SERVER_FACTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no PostgreSQL binaries*IMS_TEST_DATABASE_URL*--ims-dsn*"])
    result.stdout.fnmatch_lines(
        ["ims_repo: no PostgreSQL server (*): database tests will be skipped"]
    )


def _no_server_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing answers at PG* (a dead port) and no throwaway server can be started."""
    monkeypatch.delenv(DSN_ENV, raising=False)
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(_free_port()))
    monkeypatch.setattr(pytest_plugin, "_find_bindir", lambda: None)


@pytest.mark.parametrize(
    ("ci", "args", "why"),
    [
        ("true", (), "the environment variable CI is set"),
        (None, ("--ims-require-server",), "--ims-require-server was given"),
    ],
)
def test_a_required_server_fails_instead_of_skipping(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ci: str | None,
    args: tuple[str, ...],
    why: str,
) -> None:
    _no_server_anywhere(monkeypatch)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_user=SERVER_FACTS + SESSION_FACTORY)
    result = pytester.runpytest("-rs", *args)
    result.assert_outcomes(errors=4)  # every database test, none skipped
    result.stdout.fnmatch_lines(
        [
            f"*ims_repo: no superuser login answered*no PostgreSQL binaries*(failing, not skipping: {why})*"
        ]
    )
    result.stdout.fnmatch_lines(["ims_repo: no PostgreSQL server (*): database tests will fail"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_header_names_the_server(pytester: pytest.Pytester, ims_server: PgServer) -> None:
    with psycopg.connect(ims_server.url()) as conn:
        number = conn.info.server_version
    version = f"{number // 10000}.{number % 10000}"
    pytester.makepyfile(test_user=SERVER_FACTS)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"ims_repo: PostgreSQL {version} at {ims_server.host}:{ims_server.port} as "
            f"{ims_server.user} (from --ims-dsn/${DSN_ENV}, not a throwaway server)"
        ]
    )
    assert "used a throwaway server" not in result.stdout.str()


def test_the_plugin_loads_without_the_pytest_extra() -> None:
    """Loading the plugin (what every pytest run in the environment does) imports nothing
    of the ``pytest`` extra; ``ims-repo[pytest]`` is what adds these."""
    extra_only = ["pytest_postgresql", "mirakuru", "port_for", "psutil"]
    code = (
        "import sys, ims_repo.faces.pytest_plugin\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {extra_only!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_fixtures_without_the_extra_fail_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ims_server: PgServer
) -> None:
    # As if pytest-postgresql were not installed: importing what the fixtures use raises
    # ImportError (its own pytest plugin stays registered, as pytest needs it to be here).
    monkeypatch.setitem(sys.modules, "pytest_postgresql.janitor", None)
    pytester.makepyfile(test_user=SESSION_FACTORY)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(errors=3)
    need = "ims_repo: the ims_* fixtures need pytest_postgresql.janitor, which cannot be imported"
    assert need in result.stdout.str()
    assert "pip install 'ims-repo[pytest]'" in result.stdout.str()
    assert "During handling" not in result.stdout.str()


@pytest.mark.slow
def test_starts_a_throwaway_server_when_none_answers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = _why_no_throwaway(_find_bindir())
    if reason:
        pytest.skip(f"cannot start a throwaway server here: {reason}")
    dead_port = _free_port()
    monkeypatch.delenv(DSN_ENV, raising=False)
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(dead_port))
    pytester.makepyfile(test_user=SERVER_FACTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["ims_repo: a throwaway server from *, started if a test needs one"]
    )
    host, port, user, _, throwaway = _recorded(pytester)["server"]
    result.stdout.fnmatch_lines(
        [f"ims_repo: used a throwaway server: PostgreSQL * at 127.0.0.1:{port} as postgres"]
    )
    assert (host, user, throwaway) == ("127.0.0.1", "postgres", True)
    assert port != dead_port
    with pytest.raises(psycopg.OperationalError):  # stopped at the end of the session
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")


@pytest.mark.slow
def test_throwaway_on_request(pytester: pytest.Pytester) -> None:
    reason = _why_no_throwaway(_find_bindir())
    if reason:
        pytest.skip(f"cannot start a throwaway server here: {reason}")
    pytester.makepyfile(test_user=SERVER_FACTS)
    pytester.runpytest("--ims-dsn=throwaway").assert_outcomes(passed=1)
    assert _recorded(pytester)["server"][4] is True


@pytest.mark.slow
def test_parallel_sessions_do_not_collide(pytester: pytest.Pytester, ims_server: PgServer) -> None:
    pytester.makepyfile(test_user=DATABASE_PER_TEST)
    runs = []
    for n in range(2):
        env = {**os.environ, "IMS_PLUGIN_RECORD": f"record{n}.json"}
        runs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--ims-dsn={ims_server.url()}",
                    "test_user.py",
                ],
                cwd=pytester.path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for run in runs:
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output
    templates = {
        json.loads(Path(pytester.path, f"record{n}.json").read_text())["template"] for n in range(2)
    }
    assert len(templates) == 2


# --- clones made ahead, ini options, orphans, pytest-xdist ------------------------------------

WORKER_DATABASES = (
    USER_HEADER
    + """
import pytest
from ims_repo import NewUser


@pytest.mark.parametrize("n", range(6))
def test_a_working_database(n, ims_session, ims_app_url):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = scalar(ims_app_url, "SELECT current_database()")
    with ims_session(user_id=None) as s:
        assert s.users.get_by_username("worker.probe") is None  # a fresh clone
        s.users.create(NewUser(username="worker.probe", email=f"w{n}@example.com"))
    path = Path(f"seen-{worker}-{n}.json")
    path.write_text(json.dumps({"worker": worker, "pid": os.getpid(), "database": name}))
"""
)


def _seen(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(pytester.path.glob("seen-*.json"))]


def _left_by(server: PgServer, pids: set[int]) -> list[str]:
    """Databases on *server* whose names carry one of *pids* (as every fixture name does)."""
    with psycopg.connect(server.url()) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ %s",
            [r"^ims_[a-z]+_(" + "|".join(str(pid) for pid in pids) + r")_"],
        ).fetchall()
    return [name for (name,) in rows]


def _run_pytest(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """pytest in a child process (xdist's workers and a killed run need a real one)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_xdist_workers_get_distinct_working_databases_and_leave_none(
    pytester: pytest.Pytester, ims_server: PgServer, report_figure: ReportFigure
) -> None:
    pytester.makepyfile(test_user=WORKER_DATABASES)
    run = _run_pytest(pytester.path, "-n", "2", f"--ims-dsn={ims_server.url()}", "test_user.py")
    assert run.returncode == 0, run.stdout + run.stderr
    seen = _seen(pytester)
    assert len(seen) == 6
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    assert len({s["database"] for s in seen}) == 6, "a database was handed out twice"
    pids = {s["pid"] for s in seen}
    assert len(pids) == 2
    assert _left_by(ims_server, pids) == [], "the workers left databases behind"
    # The controller adds up the workers' figures.
    assert "ims_repo: test databases 6; setup median" in run.stdout, run.stdout
    report_figure("xdist -n 2: test databases left behind", 0)


def test_setup_figures_in_the_summary(pytester: pytest.Pytester, ims_server: PgServer) -> None:
    pytester.makepyfile(test_user=WORKER_DATABASES)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "ims_repo: test databases 6; setup median * ms; setup p90 * ms; "
            "background clone median * ms"
        ]
    )


def test_no_clones_made_ahead_with_zero(pytester: pytest.Pytester, ims_server: PgServer) -> None:
    pytester.makepyfile(test_user=WORKER_DATABASES)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}", "--ims-clones=0")
    result.assert_outcomes(passed=6)
    names = [s["database"] for s in _seen(pytester)]
    assert len(set(names)) == 6
    assert "background clone median" not in result.stdout.str()
    assert _databases(ims_server, names) == [], "the plugin left databases behind"


def test_ini_options(pytester: pytest.Pytester, ims_server: PgServer, ims_empty_url: str) -> None:
    # The ini file names the server; a fresh database as maintenance database shows it was used.
    pytester.makeini(f"[pytest]\nims_dsn = {ims_empty_url}\nims_clones = 1\n")
    pytester.makepyfile(test_user=SERVER_FACTS)
    pytester.runpytest().assert_outcomes(passed=1)
    assert _recorded(pytester)["server"][3] == ims_empty_url.rsplit("/", 1)[1]
    # The command line wins over the ini file.
    pytester.runpytest(f"--ims-dsn={ims_server.url()}").assert_outcomes(passed=1)
    assert _recorded(pytester)["server"][3] == ims_server.dbname


def test_ini_clones_must_be_a_count(pytester: pytest.Pytester, ims_server: PgServer) -> None:
    pytester.makeini("[pytest]\nims_clones = many\n")
    pytester.makepyfile(test_user=SERVER_FACTS)
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ims_clones must be a whole number >= 0, not 'many'*"])
    # The command line wins: a valid count there overrides the ini's bad one.
    result = pytester.runpytest(f"--ims-dsn={ims_server.url()}", "--ims-clones=1")
    result.assert_outcomes(passed=1)


def test_ini_require_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_server_anywhere(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\nims_require_server = true\n")
    pytester.makepyfile(test_user=SERVER_FACTS)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*(failing, not skipping: the ini option ims_require_server is set)*"]
    )
    # pytest's -o on the command line wins over the ini file.
    pytester.runpytest("-o", "ims_require_server=false").assert_outcomes(skipped=1)


def test_header_is_quick_when_nothing_answers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on the PG* port: the header says so without waiting for libpq's
    # connect_timeout (2 s or more per login tried), and the fixtures ask no second time.
    _no_server_anywhere(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    asked: list[str] = []
    real = pytest_plugin._port_closed

    def counted(host: str, port: str) -> bool:
        asked.append(port)
        return real(host, port)

    monkeypatch.setattr(pytest_plugin, "_port_closed", counted)
    pytester.makepyfile(test_user=SERVER_FACTS)
    pytester.runpytest().assert_outcomes(skipped=1)
    assert asked == [os.environ["PGPORT"]]


KILLED_RUN = """
import os, signal
from pathlib import Path


def test_dies_holding_databases(ims_db):
    Path("killed.pid").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_later_session_drops_what_a_killed_one_left(
    pytester: pytest.Pytester, ims_server: PgServer
) -> None:
    pytester.makepyfile(test_killed=KILLED_RUN, test_user=SERVER_FACTS)
    killed = _run_pytest(pytester.path, f"--ims-dsn={ims_server.url()}", "test_killed.py")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    killed_pids = {int((pytester.path / "killed.pid").read_text())}
    left = _left_by(ims_server, killed_pids)
    assert any(name.startswith("ims_tmpl_") for name in left), left
    assert any(name.startswith("ims_test_") for name in left), left
    # A database of the same shape from another host is not this host's to drop.
    foreign = f"ims_test_{min(killed_pids)}_{_other_tag()}_abcdef_1"
    with psycopg.connect(ims_server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{foreign}"')
    try:
        result = pytester.runpytest(f"--ims-dsn={ims_server.url()}", "test_user.py")
        result.assert_outcomes(passed=1)
        assert _left_by(ims_server, killed_pids) == [foreign]
        result.stdout.fnmatch_lines(["ims_repo: dropped * database(s) left by ended sessions: *"])
    finally:
        with psycopg.connect(ims_server.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{foreign}"')


def _ended_pid() -> int:
    """The process id of a process that has ended."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(ended.stdout)


def _fixture_connection(url: str, pid: int) -> psycopg.Connection[Any]:
    """A connection named as the fixtures of the session of process *pid* name theirs."""
    from ims_repo.services.clone_pool import host_tag

    name = f"ims_repo fixtures {pid}_{host_tag()}"
    return psycopg.connect(url, autocommit=True, application_name=name)


def _running(server: PgServer, backends: list[int]) -> list[int]:
    with psycopg.connect(server.url()) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid", [backends]
        ).fetchall()
    return [pid for (pid,) in rows]


def test_a_sweep_ends_the_backends_an_ended_session_left_running_before_it_looks(
    ims_server: PgServer,
) -> None:
    """A killed session's CREATE DATABASE runs on in the server: its database would appear
    after the sweep had listed the orphans. The sweep ends such backends first (and waits),
    and leaves a live session's alone."""
    from ims_repo.services.clone_pool import sweep_orphans

    left_running = _fixture_connection(ims_server.url(), _ended_pid())
    live = _fixture_connection(ims_server.url(), os.getpid())
    try:
        sweep_orphans(ims_server.url())
        backends = [left_running.info.backend_pid, live.info.backend_pid]
        assert _running(ims_server, backends) == [live.info.backend_pid]
        with pytest.raises(psycopg.OperationalError):
            left_running.execute("SELECT 1")
        assert live.execute("SELECT 1").fetchone() == (1,)
    finally:
        left_running.close()
        live.close()


def test_a_sweep_by_a_login_that_may_not_end_a_backend_leaves_it_and_goes_on(
    ims_server: PgServer,
) -> None:
    """A login with CREATEDB but not the right to end a superuser's backend: the sweep
    leaves that backend running (what it makes is left for a later sweep), no error."""
    from ims_repo.services.clone_pool import sweep_orphans

    role = f"ims_sweeper_{os.getpid()}"
    with psycopg.connect(ims_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD 'sweeper'")
    left_running = _fixture_connection(ims_server.url(), _ended_pid())
    try:
        assert sweep_orphans(ims_server.url(user=role, password="sweeper")) == []
        backend = left_running.info.backend_pid
        assert _running(ims_server, [backend]) == [backend]
    finally:
        left_running.close()
        with psycopg.connect(ims_server.url(), autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")


def _other_tag() -> str:
    from ims_repo.services.clone_pool import host_tag

    return "0000" if host_tag() != "0000" else "ffff"
