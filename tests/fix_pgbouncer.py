"""A real pgbouncer in front of the test server (imported by ``tests/conftest.py``).

- ``pgbouncer``: a factory, ``pgbouncer("transaction")`` (or ``"session"``) starts
  Debian's pgbouncer on a free port of 127.0.0.1 in front of the plugin's server and
  returns a ``Bouncer``; ``bouncer.url(ims_app_url)`` is the same login and database
  reached through it. Every pgbouncer started is stopped at the end of the test (before
  the test's database is dropped). Its pool: ``pool_size=`` server connections per
  database and login, 3 by default, so 8 threads share 3 server connections.

pgbouncer runs with ``auth_type = trust`` and an ``auth_file`` listing the server's
logins with their passwords (for its own logins to the server), no Unix socket, as the
``postgres`` OS user when the tests run as root (it refuses to run as root). When the
binary is missing (``scripts/ensure-pgbouncer`` installs it as root) the tests that need
it skip, or fail when the environment variable ``CI`` is set: CI must not go green by
skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ims_repo.faces.pytest_plugin import RUNTIME_LOGIN, RUNTIME_PASSWORD
from ims_repo.services.local_server import PgServer, free_port

PoolMode = Literal["transaction", "session"]
POOL_SIZE = 3
"""Server connections per database and login."""
_DEBIAN_PATH = "/usr/sbin/pgbouncer"
_START_WAIT = 10.0
"""Seconds to wait for pgbouncer to listen (or to exit when stopped)."""


@dataclass
class Bouncer:
    """A running pgbouncer: where it listens and how to stop it."""

    port: int
    pool_mode: PoolMode
    directory: Path

    def url(self, url: str) -> str:
        """``url`` (a login and database of the test server) reached through pgbouncer."""
        return make_conninfo(url, host="127.0.0.1", port=str(self.port))

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM): its server connections close; wait for the exit."""
        pidfile = self.directory / "pgbouncer.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + _START_WAIT
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # ProcessLookupError once it is gone
                time.sleep(0.02)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


def pgbouncer_binary() -> str | None:
    """The pgbouncer executable, or None."""
    found = shutil.which("pgbouncer")
    if found is None and os.access(_DEBIAN_PATH, os.X_OK):
        found = _DEBIAN_PATH
    return found


def start_bouncer(server: PgServer, pool_mode: PoolMode, pool_size: int = POOL_SIZE) -> Bouncer:
    """Start pgbouncer in front of ``server``: every database name is forwarded to the
    database of the same name there (the ``*`` fallback entry)."""
    binary = pgbouncer_binary()
    if binary is None:
        message = (
            "pgbouncer is not installed (scripts/ensure-pgbouncer installs Debian's "
            "package when run as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    directory = Path(tempfile.mkdtemp(prefix="ims-pgbouncer-"))
    port = free_port()
    logins = {server.user: server.password or "", RUNTIME_LOGIN: RUNTIME_PASSWORD}
    (directory / "users.txt").write_text(
        "".join(f'"{login}" "{password}"\n' for login, password in logins.items())
    )
    (directory / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={server.host} port={server.port}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {directory / 'users.txt'}",
                f"pool_mode = {pool_mode}",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 100",
                f"logfile = {directory / 'pgbouncer.log'}",
                f"pidfile = {directory / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    command = [binary, "-d", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(directory, "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    bouncer = Bouncer(port, pool_mode, directory)
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=_START_WAIT)
        _wait_until_it_answers(bouncer, server)
    except BaseException:
        log = directory / "pgbouncer.log"
        print(log.read_text() if log.exists() else "(no pgbouncer log)")
        bouncer.stop()
        raise
    return bouncer


def _wait_until_it_answers(bouncer: Bouncer, server: PgServer) -> None:
    deadline = time.monotonic() + _START_WAIT
    target = bouncer.url(server.url())
    while True:
        try:
            with psycopg.connect(target, connect_timeout=2, prepare_threshold=None) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


StartBouncer = Callable[..., Bouncer]


@pytest.fixture
def pgbouncer(ims_server: PgServer, ims_app_url: str) -> Iterator[StartBouncer]:
    """``pgbouncer(pool_mode="transaction", pool_size=3)``: a pgbouncer in front of this test's server,
    stopped after the test, before its database is dropped (hence ``ims_app_url``)."""
    started: list[Bouncer] = []

    def start(pool_mode: PoolMode = "transaction", pool_size: int = POOL_SIZE) -> Bouncer:
        bouncer = start_bouncer(ims_server, pool_mode, pool_size)
        started.append(bouncer)
        return bouncer

    yield start
    for bouncer in started:
        bouncer.stop()
