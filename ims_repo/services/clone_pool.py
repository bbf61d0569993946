"""Per-test databases handed out in milliseconds: clones of a template made ahead of time.

``CREATE DATABASE … TEMPLATE`` of the migrated template costs 20 to 130 ms on a disk-backed
server that other work shares (measured on the system cluster, 8.7 MB template:
``STRATEGY WAL_LOG``, the default, 22 to 61 ms; ``FILE_COPY`` 34 to 129 ms, and worse under
concurrency, because each one checkpoints), and ``DROP DATABASE`` another 10 to 300 ms. A
test should pay neither. A :class:`ClonePool` keeps ``size`` clones ready, made by a
background thread on its own connection; :meth:`ClonePool.take` hands one out (waiting
only when the tests use them faster than the server makes them), and
:meth:`ClonePool.give_back` queues a used one for a second thread to drop (a drop can
wait seconds for the checkpoint it requests on a busy server, and must not hold up a
clone). :meth:`ClonePool.close` stops both and drops every clone the pool still holds.

Names carry the process id and a tag of the host (:func:`session_prefix`), so a session
that crashed before its clean-up leaves databases a later session can recognise as
orphans and drop (:func:`sweep_orphans`): only those of this host whose process is gone.
The fixtures' own connections carry the same id in their ``application_name``
(:func:`connect_admin`): a killed session's ``CREATE DATABASE`` runs on in the server
until it ends, so the sweep ends such backends first and only then looks for orphans.

This module imports neither pytest nor the rest of ims_repo.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

__all__ = [
    "ClonePool",
    "clone_statement",
    "connect_admin",
    "create_clone",
    "drop_database",
    "drop_statement",
    "host_tag",
    "session_prefix",
    "sweep_orphans",
]

#: The kinds of database the fixtures make; part of every name.
KINDS = ("tmpl", "sample", "test", "empty")
_NAME = re.compile(
    r"^ims_(?:" + "|".join(KINDS) + r")_(?P<pid>\d+)_(?P<host>[0-9a-f]{4})_[0-9a-f]{6}(?:_\d+)?$"
)


def host_tag() -> str:
    """Four hex digits naming this host, so a sweep leaves other hosts' databases alone."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]


def session_prefix() -> str:
    """``<pid>_<host tag>_<random>``: what every database name of one session carries."""
    return f"{os.getpid()}_{host_tag()}_{secrets.token_hex(3)}"


#: ``application_name`` of the fixtures' connections, before ``<pid>_<host tag>``.
_APPLICATION = "ims_repo fixtures "
_APPLICATION_NAME = re.compile(
    "^" + re.escape(_APPLICATION) + r"(?P<pid>\d+)_(?P<host>[0-9a-f]{4})$"
)
#: How long the sweep waits for a dead session's backend to end (ms).
_END_BACKEND_WAIT_MS = 30_000


def connect_admin(url: str) -> psycopg.Connection[TupleRow]:
    """An autocommit connection named after this process and host, so that a later
    session's :func:`sweep_orphans` can tell it outlived its session."""
    name = f"{_APPLICATION}{os.getpid()}_{host_tag()}"
    return psycopg.connect(url, autocommit=True, application_name=name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _orphaned(pid: str, host: str) -> bool:
    """Whether *pid* names a process of this host that has ended (not this one)."""
    return host == host_tag() and int(pid) != os.getpid() and not _pid_alive(int(pid))


def _end_orphaned_backends(conn: psycopg.Connection[TupleRow]) -> None:
    """End the server backends that ended sessions' fixtures left running, and wait until
    they are gone: a killed session's ``CREATE DATABASE`` goes on without it, and its
    database would appear after the sweep had listed what to drop."""
    rows = conn.execute(
        "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE %s",
        [_APPLICATION + "%"],
    ).fetchall()
    for backend, application in rows:
        match = _APPLICATION_NAME.match(str(application))
        if match and _orphaned(match["pid"], match["host"]):
            # With a timeout, pg_terminate_backend returns once the backend has exited
            # (false, with a warning, if it has not within the wait). A login that may
            # not end it (another role's, without pg_signal_backend) leaves it running:
            # what it makes is then left for a later sweep.
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "SELECT pg_terminate_backend(%s, %s)", [backend, _END_BACKEND_WAIT_MS]
                )


def sweep_orphans(url: str) -> list[str]:
    """Drop the databases left by sessions of this host whose process has ended.

    Returns the names dropped. A database another sweeper is dropping at the same moment,
    or one still in use, is left for a later sweep.
    """
    dropped = []
    with connect_admin(url) as conn:
        _end_orphaned_backends(conn)
        rows = conn.execute("SELECT datname, datistemplate FROM pg_database").fetchall()
        for name, is_template in rows:
            match = _NAME.match(name)
            if not match or not _orphaned(match["pid"], match["host"]):
                continue
            try:
                # Only a template needs the ALTER (a clone whose DROP was cut short is
                # "invalid": it can be dropped, not altered).
                if is_template:
                    ident = sql.Identifier(name)
                    conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(ident))
                conn.execute(drop_statement(name))
            except psycopg.Error:
                continue
            dropped.append(name)
    return dropped


