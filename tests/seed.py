"""Small data sets the tests build through the public API (as the runtime login)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from ims_repo import Database, NewCrawlSession, NewUser
from ims_repo.services.migrations import set_role


@dataclass(frozen=True)
class People:
    alice: int
    bob: int
    admin: int


def people(db: Database, owner_url: str) -> People:
    """Two ordinary users and an admin (made one by the owner, as in production)."""
    with db.session() as s:
        ids = [
            s.users.create(NewUser(username=name, email=f"{name}@example.com")).user_id
            for name in ("alice", "bob", "root.admin")
        ]
    set_role(owner_url, "root.admin", "admin")
    return People(*ids)


def crawl(db: Database, user_id: int, count: int, **fields: object) -> list[int]:
    """``count`` crawl sessions of ``user_id``; their ids."""
    with db.session(user_id=user_id) as s:
        return [
            s.crawl_sessions.create(
                NewCrawlSession(
                    user_id=user_id,
                    product=str(fields.get("product", "OpenFrame")),
                    original_query=f"query {n}",
                    **{k: v for k, v in fields.items() if k != "product"},  # type: ignore[arg-type]
                )
            ).session_id
            for n in range(count)
        ]


SERVER_DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


def server_deadlocks(admin_url: str) -> int:
    """The deadlocks the server detected in this database, once every other backend of it
    has exited (a backend reports its statistics when it exits)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for _ in range(100):
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if others is not None and others[0] == 0:
                break
            time.sleep(0.05)
        row = conn.execute(SERVER_DEADLOCKS).fetchone()
    assert row is not None
    return int(row[0])
