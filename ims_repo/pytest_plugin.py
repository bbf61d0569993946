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
==================  ========  ===========================================================

The server comes from ``--ims-dsn`` or ``IMS_TEST_DATABASE_URL`` (a superuser URL); else
from libpq's ``PG*`` variables and defaults (127.0.0.1:5432 as the OS user or
``postgres``) when a superuser can log in there; else the plugin starts a throwaway
server from the local PostgreSQL binaries (as root: as the ``postgres`` OS user) and
stops it at the end of the session; else tests that need a database are skipped. The
value ``throwaway`` asks for a throwaway server even when another one is running: its
files live in ``/dev/shm`` when there is room, which makes each clone several times
cheaper than on a disk-backed server.

Each test's database is ``CREATE DATABASE … TEMPLATE`` of the migrated template, so a
test pays tens of milliseconds, not a migration run. Names carry the process id and a
random token, so parallel sessions (pytest-xdist, several CI jobs) share a server safely.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql.janitor import DatabaseJanitor

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from ims_repo import Database, Session

#: The runtime login the fixtures create in the template (a member of ``ims_app``).
RUNTIME_LOGIN = "ims_test_app"
#: Its password: only used when the server asks for one (trust auth ignores it).
RUNTIME_PASSWORD = "ims_test_app"
#: Environment variable naming the server to test against (a superuser URL).
DSN_ENV = "IMS_TEST_DATABASE_URL"
#: The ``--ims-dsn``/``IMS_TEST_DATABASE_URL`` value that asks for a throwaway server.
THROWAWAY = "throwaway"
#: Advisory-lock key (in the maintenance database) serialising role changes across sessions.
_ROLE_LOCK = int.from_bytes(b"ims_test", "big")


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server and a superuser login on it, as the fixtures use it."""

    host: str
    port: int
    user: str
    dbname: str
    """The maintenance database: test databases are created and dropped from here."""
    password: str | None = None
    throwaway: bool = False
    """True when this plugin started the server for the current session."""

    def url(
        self, dbname: str | None = None, *, user: str | None = None, password: str | None = None
    ) -> str:
        """A libpq URL for *dbname* (default: the maintenance database) on this server.

        Without *user* it logs in as the superuser; with *user*, with *password* (if any).
        """
        login, secret = (self.user, self.password) if user is None else (user, password)
        auth = quote(login, safe="") + (f":{quote(secret, safe='')}" if secret else "")
        path = quote(dbname or self.dbname, safe="")
        if self.host.startswith("/"):  # a Unix-socket directory goes in the query string
            return (
                f"postgresql://{auth}@/{path}?{urlencode({'host': self.host, 'port': self.port})}"
            )
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{auth}@{host}:{self.port}/{path}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--ims-dsn``."""
    parser.getgroup("ims_repo").addoption(
        "--ims-dsn",
        dest="ims_dsn",
        default=None,
        metavar="URL",
        help=f"superuser URL of the PostgreSQL server for ims_* fixtures, or '{THROWAWAY}' "
        f"to start a private one (default: ${DSN_ENV}, else PG* variables / 127.0.0.1:5432, "
        "else a throwaway server)",
    )


# --- finding or starting a server ---------------------------------------------------------


def _describe(conn: psycopg.Connection[object], *, throwaway: bool = False) -> PgServer:
    """The server facts libpq actually used for *conn*."""
    info = conn.info
    return PgServer(info.host, info.port, info.user, info.dbname, info.password or None, throwaway)


def _from_dsn(dsn: str) -> PgServer:
    """The server named by an explicit URL; fails the tests if it does not answer."""
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            return _describe(conn)
    except psycopg.OperationalError as exc:
        pytest.fail(f"ims_repo: cannot connect to --ims-dsn/${DSN_ENV}: {exc}", pytrace=False)


def _probe_default() -> PgServer | None:
    """A superuser login at libpq's PG* settings, defaulting to 127.0.0.1:5432."""
    env = os.environ
    users = [env["PGUSER"]] if env.get("PGUSER") else []
    if not users:
        with contextlib.suppress(Exception):
            users.append(getpass.getuser())
        users += [] if "postgres" in users else ["postgres"]
    for user in users:
        try:
            with psycopg.connect(
                host=env.get("PGHOST") or "127.0.0.1",
                user=user,
                dbname=env.get("PGDATABASE") or "postgres",
                connect_timeout=3,
            ) as conn:
                if conn.info.parameter_status("is_superuser") == "on":
                    return _describe(conn)
        except psycopg.OperationalError:
            continue
    return None


def _find_bindir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``: on PATH, else Debian's newest ≥ 15."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    for bindir in sorted(debian, key=lambda p: int(p.parent.name), reverse=True):
        if int(bindir.parent.name) >= 15 and (bindir / "initdb").exists():
            return bindir
    return None


