"""A user's tests: the installed plugin's fixtures, from outside the repository."""

import asyncio

from ims_repo import AsyncDatabase, Database, NewUser


def test_session_writes_and_reads(ims_session) -> None:
    with ims_session(user_id=None) as s:
        user = s.users.create(NewUser(username="smoke.user", email="smoke@example.com"))
    with ims_session(user_id=user.user_id) as s:
        assert s.users.get(user.user_id) == user


def test_database_is_a_fresh_copy(ims_db: Database) -> None:
    with ims_db.session(user_id=None) as s:
        assert s.users.get_by_username("smoke.user") is None


def test_the_async_api_on_the_same_database(ims_app_url: str) -> None:
    async def crawl() -> tuple[int, int]:
        async with AsyncDatabase(ims_app_url, min_size=1, max_size=2) as db:
            async with db.session(user_id=None) as s:
                user = await s.users.create(NewUser(username="async.user", email="a@example.com"))
            result = await db.upsert_issues(
                [{"issue_id": f"SMOKE-{n}", "title": "t", "product": "P"} for n in range(10)]
            )
            async with db.session(user_id=user.user_id) as s:
                return result.inserted, await s.issues.count(product="P")

    assert asyncio.run(crawl()) == (10, 10)
