"""Failover, proven (SPEC §9): a ``Database`` on a libpq multi-host URL with
``target_session_attrs=read-write`` rides out the loss of its primary.

A private primary and a *synchronous* streaming standby (``tests/fix_replicas.py``): a
commit returns only once the standby has its WAL on disk. The test streams
``upsert_many`` batches, each committed, kills the primary in the middle of one
(``pg_ctl stop -m immediate``: no shutdown checkpoint, as a crash), promotes the standby
and keeps writing through the same ``Database``. It shows that the batch in flight fails
with ``DatabaseUnavailable``, that the pool reaches the new primary by itself (the time
is measured and reported, never asserted) and that every row whose commit returned is
on the new primary, and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from time import monotonic

import pytest

from ims_repo import Database, DatabaseUnavailable, NewIssue
from ims_repo.faces.pytest_plugin import RUNTIME_LOGIN, RUNTIME_PASSWORD
from tests.conftest import ReportFigure
from tests.fix_replicas import DBNAME, Cluster, start_cluster

BATCH = 50
BEFORE = 5  # batches committed before the primary is killed
AFTER = 5  # batches committed on the new primary after the one in flight
MAX_ATTEMPTS = 200  # bounds on the retries while the standby is promoted
MAX_SECONDS = 60.0


@pytest.fixture
def sync_cluster() -> Iterator[Cluster]:
    cluster = start_cluster(synchronous=True)
    try:
        yield cluster
    finally:
        cluster.stop()


def batch(number: int) -> list[NewIssue]:
    return [
        NewIssue(issue_id=f"FO-{number:03}-{item:03}", title=f"failover {number}", product="P")
        for item in range(BATCH)
    ]


def failover_url(c: Cluster) -> str:
    """The runtime login on the primary, then the standby: new connections go to the one
    that accepts writes."""
    primary, standby = c.primary_server, c.standby_server
    return (
        f"postgresql://{RUNTIME_LOGIN}:{RUNTIME_PASSWORD}@127.0.0.1:{primary.port},"
        f"127.0.0.1:{standby.port}/{DBNAME}?target_session_attrs=read-write"
    )


def check_nothing_lost(c: Cluster, on: list[dict[str, object]], committed: int) -> int:
    """The last session ran on the promoted standby, which keeps every row whose commit
    returned and nothing else; returns the rows kept."""
    assert on == [{"port": c.standby_server.port, "standby": False}]
    ((kept, batches),) = c.query(
        c.standby_server,
        "SELECT count(*), count(DISTINCT title) FROM ims.issues WHERE issue_id LIKE 'FO-%'",
    )
    assert kept == committed == (BEFORE + 1 + AFTER) * BATCH  # 0 lost, none extra
    assert batches == BEFORE + 1 + AFTER
    return int(kept)


def report(
    report_figure: ReportFigure,
    label: str,
    *,
    failover: float,
    committed: int,
    kept: int,
    unavailable: int,
    attempts: int,
) -> None:
    report_figure(
        f"{label}: seconds from kill to the first commit on the new primary", f"{failover:.2f}"
    )
    report_figure(f"{label}: rows whose commit returned", committed)
    report_figure(f"{label}: rows kept on the promoted standby", kept)
    report_figure(f"{label}: DatabaseUnavailable raised (batch in flight + retries)", unavailable)
    report_figure(f"{label}: write attempts until the new primary took one", attempts)


def write(db: Database, number: int) -> None:
    """One crawler step: a batch upserted and committed in its own session."""
    with db.session() as s:
        s.issues.upsert_many(batch(number))


@pytest.mark.slow
def test_failover_to_the_promoted_synchronous_standby_loses_no_committed_row(
    sync_cluster: Cluster, report_figure: ReportFigure
) -> None:
    c = sync_cluster
    committed = 0  # rows whose commit returned
    unavailable = 0
    with Database(failover_url(c), min_size=2, max_size=2, timeout=2) as db:
        for number in range(BEFORE):
            write(db, number)
            committed += BATCH

        # The batch in flight: written, not yet committed, when the primary dies.
        in_flight = BEFORE
        with pytest.raises(DatabaseUnavailable), db.session() as s:
            s.issues.upsert_many(batch(in_flight))
            c.primary.stop(mode="immediate")
        unavailable += 1
        killed = monotonic()
        promoter = threading.Thread(target=c.standby.promote)
        promoter.start()
        try:
            # The crawler retries the batch through the same Database until it lands.
            attempts = 0
            while attempts < MAX_ATTEMPTS:
                attempts += 1
                assert monotonic() - killed < MAX_SECONDS, "no new primary reached"
                try:
                    write(db, in_flight)
                except DatabaseUnavailable:  # PoolExhausted too, while none answers
                    unavailable += 1
                    continue
                break
            else:
                pytest.fail(f"no write succeeded in {MAX_ATTEMPTS} attempts")
            failover = monotonic() - killed
            committed += BATCH
        finally:
            promoter.join(MAX_SECONDS)
        for number in range(in_flight + 1, in_flight + 1 + AFTER):
            write(db, number)
            committed += BATCH
        with db.session() as s:
            on = s.execute("SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby")

    kept = check_nothing_lost(c, on, committed)
    report(
        report_figure,
        "failover",
        failover=failover,
        committed=committed,
        kept=kept,
        unavailable=unavailable,
        attempts=attempts,
    )
