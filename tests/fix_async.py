"""Fixtures and helpers of the async suite (``tests/test_async_*.py``), on the plugin's
``ims_app_url`` (the runtime login: RLS applies). Imported by ``tests/conftest.py``.

- ``ims_adb``: an open ``AsyncDatabase`` on this test's database, closed after the test
  (the async twin of the plugin's ``ims_db``).
- ``apeople``: two ordinary users and an admin, made through the async API (the role by
  the owner, as ``tests.seed.people`` does).
- ``wire``: a TCP relay between an ``AsyncDatabase`` and the server that reads the
  protocol messages going through it, so a test counts what the server received and
  the round trips it took (one ``ReadyForQuery`` ends each exchange: a simple query, or
  everything up to a ``Sync``, pipelined or not).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ims_repo import AsyncDatabase, NewCrawlSession, NewUser
from ims_repo.services.migrations import set_role
from tests.seed import People


@pytest.fixture
async def ims_adb(ims_app_url: str) -> AsyncIterator[AsyncDatabase]:
    """``AsyncDatabase(ims_app_url, min_size=1, max_size=4)``, open; closed after."""
    async with AsyncDatabase(ims_app_url, min_size=1, max_size=4) as db:
        yield db


@pytest.fixture
async def apeople(ims_adb: AsyncDatabase, ims_admin_url: str) -> People:
    """alice, bob (ordinary users) and root.admin (an admin, made so by the owner)."""
    async with ims_adb.session() as s:
        ids = [
            (await s.users.create(NewUser(username=name, email=f"{name}@example.com"))).user_id
            for name in ("alice", "bob", "root.admin")
        ]
    await asyncio.to_thread(set_role, ims_admin_url, "root.admin", "admin")
    return People(*ids)


async def acrawl(db: AsyncDatabase, user_id: int, count: int) -> list[int]:
    """``count`` crawl sessions of ``user_id``; their ids."""
    async with db.session(user_id=user_id) as s:
        return [
            (
                await s.crawl_sessions.create(
                    NewCrawlSession(user_id=user_id, product="OpenFrame", original_query=f"q{n}")
                )
            ).session_id
            for n in range(count)
        ]


# --- what the server received -------------------------------------------------------------

_HEADER = struct.Struct("!cI")  # a message's type byte and length (the length counts itself)


@dataclass
class Wire:
    """A relay to the test's server; ``url`` goes through it (SSL off, so it can read).

    ``sent`` counts the messages the clients sent by type (``Q`` a simple query, ``P``
    parse, ``B`` bind, ``E`` execute, ``S`` sync, ``d`` COPY data, …), ``received`` those
    the server sent back (``Z`` ReadyForQuery, ``E`` an error, …), over every connection
    made through it. ``round_trips`` is ``received["Z"]``."""

    url: str
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)

    @property
    def round_trips(self) -> int:
        return self.received["Z"]

    @property
    def statements(self) -> int:
        """Statements the server was asked to run (extended ``Execute`` or simple ``Query``)."""
        return self.sent["E"] + self.sent["Q"]

    def reset(self) -> None:
        self.sent.clear()
        self.received.clear()


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    count: Counter[str],
    *,
    startup: bool,
) -> None:
    """Copy one direction of a connection, counting its messages by type. A client's
    first message (startup, or an SSL/cancel request) has no type byte."""
    try:
        if startup:
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            writer.write(struct.pack("!I", length) + await reader.readexactly(length - 4))
            await writer.drain()
        while True:
            header = await reader.readexactly(_HEADER.size)
            kind, length = _HEADER.unpack(header)
            body = await reader.readexactly(length - 4)
            count[kind.decode("ascii")] += 1
            writer.write(header + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def wire(ims_app_url: str) -> AsyncIterator[Wire]:
    """A counting relay to this test's database as the runtime login."""
    target = conninfo_to_dict(ims_app_url)
    host, port = str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432)
    tasks: set[asyncio.Task[None]] = set()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await connect()
        spawn(_relay(client_r, server_w, counts.sent, startup=True))
        spawn(_relay(server_r, client_w, counts.received, startup=False))

    relay = await asyncio.start_server(serve, "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    counts = Wire(
        make_conninfo(
            ims_app_url,
            host="127.0.0.1",
            port=str(relay_port),
            sslmode="disable",  # the relay reads the messages: no TLS, no GSS encryption
            gssencmode="disable",
        )
    )
    try:
        yield counts
    finally:
        relay.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        await relay.wait_closed()
