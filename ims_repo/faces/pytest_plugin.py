"""pytest fixtures for code built on ims_repo: a migrated, isolated database per test.

Installed with the package (``pytest11`` entry point), so every test suite that can import
``ims_repo`` gets these fixtures:

==================  ========  ===========================================================
``ims_server``      session   the server used (:class:`PgServer`: host, port, superuser)
``ims_template``    session   name of a database migrated once, used as a TEMPLATE
``ims_admin_url``   function  superuser URL of a fresh clone of the template
``ims_app_url``     function  the same database, logged in as the runtime login (RLS)
``ims_db``          function  ``Database(ims_app_url, min_size=1, max_size=4)``
``ims_session``     function  ``ims_session(user_id=2)`` is ``ims_db.session(user_id=2)``
``ims_empty_url``   function  superuser URL of a fresh, empty (unmigrated) database
``ims_sample``      function  the sample data set in this test's database: its ids
                              (:class:`ims_repo.services.sample_data.Sample`)
==================  ========  ===========================================================

The server comes from ``--ims-dsn`` or ``IMS_TEST_DATABASE_URL`` (a superuser URL); else
from libpq's ``PG*`` variables and defaults (127.0.0.1:5432 as the OS user or
``postgres``) when a superuser can log in there; else the plugin starts a throwaway
server from the local PostgreSQL binaries (as root: as the ``postgres`` OS user) and
stops it at the end of the session (``ims_repo.services.local_server``, shared with
``ims-repo demo``); else tests that need a database are skipped, or fail when the
environment variable ``CI`` is set or ``--ims-require-server`` is given (a run must not
go green by skipping). pytest's header names the server in use. The
value ``throwaway`` asks for a throwaway server even when another one is running: its
files live in ``/dev/shm`` when there is room, which makes each clone several times
cheaper than on a disk-backed server.

Each test's database is ``CREATE DATABASE … TEMPLATE`` of the migrated template, made
ahead by a background thread that keeps ``--ims-clones`` (default 2) ready, and dropped
after the test by another (``ims_repo.services.clone_pool``): a test waits only when the
tests use databases faster than the server copies them. The run ends with the setup time
the tests saw (median, p90), also summed over pytest-xdist's workers. Names carry the
process id, a host tag and a random token, so parallel sessions (pytest-xdist, several CI
jobs) share a server safely, and a session drops, first, the databases of this host's
sessions whose process is gone (killed before they could clean up).

Every option has an ini twin (``ims_dsn``, ``ims_require_server``, ``ims_clones``); the
command line wins over the ini file, and ``IMS_TEST_DATABASE_URL`` over ``ims_dsn``.

The plugin is loaded by every pytest run in an environment where ``ims_repo`` is
installed, whatever the project, so at load time it imports only ``ims_repo``'s base
dependencies. What the fixtures need beyond them (pytest-postgresql) is the ``pytest``
extra, imported when a fixture first needs it; without it that fixture fails with a
message naming ``pip install 'ims-repo[pytest]'``.

Seeded tests: a test that asks for ``ims_sample`` gets a database cloned from a second
template that holds the sample data of ``ims-repo demo`` (loaded once per session,
through the public API, the first time a test asks for it), so it costs one clone like
any other test. The fixture's value holds the ids: on that fresh database ``yijae.shin``
is user 2, ``SAMPLE-001`` is issue_pk 1, and the crawl sessions are 1 to 6::

    def test_rls_hides_other_users_sessions(ims_sample, ims_session):
        with ims_session(user_id=ims_sample.john) as s:
            assert [c.session_id for c in s.crawl_sessions.find()] == [
                ims_sample.sessions["john-1"], ims_sample.sessions["john-2"]
            ]
        with ims_session(user_id=ims_sample.yijae) as s:
            assert s.issues.detail("SAMPLE-001").comments  # shared: seen by all

``ims_sample.users`` (by username), ``.sessions`` (by key, e.g. ``"yijae-1"``),
``.issues`` (by IMS id) and ``.admin``/``.yijae``/``.john``/``.minji`` are the handles;
``ims_repo.services.sample_data`` documents the data set. The test's other fixtures (``ims_db``,
``ims_admin_url`` …) point at the same seeded database.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import itertools
import os
import socket
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn

import psycopg
import pytest
from psycopg import sql

from ims_repo.services import local_server
from ims_repo.services.clone_pool import (
    ClonePool,
    clone_statement,
    connect_admin,
    drop_statement,
    session_prefix,
    sweep_orphans,
)
from ims_repo.services.local_server import LocalServer
from ims_repo.services.local_server import PgServer as PgServer  # re-exported: fixtures' type

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ims_repo import Database, Session
    from ims_repo.services.sample_data import Sample

#: The runtime login the fixtures create in the template (a member of ``ims_app``).
RUNTIME_LOGIN = "ims_test_app"
#: Its password: only used when the server asks for one (trust auth ignores it).
RUNTIME_PASSWORD = "ims_test_app"
#: Environment variable naming the server to test against (a superuser URL).
DSN_ENV = "IMS_TEST_DATABASE_URL"
#: The ``--ims-dsn``/``IMS_TEST_DATABASE_URL`` value that asks for a throwaway server.
THROWAWAY = "throwaway"
# Looked up through this module's globals, so tests can monkeypatch them here; importable
# from here under the names they had before they moved to local_server.py.
_find_bindir = local_server.find_bindir
_free_port = local_server.free_port
_why_no_throwaway = local_server.why_unavailable

#: The extra that holds what the fixtures need beyond the base dependencies.
EXTRA = "ims-repo[pytest]"
#: Test databases kept cloned ahead, unless ``--ims-clones``/``ims_clones`` says otherwise.
DEFAULT_CLONES = 2

#: The server and its version, as found (``_Found``); kept in the run's stash.
_Found = tuple[PgServer, str]
#: Stash keys: the throwaway server this session started, for the end-of-run line; what
#: the header found (so the fixtures ask once); the databases swept from ended sessions;
#: the seconds each test waited for its database, and each background clone took.
_STARTED = pytest.StashKey[str]()
_FOUND = pytest.StashKey[_Found]()
_PROBED = pytest.StashKey[_Found | None]()
_SWEPT = pytest.StashKey[list[str]]()
_WAITS = pytest.StashKey[list[float]]()
_MADE = pytest.StashKey[list[float]]()

#: Advisory-lock key (in the maintenance database) serialising role changes across sessions.
_ROLE_LOCK = int.from_bytes(b"ims_test", "big")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--ims-dsn``, ``--ims-require-server`` and ``--ims-clones``, each also an ini
    option of the same name (``ims_dsn``…); the command line wins over the ini file."""
    group = parser.getgroup("ims_repo")
    dsn_help = (
        f"superuser URL of the PostgreSQL server for ims_* fixtures, or '{THROWAWAY}' to start "
        f"a private one (default: ${DSN_ENV}, else PG* variables / 127.0.0.1:5432, else a "
        "throwaway server)"
    )
    group.addoption("--ims-dsn", dest="ims_dsn", default=None, metavar="URL", help=dsn_help)
    parser.addini("ims_dsn", f"{dsn_help}; ${DSN_ENV} wins over this", default="")
    require_help = (
        "fail the database tests, instead of skipping them, when no PostgreSQL server can be "
        "found or started (the default when the environment variable CI is set)"
    )
    group.addoption(
        "--ims-require-server",
        dest="ims_require_server",
        action="store_true",
        default=None,
        help=require_help,
    )
    parser.addini("ims_require_server", require_help, type="bool", default=False)
    clones_help = (
        "test databases kept cloned ahead by a background thread, so a test takes one "
        f"without waiting (default {DEFAULT_CLONES}; 0 clones each in the test's setup)"
    )
    group.addoption(
        "--ims-clones", dest="ims_clones", type=int, default=None, metavar="N", help=clones_help
    )
    parser.addini("ims_clones", clones_help, default=str(DEFAULT_CLONES))


