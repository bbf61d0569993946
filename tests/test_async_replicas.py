"""Read replicas through ``AsyncDatabase`` (the async twin of ``tests/test_replicas.py``),
and what replica support costs on the wire: nothing for a database without replicas,
one statement in the COMMIT's round trip for a primary session of one with replicas."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from ims_repo import AsyncDatabase, AsyncSession, NewIssue, NewUser, ReadOnlySession
from tests.conftest import ReportFigure
from tests.fix_async import Wire
from tests.fix_replicas import Cluster

YIJAE = 2
JOHN = 3


async def on_standby(s: AsyncSession) -> bool:
    return bool((await s.execute("SELECT pg_is_in_recovery() AS standby"))[0]["standby"])


def new_user() -> NewUser:
    name = f"aryw_{uuid.uuid4().hex[:12]}"
    return NewUser(username=name, email=f"{name}@company.com")


def replicated(c: Cluster, *, wait: float = 1.0) -> AsyncDatabase:
    return AsyncDatabase(
        c.app_url(c.primary_server),
        replicas=[c.app_url(c.standby_server)],
        replica_wait=wait,
        min_size=1,
        max_size=2,
    )


async def test_async_replica_session_reads_the_standby_under_rls(
    replica_cluster: Cluster,
) -> None:
    async with replicated(replica_cluster) as db, db.session(user_id=YIJAE, replica=True) as s:
        assert await on_standby(s)
        mine = await s.crawl_sessions.list_for_user(YIJAE)
        theirs = await s.crawl_sessions.list_for_user(JOHN)
        hits = await s.search.issues("timeout")
        sent = s.statements_sent
        with pytest.raises(ReadOnlySession):
            await s.users.create(new_user())
        assert s.statements_sent == sent
        assert await s.users.get(YIJAE) is not None  # the transaction was not aborted
    assert len(mine) == 3 and theirs == [] and hits


async def test_async_read_your_writes(
    replica_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    c = replica_cluster
    user = new_user()
    with c.replay_paused():
        async with replicated(c, wait=0.2) as db:
            async with db.session() as s:
                await s.users.create(user)
            position = s.commit_position
            assert position is not None
            async with db.session(replica=True) as r:  # the lagging standby
                assert await on_standby(r)
                assert await r.users.get_by_username(user.username) is None
            with caplog.at_level(logging.INFO, logger="ims_repo.replicas"):
                async with db.session(replica=True, after=position) as r:  # the primary
                    assert not await on_standby(r)
                    assert await r.users.get_by_username(user.username) is not None
            assert any(f"commit position {position}" in m for m in caplog.messages)
        async with replicated(c, wait=30) as db:
            resume = asyncio.get_running_loop().call_later(0.2, c.resume)
            try:
                async with db.session(replica=True, after=position) as r:
                    assert await on_standby(r)
                    assert await r.users.get_by_username(user.username) is not None
            finally:
                resume.cancel()


async def test_async_no_replica_reachable_runs_on_the_primary(
    replica_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    c = replica_cluster
    nobody = c.unreachable_url()
    with caplog.at_level(logging.WARNING, logger="ims_repo.replicas"):
        async with AsyncDatabase(
            c.app_url(c.primary_server), replicas=[nobody], replica_wait=0.5, max_size=1
        ) as db:
            for _ in range(3):
                async with db.session(user_id=YIJAE, replica=True) as s:
                    assert not await on_standby(s)
    assert any("unreachable" in m for m in caplog.messages)
    assert sum("runs on the primary" in m for m in caplog.messages) == 3


async def test_async_an_unreachable_replica_is_tried_again_after_replica_retry_after(
    replica_cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``replica_retry_after=0`` each session tries the replica again and logs the
    outage again (opening the database logged it first)."""
    c = replica_cluster
    nobody = c.unreachable_url()
    with caplog.at_level(logging.WARNING, logger="ims_repo.replicas"):
        async with AsyncDatabase(
            c.app_url(c.primary_server),
            replicas=[nobody],
            replica_wait=1.0,
            replica_retry_after=0,
            max_size=1,
        ) as db:
            for _ in range(3):
                async with db.session(user_id=YIJAE, replica=True) as s:
                    assert not await on_standby(s)
    assert sum("is unreachable" in m for m in caplog.messages) == 4


async def test_a_refused_write_sends_nothing(wire: Wire) -> None:
    async with (
        AsyncDatabase(wire.url, min_size=1, max_size=1) as db,
        db.session(user_id=YIJAE, replica=True) as s,
    ):
        wire.reset()
        with pytest.raises(ReadOnlySession):
            await s.users.create(new_user())
        with pytest.raises(ReadOnlySession):
            await s.issues.upsert_many([NewIssue(issue_id="RO-1", title="t", product="P")])
        with pytest.raises(ReadOnlySession):
            await s.session_errors.delete_by_severity("info")
        assert wire.statements == 0 and wire.round_trips == 0


async def test_commit_positions_cost_no_round_trip(
    wire: Wire, ims_app_url: str, report_figure: ReportFigure
) -> None:
    """A primary session's commit: the same round trips with or without replicas (the
    position is asked in the COMMIT's pipeline), and nothing more without replicas."""
    costs = {}
    for label, replicas in (("without", []), ("with", [ims_app_url])):
        async with AsyncDatabase(wire.url, replicas=replicas, min_size=1, max_size=1) as db:
            async with db.session() as s:
                await s.users.get(1)  # warm: the pool's first connection is made
            wire.reset()
            async with db.session() as s:
                await s.users.create(new_user())
            costs[label] = (wire.round_trips, wire.statements, s.commit_position is not None)
    assert costs["without"][2] is False and costs["with"][2] is True
    assert costs["with"][0] == costs["without"][0]  # round trips
    assert costs["with"][1] == costs["without"][1] + 1  # the position query
    report_figure("write session round trips, without/with replicas", costs["without"][0])
