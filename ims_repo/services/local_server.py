"""A private PostgreSQL server started from the local binaries.

One implementation for the two places that need a server where none is configured: the
pytest plugin's throwaway server (a temporary directory, deleted at the end) and
``ims-repo demo`` (data kept in ``.ims-pg/`` so a second run starts in a fraction of a
second and finds its data again).

How it runs: ``initdb`` (only when the data directory is new), then ``pg_ctl start`` on a
free TCP port of 127.0.0.1, with trust authentication for the superuser ``postgres`` and
no Unix socket (a socket path has a length limit and needs a directory every client can
reach; loopback TCP needs neither). ``pg_ctl`` refuses to run as root, so as root every
command runs as the ``postgres`` OS user (``runuser``) on files chowned to it, as
Debian's own cluster scripts do.

A streaming standby of a running private server (``server.standby()``) is made the same
way from ``pg_basebackup -R`` instead of ``initdb``, for the replica and failover tests:
``promote()`` makes it a primary, ``stop(mode="immediate")`` kills a server as a crash would.

The binaries are ``initdb``/``pg_ctl`` on ``PATH``, else Debian's newest
``/usr/lib/postgresql/<version>/bin`` (15 or later). This module imports neither pytest
nor the rest of ims_repo.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlencode

__all__ = [
    "LocalServer",
    "LocalServerError",
    "PgServer",
    "find_bindir",
    "free_port",
    "reachable_by",
    "scratch_parent",
    "why_unavailable",
]

#: The OS user PostgreSQL runs as when this process is root.
SERVER_OS_USER = "postgres"
#: The superuser ``initdb`` creates (trust authentication, loopback only).
SUPERUSER = "postgres"

# Settings for data nobody needs after a crash: a throwaway server loses nothing that
# matters without fsync, and gains a lot on disk-backed virtual machines.
_THROWAWAY_SETTINGS = ("fsync=off", "full_page_writes=off", "synchronous_commit=off")
# Kept data (the demo's) keeps fsync, so a power cut cannot corrupt it; commits still
# return before the WAL is flushed.
_KEPT_SETTINGS = ("synchronous_commit=off",)


class LocalServerError(RuntimeError):
    """The private server could not be set up, started or stopped; says why."""


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server and a superuser login on it."""

    host: str
    port: int
    user: str
    dbname: str
    """The maintenance database: other databases are created and dropped from here."""
    password: str | None = None
    throwaway: bool = False
    """True when this process started the server (it stops it when done)."""

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


def find_bindir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``: on PATH, else Debian's newest ≥ 15."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        # A symlinked pg_ctl (/usr/local/bin -> /usr/lib/postgresql/15/bin): its real
        # directory also holds the tools not linked onto PATH (pg_basebackup).
        real = Path(on_path).resolve().parent
        return real if (real / "initdb").exists() else Path(on_path).parent
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    for bindir in sorted(debian, key=lambda p: int(p.parent.name), reverse=True):
        if int(bindir.parent.name) >= 15 and (bindir / "initdb").exists():
            return bindir
    return None


def why_unavailable(bindir: Path | None) -> str | None:
    """Why this machine cannot start a private server, or None if it can."""
    if bindir is None:
        return "no PostgreSQL binaries (initdb, pg_ctl) found"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
        try:
            pwd.getpwnam(SERVER_OS_USER)
        except KeyError:
            return (
                f"running as root and there is no {SERVER_OS_USER!r} OS user to run PostgreSQL as"
            )
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scratch_parent() -> str | None:
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


def reachable_by(path: Path, os_user: str | None) -> bool:
    """Whether *os_user* (None: this process) can reach *path*'s directory.

    As root the server runs as another OS user, which must be able to pass through every
    directory above its files (``/root/project/.ims-pg`` is out of reach of
    ``postgres``: ``/root`` is 0700). Checked by the "others may search" bit of each
    ancestor not owned by that user; group membership is not considered (a miss only
    means a temporary directory is used instead).
    """
    if os_user is None:
        return True
    try:
        uid = pwd.getpwnam(os_user).pw_uid
    except KeyError:
        return False
    for ancestor in path.resolve().parents:
        info = ancestor.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            return False
    return True