def _setting(config: pytest.Config, name: str) -> object:
    """An option's value: the command line's when given, else the ini file's."""
    value = config.getoption(name)
    return config.getini(name) if value is None else value


def _dsn(config: pytest.Config) -> str | None:
    """The server asked for: ``--ims-dsn``, else ``$IMS_TEST_DATABASE_URL``, else ini."""
    given = config.getoption("ims_dsn") or os.environ.get(DSN_ENV) or config.getini("ims_dsn")
    return str(given) if given else None


def _clones(config: pytest.Config) -> int:
    value = _setting(config, "ims_clones")
    try:
        count = int(str(value))
    except ValueError:
        count = -1
    if count < 0:
        raise pytest.UsageError(f"ims_clones must be a whole number >= 0, not {value!r}")
    return count


def _extra(module: str) -> ModuleType:
    """Import *module*, a dependency of the ``pytest`` extra; fail the test, naming the
    extra, when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        problem = str(exc)
    pytest.fail(  # outside the except: the ImportError's traceback would only add noise
        f"ims_repo: the ims_* fixtures need {module}, which cannot be imported ({problem}): "
        f"pip install '{EXTRA}'",
        pytrace=False,
    )


def _server_required(config: pytest.Config) -> str | None:
    """Why a missing server must fail the run (``--ims-require-server``, ``CI``), or None."""
    if config.getoption("ims_require_server"):
        return "--ims-require-server was given"
    if config.getini("ims_require_server"):
        return "the ini option ims_require_server is set"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "the environment variable CI is set"
    return None


def _no_server(config: pytest.Config, message: str) -> NoReturn:
    """Skip the database tests, or fail them when a server is required."""
    required = _server_required(config)
    if required:
        pytest.fail(f"{message} (failing, not skipping: {required})", pytrace=False)
    pytest.skip(message)


# --- finding or starting a server ---------------------------------------------------------


def _describe(conn: psycopg.Connection[object], *, throwaway: bool = False) -> _Found:
    """The server facts libpq actually used for *conn*, and the server's version."""
    info = conn.info
    server = PgServer(
        info.host, info.port, info.user, info.dbname, info.password or None, throwaway
    )
    number = info.server_version
    return server, f"{number // 10000}.{number % 10000}"


