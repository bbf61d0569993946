"""Smoke test of the async benchmarks (``bench/aio``): every async workload runs at a tiny
size and the implementations (async psycopg floor, ``AsyncDatabase``, the sync
``Database`` beside them, and the references) agree. Timings are not asserted;
``python -m bench.aio`` measures them.

The event loop is driven with ``asyncio.run`` inside plain tests: the async pools live and
die in that one loop, and no plugin configuration is needed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the bench extra (SQLAlchemy) is not installed")

from bench.aio.run import AsyncOutcome, run_all, run_workload, table
from bench.aio.workloads import CONCURRENT_BATCHES, CONCURRENT_READS, AsyncBench, AsyncWorkload
from bench.data import BenchDatabase, Plan, load
from bench.run import Mismatch
from bench.workloads import Bench
from ims_repo import CrawlSession, Issue, IssueDetail, SearchHit

SIZE = 200

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(ims_server: Any) -> Iterator[Bench]:
    db = BenchDatabase(ims_server.url(), name=f"ims_bench_aio_test_{os.getpid()}")
    db.create()
    try:
        plan = Plan(SIZE)
        load(db, plan)
        bench = Bench(db, plan)
        try:
            yield bench
        finally:
            bench.close()
    finally:
        db.drop()


@pytest.fixture(scope="module")
def outcomes(bench: Bench) -> dict[str, AsyncOutcome]:
    done = asyncio.run(run_all(bench, 1, 1, say=lambda *_: None))
    return {outcome.workload.name: outcome for outcome in done}


def test_every_async_workload_runs_and_agrees(outcomes: dict[str, AsyncOutcome]) -> None:
    assert list(outcomes) == [
        "point_issue",
        "point_session",
        "page_shallow",
        "page_deep",
        "nested_load",
        "search_en",
        "search_ko",
        "jsonb_filters",
        "aggregation",
        "rls_list",
        "concurrent_points",
        "ingest",
    ]
    for name, outcome in outcomes.items():
        expected = {"ims_repo", "sync"} | ({"floor"} if name != "ingest" else set())
        assert expected <= set(outcome.runs), name
        for impl, runs in outcome.runs.items():
            assert len(runs.seconds) == 1, (name, impl)
        assert outcome.results is not None  # compared on the first repetition
    lines = table(list(outcomes.values())).splitlines()
    assert len(lines) == 2 + len(outcomes)


def test_the_agreed_results_are_real_data(outcomes: dict[str, AsyncOutcome]) -> None:
    """The workloads compare something: rows come back, RLS hides what it should."""
    issues = outcomes["point_issue"].results
    assert len(issues) == SIZE and all(isinstance(issue, Issue) for issue in issues)

    sessions = outcomes["point_session"].results
    hidden = [s for s in sessions if s is None]  # one read in ten is another user's
    assert len(hidden) == len(sessions) // 10 and isinstance(sessions[1], CrawlSession)

    details = outcomes["nested_load"].results
    assert all(isinstance(d, IssueDetail) for page in details for d in page)
    assert sum(len(d.comments) for page in details for d in page) > 0

    for name in ("search_en", "search_ko"):
        hits = outcomes[name].results
        assert any(hits) and all(isinstance(h, SearchHit) for page in hits for h in page), name

    batches = outcomes["concurrent_points"].results
    assert len(batches) == CONCURRENT_BATCHES
    assert all(len(batch) == CONCURRENT_READS for batch in batches)
    assert all(isinstance(issue, Issue) for batch in batches for issue in batch)

    assert outcomes["ingest"].results == [SIZE]


def test_a_disagreement_is_reported(bench: Bench) -> None:
    async def broken_run() -> None:
        abench = await AsyncBench.start(bench)
        try:
            workload = abench.point_issue(bench.point_issue())
            floor = workload.impls["floor"]

            def off_by_one(op: Any) -> Any:
                user, pk = op
                return floor((user, pk + 1))

            broken = AsyncWorkload(
                name=workload.name,
                title=workload.title,
                ops=workload.ops[:5],
                impls={**workload.impls, "floor": off_by_one},
                canon=workload.canon,
            )
            await run_workload(broken, 1, say=lambda *_: None)
        finally:
            await abench.close()

    with pytest.raises(Mismatch, match="floor and ims_repo differ at operation 0"):
        asyncio.run(broken_run())
