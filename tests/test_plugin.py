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