def _connect_dsn(config: pytest.Config, dsn: str) -> _Found:
    """The server named by an explicit URL, asked once per run (header and fixture)."""
    found = config.stash.get(_FOUND, None)
    if found is None:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            found = config.stash[_FOUND] = _describe(conn)
    return found


def _from_dsn(config: pytest.Config, dsn: str) -> PgServer:
    """The server named by an explicit URL; fails the tests if it does not answer."""
    try:
        return _connect_dsn(config, dsn)[0]
    except psycopg.OperationalError as exc:
        pytest.fail(f"ims_repo: cannot connect to --ims-dsn/${DSN_ENV}: {exc}", pytrace=False)


def _port_closed(host: str, port: str) -> bool:
    """Whether nothing accepts TCP connections at *host*:*port*, found out in well under a
    second (libpq's own ``connect_timeout`` is at least 2 s, per user tried)."""
    if host.startswith("/") or "," in host or "," in port:
        return False  # a Unix socket or a multi-host list: leave it to libpq
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return False
    except (OSError, ValueError):
        return True


def _probe_default(config: pytest.Config) -> _Found | None:
    """A superuser login at libpq's PG* settings, defaulting to 127.0.0.1:5432; asked once
    per run (the header asks first, the ``ims_server`` fixture reuses the answer)."""
    if _PROBED in config.stash:
        return config.stash[_PROBED]
    env = os.environ
    host = env.get("PGHOST") or "127.0.0.1"
    found = None
    if not _port_closed(host, env.get("PGPORT") or "5432"):
        users = [env["PGUSER"]] if env.get("PGUSER") else []
        if not users:
            with contextlib.suppress(Exception):
                users.append(getpass.getuser())
            users += [] if "postgres" in users else ["postgres"]
        for user in users:
            try:
                with psycopg.connect(
                    host=host,
                    user=user,
                    dbname=env.get("PGDATABASE") or "postgres",
                    connect_timeout=3,
                ) as conn:
                    if conn.info.parameter_status("is_superuser") == "on":
                        found = _describe(conn)
                        break
            except psycopg.OperationalError:
                continue
    config.stash[_PROBED] = found
    return found