def clone_statement(name: str, template: str) -> sql.Composed:
    """``CREATE DATABASE name TEMPLATE template`` (the default ``WAL_LOG`` strategy: faster
    than ``FILE_COPY`` for a small template, and it forces no checkpoint)."""
    return sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )


def drop_statement(name: str) -> sql.Composed:
    """``DROP DATABASE``: *name* gone, whatever is still connected to it ended."""
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


def create_clone(conn: psycopg.Connection[object], name: str, template: str) -> None:
    """Make *name* a copy of *template* (:func:`clone_statement`)."""
    conn.execute(clone_statement(name, template))


def drop_database(conn: psycopg.Connection[object], name: str) -> None:
    """Drop *name*, ending whatever is still connected to it."""
    conn.execute(drop_statement(name))


class ClonePool:
    """``size`` clones of ``template`` kept ready by a background thread; another drops
    the used ones.

    ``url`` is a superuser URL of the maintenance database; ``new_name()`` gives each
    clone its name. A failure in a thread (the server went away) stops it; ``take()``
    and ``give_back()`` then do the work in the caller's thread, so the error reaches
    the test that needs it.
    """

    def __init__(
        self, url: str, template: str, new_name: Callable[[], str], *, size: int = 2
    ) -> None:
        self.url = url
        self.template = template
        self.size = size
        self._new_name = new_name
        self._ready: deque[str] = deque()
        self._used: deque[str] = deque()
        self._stopping = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        # Two threads, two connections: a DROP DATABASE may wait seconds for the
        # checkpoint it requests when the server is busy, and must not hold up a clone.
        self._maker = threading.Thread(
            target=self._make, name=f"ims_repo clones of {template}", daemon=True
        )
        self._dropper = threading.Thread(
            target=self._drop, name=f"ims_repo drops of {template} clones", daemon=True
        )
        self.waited: list[float] = []
        """Seconds each ``take()`` waited for its clone, for the run's figures."""
        self.made: list[float] = []
        """Seconds each background ``CREATE DATABASE`` took."""

    def start(self) -> None:
        """Start making clones (with ``size`` 0, ``take`` and ``give_back`` do the work)."""
        if self.size > 0:
            self._maker.start()
            self._dropper.start()

    def take(self) -> str:
        """A fresh clone's name, now if one is ready; the caller owns it until
        ``give_back``."""
        started = time.perf_counter()
        with self._changed:
            while not self._ready and self._maker.is_alive() and not self._stopping:
                self._changed.wait(0.5)
            name = self._ready.popleft() if self._ready else None
            self._changed.notify_all()  # one less ready: make the next
        if name is None:  # no thread (size 0) or it stopped: clone here, failing loudly
            name = self._new_name()
            try:
                with connect_admin(self.url) as conn:
                    create_clone(conn, name, self.template)
            except psycopg.Error as error:
                if self._error is not None:
                    error.add_note(f"the background cloner had stopped on: {self._error!r}")
                raise
        self.waited.append(time.perf_counter() - started)
        return name

    def give_back(self, name: str) -> None:
        """Queue a used clone to be dropped in the background (at once without a thread)."""
        with self._changed:
            if self._dropper.is_alive():
                self._used.append(name)
                self._changed.notify_all()
                return
        with connect_admin(self.url) as conn:
            drop_database(conn, name)

    def close(self) -> None:
        """Stop the threads and drop every clone still held, ready or used."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in (self._maker, self._dropper):
            if thread.ident is not None:
                thread.join()
        leftover = [*self._ready, *self._used]
        self._ready.clear()
        self._used.clear()
        if leftover:
            with connect_admin(self.url) as conn:
                for name in leftover:
                    drop_database(conn, name)

    def _next_name(self) -> str | None:
        """The name of the next clone to make, once one is wanted; None to stop."""
        with self._changed:
            while not self._stopping and len(self._ready) >= self.size:
                self._changed.wait()
            return None if self._stopping else self._new_name()

    def _next_used(self) -> str | None:
        """The next used clone to drop, once there is one; None to stop (``close`` drops
        what is left)."""
        with self._changed:
            while not self._stopping and not self._used:
                self._changed.wait()
            return None if self._stopping else self._used.popleft()

    def _make(self) -> None:
        try:
            with connect_admin(self.url) as conn:
                while (name := self._next_name()) is not None:
                    started = time.perf_counter()
                    try:
                        create_clone(conn, name, self.template)
                    except BaseException:
                        drop_database(conn, name)  # a half-made clone must not stay behind
                        raise
                    self.made.append(time.perf_counter() - started)
                    with self._changed:
                        self._ready.append(name)
                        self._changed.notify_all()
        except BaseException as error:  # reported by take(), which then clones itself
            self._error = error
        finally:
            with self._changed:
                self._changed.notify_all()

    def _drop(self) -> None:
        # On an error the thread ends; give_back then drops in the caller's thread, where
        # the error shows, and close() retries what was queued.
        name = None
        try:
            with connect_admin(self.url) as conn:
                while (name := self._next_used()) is not None:
                    drop_database(conn, name)
        except psycopg.Error:
            if name is not None:
                with self._changed:
                    self._used.appendleft(name)
