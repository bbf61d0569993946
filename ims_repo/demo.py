"""``ims-repo demo``: migrate, load a small data set, and walk through the layer.

It runs as the runtime role (``act_as="ims_app"``) so what it prints is what row-level
security really shows; the one admin is made the owner's way (``set_role``). Running it
again reuses the data it loaded before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ims_repo import migrations
from ims_repo.database import Database
from ims_repo.records import NewCrawlSession, NewUser, User
from ims_repo.session import Session

Echo = Callable[[str], None]

DEMO_USERS = [
    NewUser(username="admin", email="admin@company.com", full_name="IMS Admin"),
    NewUser(
        username="yijae.shin",
        email="yijae.shin@company.com",
        full_name="Yijae Shin",
        department="R&D",
        preferences={"theme": "dark", "language": "ko"},
    ),
    NewUser(username="john.doe", email="john.doe@company.com", full_name="John Doe"),
]
STARTED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def run(url: str, echo: Echo = print) -> None:
    """Run the demo against the database at ``url`` (a login allowed to migrate)."""
    applied = migrations.migrate(url)
    echo(f"migrate: {len(applied)} migration(s) applied" if applied else "migrate: up to date")

    with Database(url, act_as="ims_app", min_size=1, max_size=2) as db:
        with db.session() as s:
            users = {new.username: _get_or_create(s, new, echo) for new in DEMO_USERS}
        migrations.set_role(url, "admin", "admin")
        echo("set-role: 'admin' made an admin by the owner (the runtime role cannot)")

        yijae, john = users["yijae.shin"], users["john.doe"]
        with db.session(user_id=yijae.user_id) as s:
            mine = s.crawl_sessions.list_for_user(yijae.user_id)
            if not mine:
                s.crawl_sessions.create(
                    NewCrawlSession(
                        user_id=yijae.user_id,
                        product="OpenFrame",
                        original_query="connection timeout",
                        parsed_query="+connection +timeout",
                        query_language="en",
                        max_results=100,
                        status="completed",
                        started_at=STARTED,
                        completed_at=STARTED.replace(minute=2),
                        duration_seconds=120,
                        session_metadata={
                            "crawler_version": "1.0.0",
                            "nl_parsing": {"method": "rule_based"},
                        },
                    )
                )
                mine = s.crawl_sessions.list_for_user(yijae.user_id)
            echo(f"as yijae.shin (user {yijae.user_id}): {len(mine)} crawl session(s)")
            for crawl in mine:
                echo(f"  - {crawl.session_uuid} {crawl.product} ({crawl.status})")
            rule_based = s.crawl_sessions.find_by_metadata(
                path=["nl_parsing", "method"], equals="rule_based"
            )
            echo(f"  JSONB path nl_parsing.method = rule_based: {len(rule_based)} session(s)")

        with db.session(user_id=john.user_id) as s:
            seen = s.crawl_sessions.list_for_user(yijae.user_id)
            echo(f"as john.doe (user {john.user_id}): sees {len(seen)} of yijae.shin's sessions")
        with db.session() as s:
            echo(f"with no user context: {len(s.crawl_sessions.find())} sessions visible")
        with db.session(user_id=users["admin"].user_id) as s:
            echo(f"as admin: {len(s.crawl_sessions.find())} session(s) visible (every user's)")


def _get_or_create(s: Session, new: NewUser, echo: Echo) -> User:
    user = s.users.get_by_username(new.username)
    if user is None:
        user = s.users.create(new)
        echo(f"created user {user.username} (id {user.user_id})")
    return user