@pytest.fixture(scope="session")
def ims_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """The PostgreSQL server for this session (see the module docstring for the order)."""
    config = request.config
    dsn = _dsn(config)
    if dsn and dsn != THROWAWAY:
        yield _from_dsn(config, dsn)
        return
    found = None if dsn == THROWAWAY else _probe_default(config)
    if found is not None:
        yield found[0]
        return
    bindir = _find_bindir()
    reason = _why_no_throwaway(bindir)
    if reason or bindir is None:
        asked = "no superuser login answered at PG*/127.0.0.1:5432"
        if dsn:
            asked = "a throwaway server was asked for"
        _no_server(config, f"ims_repo: {asked} and {reason}; set ${DSN_ENV} or pass --ims-dsn")
    server = LocalServer(bindir)
    try:
        started = server.start()
        with psycopg.connect(started.url(), connect_timeout=3) as conn:
            _, version = _describe(conn)
        config.stash[_STARTED] = (
            f"PostgreSQL {version} at {started.host}:{started.port} as {started.user}"
        )
        yield started
    finally:
        server.stop()


# --- the server in pytest's header ----------------------------------------------------------


def _named(found: _Found, how: str) -> str:
    server, version = found
    return (
        f"PostgreSQL {version} at {server.host}:{server.port} as {server.user} "
        f"({how}, not a throwaway server)"
    )


def pytest_report_header(config: pytest.Config) -> str:
    """Name the server the ims_* fixtures use, found the way ``ims_server`` finds it.

    A throwaway server is only started by a test that needs one, so the header says one
    will be; the line at the end of the run gives its address and version. What the
    header finds out is kept for the fixtures, so the server is asked once per run.
    """
    dsn = _dsn(config)
    try:
        if dsn and dsn != THROWAWAY:
            return f"ims_repo: {_named(_connect_dsn(config, dsn), f'from --ims-dsn/${DSN_ENV}')}"
        found = None if dsn == THROWAWAY else _probe_default(config)
        if found is not None:
            return f"ims_repo: {_named(found, 'PG* variables / 127.0.0.1:5432')}"
    except psycopg.Error as exc:
        where = f"--ims-dsn/${DSN_ENV}" if dsn else "the server at PG*/127.0.0.1:5432"
        return f"ims_repo: {where} does not answer ({str(exc).strip()})"
    bindir = _find_bindir()
    reason = _why_no_throwaway(bindir)
    if reason is None:
        return f"ims_repo: a throwaway server from {bindir}, started if a test needs one"
    then = "fail" if _server_required(config) else "be skipped"
    return f"ims_repo: no PostgreSQL server ({reason}): database tests will {then}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the throwaway server this session started, if it started one; give the
    per-test database figures and the databases swept from crashed sessions."""
    config = terminalreporter.config
    started = config.stash.get(_STARTED, None)
    if started is not None:
        terminalreporter.write_line(f"ims_repo: used a throwaway server: {started}")
    swept = config.stash.get(_SWEPT, [])
    if swept:
        terminalreporter.write_line(
            f"ims_repo: dropped {len(swept)} database(s) left by ended sessions: "
            + ", ".join(swept)
        )
    figures = database_figures(config)
    if figures:
        terminalreporter.write_line(
            "ims_repo: " + "; ".join(f"{name} {value}" for name, value in figures)
        )


# --- figures --------------------------------------------------------------------------------

#: Where a pytest-xdist worker sends its figures to the controller (``workeroutput``).
_WORKER_KEYS = {"ims_repo_waits": _WAITS, "ims_repo_made": _MADE}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, collect the workers' figures on the controller."""
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_WorkerFigures(config), "ims_repo_worker_figures")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker, hand this worker's figures to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        for key, stash_key in _WORKER_KEYS.items():
            output[key] = session.config.stash.get(stash_key, [])