class LocalServer:
    """A private PostgreSQL instance, from ``initdb`` to ``pg_ctl stop``.

    ``root`` None: a new temporary directory (in ``/dev/shm`` when there is room),
    deleted by ``stop()`` — a throwaway server. ``root`` given: the data lives in
    ``root/data`` and is kept; a later ``start()`` with the same root skips ``initdb``
    and finds its databases again. If a server from an earlier run is still running on
    that data, ``start()`` uses it and ``stop()`` leaves it running (it is not ours).

    ``settings`` (``name=value``) are passed to the server after the defaults, so they
    win (``synchronous_commit=on`` for a primary whose commits a standby must confirm).
    ``primary``: the server is a streaming standby of that one (see ``standby()``).

    Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        bindir: Path,
        *,
        root: Path | None = None,
        settings: Sequence[str] = (),
        primary: PgServer | None = None,
    ) -> None:
        self.bindir = bindir
        self.settings = tuple(settings)
        self.primary = primary
        self.server: PgServer | None = None
        """The running server, once ``start()`` returned."""
        self.run_as = SERVER_OS_USER if os.geteuid() == 0 else None
        self.keep = root is not None
        self.root = root if root is not None else Path(_make_temp_root())
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.started = False
        """True while a server this object started is running."""
        self.initialized = False
        """True when ``start()`` ran ``initdb`` (the data directory was new)."""

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PgServer:
        """Create the data directory if needed and start the server on a free port."""
        try:
            return self._start()
        except BaseException:
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
            raise

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if this object started it; delete a temporary root.

        ``mode`` is ``pg_ctl``'s: ``fast`` (the default) or ``immediate``, which ends the
        server at once without a checkpoint, as a crash or a pulled plug would."""
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
                self.started = False
        finally:
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def standby(self, *, settings: Sequence[str] = ()) -> LocalServer:
        """A new throwaway server that streams from this running one, not started yet:
        its ``start()`` copies the data with ``pg_basebackup -R`` (which writes the
        ``primary_conninfo`` and ``standby.signal``) and starts a hot standby on a free
        port. It is a synchronous standby when this server's ``synchronous_standby_names``
        names it (``'*'``); that setting is not copied if it was passed in ``settings``
        or set after the copy, so a promoted standby does not wait for a standby of its own.
        """
        if self.server is None or not self.started:
            raise LocalServerError("ims_repo: start the primary before making a standby of it")
        return LocalServer(self.bindir, settings=settings, primary=self.server)

    def promote(self) -> None:
        """Make this standby a primary (``pg_ctl promote``, waiting until it accepts writes)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    # --- internals ------------------------------------------------------------------

    def _start(self) -> PgServer:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.keep:
            ignore = self.root / ".gitignore"
            if not ignore.exists():  # keep a data directory in a checkout out of git
                ignore.write_text("# ims-repo demo: a private PostgreSQL server's files\n*\n")
        if self.run_as:
            owner = pwd.getpwnam(self.run_as)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        running = self._running_port()
        if running is not None:
            self.server = PgServer("127.0.0.1", running, SUPERUSER, "postgres")
            return self.server
        if not (self.data / "PG_VERSION").exists():
            if self.primary is not None:
                self._basebackup(self.primary)
            else:
                self._initdb()
        self._check_version()
        settings = (*(_KEPT_SETTINGS if self.keep else _THROWAWAY_SETTINGS), *self.settings)
        for attempt in range(3):
            port = free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    "-c listen_addresses=127.0.0.1",
                    "-c unix_socket_directories=''",
                    *(f"-c {setting}" for setting in settings),
                ]
            )
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-o",
                    options,
                    "start",
                )
            except LocalServerError:  # most likely the port was taken meanwhile
                if attempt == 2:
                    raise
                continue
            self.started = True
            self.server = PgServer("127.0.0.1", port, SUPERUSER, "postgres", throwaway=True)
            return self.server
        raise AssertionError("unreachable")

    def _initdb(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)  # a half-made one from a failed run
        initdb = ["-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"]
        try:
            self._run("initdb", *initdb, "--locale=C.UTF-8", "--no-sync", "--no-instructions")
        except LocalServerError:  # no C.UTF-8 locale on this system
            shutil.rmtree(self.data, ignore_errors=True)
            self._run("initdb", *initdb, "--no-locale", "--no-sync", "--no-instructions")
        self.initialized = True

    def _basebackup(self, primary: PgServer) -> None:
        """Copy ``primary``'s data for a standby (``-R``: the recovery settings too)."""
        shutil.rmtree(self.data, ignore_errors=True)
        source = f"host={primary.host} port={primary.port} user={primary.user}"
        self._run(
            "pg_basebackup",
            *("-D", str(self.data), "-d", source),
            *("-R", "-X", "stream", "-c", "fast", "--no-sync"),
        )

    def _check_version(self) -> None:
        """Kept data made by another major version cannot be started by these binaries."""
        made_by = (self.data / "PG_VERSION").read_text().strip()
        ours = self._major_version()
        if ours is not None and made_by != ours:
            raise LocalServerError(
                f"ims_repo: {self.data} was made by PostgreSQL {made_by}, but the binaries "
                f"in {self.bindir} are version {ours}; delete {self.root} to start afresh"
            )

    def _major_version(self) -> str | None:
        done = subprocess.run(
            [str(self.bindir / "pg_ctl"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        words = done.stdout.split()
        return words[-1].split(".")[0] if done.returncode == 0 and words else None

    def _running_port(self) -> int | None:
        """The port of a server still running on our data (from an earlier run), if any.

        ``postmaster.pid`` holds the port on its fourth line; ``pg_ctl status`` tells a
        live server from a stale file left by a crash.
        """
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except LocalServerError:
            return None
        lines = pid_file.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].isdigit() else None

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self.bindir / program), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(
            cmd,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise LocalServerError(
                f"ims_repo: {shlex.join(cmd)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}{tail}"
            )


def _make_temp_root() -> str:
    return tempfile.mkdtemp(prefix="ims-pg-", dir=scratch_parent())