def _scratch_parent() -> str | None:
    """``/dev/shm`` when it is writable with room to spare, else None (the temp dir).

    Data files in memory make ``CREATE DATABASE … TEMPLATE`` far cheaper: it creates and
    opens hundreds of files, which costs 100+ ms on some disk-backed virtual machines.
    """
    shm = "/dev/shm"
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= 2 * 1024**3
    return shm if roomy and os.access(shm, os.W_OK | os.X_OK) else None


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _ThrowawayServer:
    """A private PostgreSQL instance in a temporary directory, for one test session.

    ``pg_ctl`` refuses to run as root, so as root every command runs as the ``postgres``
    OS user (``runuser``) on a data directory chowned to it.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.tmp = Path(tempfile.mkdtemp(prefix="ims-pg-", dir=_scratch_parent()))
        self.data = self.tmp / "data"
        self.started = False

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self.bindir / program), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(
            cmd,
            cwd=self.tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            log = self.tmp / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"ims_repo: {shlex.join(cmd)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}{tail}"
            )

    def start(self) -> PgServer:
        """initdb, then start on a free port; returns the server's facts."""
        if self.run_as:
            owner = pwd.getpwnam(self.run_as)
            os.chown(self.tmp, owner.pw_uid, owner.pw_gid)
        initdb = ["-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        try:
            self._run("initdb", *initdb, "--locale=C.UTF-8", "--no-sync", "--no-instructions")
        except RuntimeError:  # no C.UTF-8 locale on this system
            shutil.rmtree(self.data, ignore_errors=True)
            self._run("initdb", *initdb, "--no-locale", "--no-sync", "--no-instructions")
        for attempt in range(3):
            port = _free_port()
            options = (
                f"-p {port} -k {shlex.quote(str(self.tmp))} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            )
            try:
                log = str(self.tmp / "server.log")
                self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, "start")
            except RuntimeError:  # most likely the port was taken meanwhile
                if attempt == 2:
                    raise
                continue
            self.started = True
            return PgServer("127.0.0.1", port, "postgres", "postgres", throwaway=True)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _why_no_throwaway(bindir: Path | None) -> str | None:
    """Why this machine cannot start a throwaway server, or None if it can."""
    if bindir is None:
        return "no PostgreSQL binaries (initdb, pg_ctl) found"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run PostgreSQL as"
    return None


@pytest.fixture(scope="session")
def ims_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """The PostgreSQL server for this session (see the module docstring for the order)."""
    dsn = request.config.getoption("ims_dsn") or os.environ.get(DSN_ENV)
    if dsn and dsn != THROWAWAY:
        yield _from_dsn(dsn)
        return
    found = None if dsn == THROWAWAY else _probe_default()
    if found is not None:
        yield found
        return
    bindir = _find_bindir()
    reason = _why_no_throwaway(bindir)
    if reason or bindir is None:
        asked = "no superuser login answered at PG*/127.0.0.1:5432"
        if dsn:
            asked = "a throwaway server was asked for"
        pytest.skip(f"ims_repo: {asked} and {reason}; set ${DSN_ENV} or pass --ims-dsn")
    server = _ThrowawayServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


# --- databases ----------------------------------------------------------------------------


class _Admin:
    """One autocommit superuser connection to the maintenance database, for CREATE/DROP.

    Kept open for the session (a connection per test would cost more than the clone's
    bookkeeping), and reopened if the server dropped it.
    """

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.prefix = f"{os.getpid()}_{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def new_name(self, kind: str) -> str:
        """A database name unique to this session: ``ims_<kind>_<pid>_<token>_<n>``."""
        return f"ims_{kind}_{self.prefix}_{next(self._counter)}"

    def execute(self, query: sql.Composed) -> None:
        """Run *query*, reconnecting once if the connection was lost."""
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.server.url(), autocommit=True)
            try:
                self._conn.execute(query)
                return
            except psycopg.OperationalError:
                if attempt == 2 or not self._conn.broken:
                    raise
                self._conn = None

    def create(self, name: str, template: str) -> None:
        """CREATE DATABASE *name* as a copy of *template*."""
        self.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )

    def drop(self, name: str) -> None:
        """Drop *name*, terminating whatever is still connected to it."""
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

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
def _ims_admin(ims_server: PgServer) -> Iterator[_Admin]:
    admin = _Admin(ims_server)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(scope="session")
def ims_template(ims_server: PgServer, _ims_admin: _Admin) -> Iterator[str]:
    """Name of a database migrated once for the session, with the runtime login; a TEMPLATE."""
    from ims_repo.migrations import grant_login, migrate

    name = f"ims_tmpl_{_ims_admin.prefix}"
    janitor = DatabaseJanitor(
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
        # Nobody may stay connected to a template, or CREATE DATABASE … TEMPLATE fails.
        _ims_admin.execute(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
            ).format(sql.Literal(name))
        )
        yield name
    finally:
        janitor.drop()


@pytest.fixture
def _ims_clone(ims_template: str, _ims_admin: _Admin) -> Iterator[str]:
    name = _ims_admin.new_name("test")
    _ims_admin.create(name, ims_template)
    try:
        yield name
    finally:
        _ims_admin.drop(name)


@pytest.fixture
def ims_admin_url(ims_server: PgServer, _ims_clone: str) -> str:
    """Superuser URL of this test's own migrated database (dropped after the test)."""
    return ims_server.url(_ims_clone)


@pytest.fixture
def ims_app_url(ims_server: PgServer, _ims_clone: str) -> str:
    """URL of this test's database as the runtime login ``ims_test_app`` (subject to RLS)."""
    return ims_server.url(_ims_clone, user=RUNTIME_LOGIN, password=RUNTIME_PASSWORD)


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
