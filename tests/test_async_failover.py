"""Failover through ``AsyncDatabase`` (the async twin of ``tests/test_failover.py``): on a
libpq multi-host URL with ``target_session_attrs=read-write``, an asyncio crawler rides
out the loss of its primary too.

psycopg's async connections try the URL's hosts in Python (``conninfo_attempts_async``),
not in libpq as the sync ones do: that path is what this test covers. The same scenario:
a synchronous standby, batches committed, the primary killed (``pg_ctl stop -m
immediate``) in the middle of one, the standby promoted, the batch retried through the
same ``AsyncDatabase``. Every row whose commit returned is on the new primary, and
nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from time import monotonic

import pytest

from ims_repo import AsyncDatabase, DatabaseUnavailable
from tests.conftest import ReportFigure
from tests.fix_replicas import Cluster, start_cluster
from tests.test_failover import (
    AFTER,
    BATCH,
    BEFORE,
    MAX_ATTEMPTS,
    MAX_SECONDS,
    batch,
    check_nothing_lost,
    failover_url,
    report,
)


@pytest.fixture
def sync_cluster() -> Iterator[Cluster]:
    cluster = start_cluster(synchronous=True)
    try:
        yield cluster
    finally:
        cluster.stop()


async def write(db: AsyncDatabase, number: int) -> None:
    """One crawler step: a batch upserted and committed in its own session."""
    async with db.session() as s:
        await s.issues.upsert_many(batch(number))


@pytest.mark.slow
async def test_async_failover_to_the_promoted_synchronous_standby_loses_no_committed_row(
    sync_cluster: Cluster, report_figure: ReportFigure
) -> None:
    c = sync_cluster
    committed = 0  # rows whose commit returned
    unavailable = 0
    async with AsyncDatabase(failover_url(c), min_size=2, max_size=2, timeout=2) as db:
        for number in range(BEFORE):
            await write(db, number)
            committed += BATCH

        # The batch in flight: written, not yet committed, when the primary dies.
        in_flight = BEFORE
        with pytest.raises(DatabaseUnavailable):
            async with db.session() as s:
                await s.issues.upsert_many(batch(in_flight))
                await asyncio.to_thread(c.primary.stop, mode="immediate")
        unavailable += 1
        killed = monotonic()
        promoter = asyncio.create_task(asyncio.to_thread(c.standby.promote))
        try:
            # The crawler retries the batch through the same AsyncDatabase until it lands.
            attempts = 0
            while attempts < MAX_ATTEMPTS:
                attempts += 1
                assert monotonic() - killed < MAX_SECONDS, "no new primary reached"
                try:
                    await write(db, in_flight)
                except DatabaseUnavailable:  # PoolExhausted too, while none answers
                    unavailable += 1
                    continue
                break
            else:
                pytest.fail(f"no write succeeded in {MAX_ATTEMPTS} attempts")
            failover = monotonic() - killed
            committed += BATCH
        finally:
            await asyncio.wait_for(promoter, MAX_SECONDS)
        for number in range(in_flight + 1, in_flight + 1 + AFTER):
            await write(db, number)
            committed += BATCH
        async with db.session() as s:
            on = await s.execute(
                "SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby"
            )

    kept = check_nothing_lost(c, on, committed)
    report(
        report_figure,
        "async failover",
        failover=failover,
        committed=committed,
        kept=kept,
        unavailable=unavailable,
        attempts=attempts,
    )
