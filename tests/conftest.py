"""Suite-wide setup. The ims_* database fixtures come from the installed plugin
(``ims_repo.faces.pytest_plugin``, a pytest11 entry point), exactly as a library user gets them;
only what the plugin must not ship to users belongs here:

- ``report_figure(name, value)``: a test records a measured figure (leaks seen, deadlocks,
  statements reaching the server…); every figure is printed in a short section at the end
  of the run, so the suite's output states what was proved and by how much.
- ``private_server``: a PostgreSQL server of this test session alone, for the tests that
  restart a server or read server-wide statistics (``pg_stat_statements``), which must
  not disturb the shared server other sessions use.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import sql

from ims_repo.faces.pytest_plugin import RUNTIME_LOGIN, RUNTIME_PASSWORD
from ims_repo.services.local_server import LocalServer, PgServer, find_bindir, why_unavailable

# `pytester` runs user-style test files in-process, for tests/test_plugin.py; the async
# suite's fixtures (ims_adb, apeople, wire) are in tests/fix_async.py; the private primary
# and standby of the replica and failover tests in tests/fix_replicas.py; `pgbouncer` (a
# real pgbouncer in front of the test server) in tests/fix_pgbouncer.py.
pytest_plugins = ["pytester", "tests.fix_async", "tests.fix_replicas", "tests.fix_pgbouncer"]

# --- figures ------------------------------------------------------------------------------

_FIGURES = pytest.StashKey[list[tuple[str, str, str]]]()

ReportFigure = Callable[[str, object], None]


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> ReportFigure:
    """``report_figure("context leaks seen", 0)``: printed at the end of the run."""
    figures = request.config.stash.setdefault(_FIGURES, [])

    def record(name: str, value: object) -> None:
        figures.append(
            (name, f"{value:,}" if isinstance(value, int) else str(value), request.node.path.name)
        )

    return record


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print every recorded figure, in the order the tests recorded them."""
    figures = config.stash.get(_FIGURES, [])
    if not figures:
        return
    terminalreporter.section("figures measured by the tests")
    width = max(len(name) for name, _, _ in figures)
    value_width = max(len(value) for _, value, _ in figures)
    for name, value, test in figures:
        terminalreporter.write_line(f"{name:<{width}}  {value:>{value_width}}  ({test})")


# --- a private server ---------------------------------------------------------------------


@dataclass
class PrivateServer:
    """A server started for this test session only: tests may restart it.

    It preloads ``pg_stat_statements`` (created in the maintenance database), so a test
    can count what reached the server. ``new_database()`` gives a fresh migrated
    database with the runtime login, as the plugin's fixtures do on the shared server.
    """

    server: PgServer
    local: LocalServer
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _template: str | None = None

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the data stays."""
        self.local._run(
            "pg_ctl",
            "-D",
            str(self.local.data),
            "-l",
            str(self.local.log),
            "-w",
            "-m",
            "fast",
            "restart",
        )

    def admin(self, sql_text: sql.Composed | str, dbname: str | None = None) -> None:
        """Run one statement as the superuser, in autocommit."""
        with psycopg.connect(self.server.url(dbname), autocommit=True) as conn:
            conn.execute(sql_text)

    def new_database(self) -> tuple[str, str]:
        """A fresh migrated database: (superuser URL, runtime-login URL)."""
        from ims_repo.services.migrations import grant_login, migrate

        if self._template is None:
            template = "ims_private_template"
            self.admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
            migrate(self.server.url(template))
            grant_login(self.server.url(template), RUNTIME_LOGIN, RUNTIME_PASSWORD)
            self.admin(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
                ).format(sql.Literal(template))
            )
            self._template = template
        name = f"ims_private_{next(self._names)}"
        self.admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self._template)
            )
        )
        return (
            self.server.url(name),
            self.server.url(name, user=RUNTIME_LOGIN, password=RUNTIME_PASSWORD),
        )


@pytest.fixture(scope="session")
def private_server() -> Iterator[PrivateServer]:
    """A throwaway server for this session only (skips where none can be started)."""
    bindir = find_bindir()
    reason = why_unavailable(bindir)
    if reason or bindir is None:
        pytest.skip(f"no private PostgreSQL server: {reason}")
    local = LocalServer(bindir)
    server = local.start()
    try:
        private = PrivateServer(server, local)
        private.admin("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        private.restart()
        # Room for every distinct statement of a test: an evicted entry loses its count.
        private.admin("ALTER SYSTEM SET pg_stat_statements.max = 50000")
        private.restart()
        private.admin("CREATE EXTENSION pg_stat_statements")
        yield private
    finally:
        local.stop()