class _WorkerFigures:
    """The controller's side: each worker's figures, added up as the workers finish."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node: object, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        for key, stash_key in _WORKER_KEYS.items():
            self.config.stash.setdefault(stash_key, []).extend(output.get(key, []))


def database_figures(config: pytest.Config) -> list[tuple[str, str]]:
    """The run's per-test database figures (also from pytest-xdist's workers), as
    (name, value) pairs: how many, and the setup time a test saw, median and p90."""
    waits: list[float] = config.stash.get(_WAITS, [])
    if not waits:
        return []
    made: list[float] = config.stash.get(_MADE, [])
    figures = [
        ("test databases", str(len(waits))),
        ("setup median", _ms(statistics.median(waits))),
        ("setup p90", _ms(_p90(waits))),
    ]
    if made:
        figures.append(("background clone median", _ms(statistics.median(made))))
    return figures


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- databases ----------------------------------------------------------------------------


class _Admin:
    """One autocommit superuser connection to the maintenance database, for CREATE/DROP.

    Kept open for the session (a connection per test would cost more than the clone's
    bookkeeping), and reopened if the server dropped it.
    """

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.prefix = session_prefix()
        self._counter = itertools.count(1)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def new_name(self, kind: str) -> str:
        """A database name unique to this session: ``ims_<kind>_<pid>_<host>_<token>_<n>``."""
        return f"ims_{kind}_{self.prefix}_{next(self._counter)}"

    def execute(self, query: sql.Composed) -> None:
        """Run *query*, reconnecting once if the connection was lost."""
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = connect_admin(self.server.url())
            try:
                self._conn.execute(query)
                return
            except psycopg.OperationalError:
                if attempt == 2 or not self._conn.broken:
                    raise
                self._conn = None

    def create(self, name: str, template: str) -> None:
        """CREATE DATABASE *name* as a copy of *template*."""
        self.execute(clone_statement(name, template))

    def drop(self, name: str) -> None:
        """Drop *name*, terminating whatever is still connected to it."""
        self.execute(drop_statement(name))

    @contextlib.contextmanager
    def role_lock(self) -> Iterator[None]:
        """Hold a server-wide advisory lock: roles are cluster-wide, and two sessions
        altering the same role at once fail with "tuple concurrently updated"."""
        self.execute(sql.SQL("SELECT pg_advisory_lock({})").format(sql.Literal(_ROLE_LOCK)))
        try:
            yield
        finally:
            self.execute(sql.SQL("SELECT pg_advisory_unlock({})").format(sql.Literal(_ROLE_LOCK)))

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()


@pytest.fixture(scope="session")
def _ims_admin(request: pytest.FixtureRequest, ims_server: PgServer) -> Iterator[_Admin]:
    # First drop what sessions of this host that ended without cleaning up (killed,
    # crashed) left behind: their names carry their process id.
    request.config.stash[_SWEPT] = sweep_orphans(ims_server.url())
    admin = _Admin(ims_server)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(scope="session")
def ims_template(ims_server: PgServer, _ims_admin: _Admin) -> Iterator[str]:
    """Name of a database migrated once for the session, with the runtime login; a TEMPLATE."""
    from ims_repo.services.migrations import grant_login, migrate

    janitor_module = _extra("pytest_postgresql.janitor")
    name = f"ims_tmpl_{_ims_admin.prefix}"
    janitor = janitor_module.DatabaseJanitor(
        user=ims_server.user,
        password=ims_server.password,
        host=ims_server.host,
        port=ims_server.port,
        dbname=name,
        template_dbname="template0",  # nobody can be connected to it (template1: maybe)
        maintenance_dbname=ims_server.dbname,
        as_template=True,
        connection_timeout=10,
    )
    janitor.init()
    try:
        url = ims_server.url(name)
        migrate(url)
        with _ims_admin.role_lock():
            grant_login(url, RUNTIME_LOGIN, RUNTIME_PASSWORD)
        _disconnect_all(_ims_admin, name)
        yield name
    finally:
        janitor.drop()


def _disconnect_all(admin: _Admin, name: str) -> None:
    """End every connection to *name*: CREATE DATABASE … TEMPLATE needs none left."""
    admin.execute(
        sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
            sql.Literal(name)
        )
    )


@pytest.fixture(scope="session")
def _ims_sample_template(
    ims_server: PgServer, ims_template: str, _ims_admin: _Admin
) -> Iterator[tuple[str, Sample]]:
    """A clone of the template with the sample data loaded once; its name and handles.

    Built on first use only, so sessions without ``ims_sample`` never pay for it.
    """
    from ims_repo import Database
    from ims_repo.services.sample_data import load

    name = f"ims_sample_{_ims_admin.prefix}"
    _ims_admin.create(name, ims_template)
    try:
        app_url = ims_server.url(name, user=RUNTIME_LOGIN, password=RUNTIME_PASSWORD)
        with Database(app_url, min_size=1, max_size=1) as db:
            sample = load(db, owner_url=ims_server.url(name))
        _disconnect_all(_ims_admin, name)
        yield name, sample
    finally:
        _ims_admin.drop(name)


def _start_pool(
    request: pytest.FixtureRequest, admin: _Admin, template: str
) -> Iterator[ClonePool]:
    """A clone pool of *template* for the session; its figures go to the run's at the end."""
    pool = ClonePool(
        admin.server.url(), template, lambda: admin.new_name("test"), size=_clones(request.config)
    )
    pool.start()
    try:
        yield pool
    finally:
        pool.close()
        stash = request.config.stash
        stash.setdefault(_WAITS, []).extend(pool.waited)
        stash.setdefault(_MADE, []).extend(pool.made)


@pytest.fixture(scope="session")
def _ims_pool(
    request: pytest.FixtureRequest, ims_template: str, _ims_admin: _Admin
) -> Iterator[ClonePool]:
    """Clones of the migrated template, made ahead in the background."""
    yield from _start_pool(request, _ims_admin, ims_template)


@pytest.fixture(scope="session")
def _ims_sample_pool(
    request: pytest.FixtureRequest, _ims_sample_template: tuple[str, Sample], _ims_admin: _Admin
) -> Iterator[ClonePool]:
    """Clones of the seeded template, made ahead in the background once a test asked."""
    yield from _start_pool(request, _ims_admin, _ims_sample_template[0])


@dataclass(frozen=True)
class _Clone:
    """This test's database: its name, and the sample handles when it was cloned seeded."""

    name: str
    sample: Sample | None


@pytest.fixture
def _ims_clone(request: pytest.FixtureRequest, _ims_pool: ClonePool) -> Iterator[_Clone]:
    # A test that asks for ims_sample (directly or through a fixture of its own) gets a
    # clone of the seeded template: seeded tests then cost one clone, like any other.
    pool, sample = _ims_pool, None
    if "ims_sample" in request.fixturenames:
        pool = request.getfixturevalue("_ims_sample_pool")
        sample = request.getfixturevalue("_ims_sample_template")[1]
    name = pool.take()
    try:
        yield _Clone(name, sample)
    finally:
        pool.give_back(name)


@pytest.fixture
def ims_admin_url(ims_server: PgServer, _ims_clone: _Clone) -> str:
    """Superuser URL of this test's own migrated database (dropped after the test)."""
    return ims_server.url(_ims_clone.name)


@pytest.fixture
def ims_app_url(ims_server: PgServer, _ims_clone: _Clone) -> str:
    """URL of this test's database as the runtime login ``ims_test_app`` (subject to RLS)."""
    return ims_server.url(_ims_clone.name, user=RUNTIME_LOGIN, password=RUNTIME_PASSWORD)


@pytest.fixture
def ims_sample(request: pytest.FixtureRequest, _ims_clone: _Clone) -> Sample:
    """The sample data set (``ims_repo.services.sample_data``) in this test's database; its ids.

    The database is a clone of a template seeded once per session, so this costs what
    any test's database costs. (Requested only at run time, with
    ``request.getfixturevalue``, after the database was made, it loads the data into it
    instead: the same data and ids, at the price of a load.)
    """
    if _ims_clone.sample is not None:
        return _ims_clone.sample
    from ims_repo.services.sample_data import load

    db: Database = request.getfixturevalue("ims_db")
    return load(db, owner_url=request.getfixturevalue("ims_admin_url"))


@pytest.fixture
def ims_empty_url(ims_server: PgServer, _ims_admin: _Admin) -> Iterator[str]:
    """Superuser URL of a fresh, empty (unmigrated) database, dropped after the test."""
    name = _ims_admin.new_name("empty")
    _ims_admin.create(name, "template0")
    try:
        yield ims_server.url(name)
    finally:
        _ims_admin.drop(name)


@pytest.fixture
def ims_db(ims_app_url: str) -> Iterator[Database]:
    """A pooled ``Database`` on this test's database as the runtime login, closed after."""
    from ims_repo import Database

    db = Database(ims_app_url, min_size=1, max_size=4)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def ims_session(ims_db: Database) -> Callable[..., AbstractContextManager[Session]]:
    """A session factory: ``with ims_session(user_id=2) as s:`` is ``ims_db.session(…)``."""
    return ims_db.session
