"""Smoke test of the benchmark suite (``bench/``): every workload runs at a tiny size and
the three implementations (raw psycopg floor, ims_repo, SQLAlchemy ORM) agree. Timings
are not asserted; ``python -m bench`` measures them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the bench extra (SQLAlchemy) is not installed")

from bench.data import BenchDatabase, Plan, load
from bench.run import Mismatch, Outcome, run_workload, table
from bench.workloads import Bench, Workload
from ims_repo import CrawlSession, Issue, IssueDetail, SearchHit

SIZE = 200

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(ims_server: Any) -> Iterator[Bench]:
    db = BenchDatabase(ims_server.url(), name=f"ims_bench_test_{os.getpid()}")
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
def outcomes(bench: Bench) -> dict[str, Outcome]:
    return {
        workload.name: run_workload(workload, 1, say=lambda *_: None)
        for workload in bench.workloads()
    }


def test_every_workload_runs_three_ways_and_agrees(outcomes: dict[str, Outcome]) -> None:
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
        "ingest",
        "recrawl_unchanged",
        "recrawl_half_changed",
    ]
    for outcome in outcomes.values():
        for impl in ("floor", "ims_repo", "orm"):
            assert len(outcome.runs[impl].seconds) == 1, (outcome.workload.name, impl)
            assert len(outcome.runs[impl].latencies) == len(outcome.workload.ops)
        assert outcome.results is not None  # compared on the first repetition
    lines = table(list(outcomes.values())).splitlines()
    assert len(lines) == 2 + len(outcomes)


def test_the_agreed_results_are_real_data(outcomes: dict[str, Outcome]) -> None:
    """The workloads compare something: rows come back, RLS hides what it should."""
    issues = outcomes["point_issue"].results
    assert len(issues) == SIZE and all(isinstance(issue, Issue) for issue in issues)

    sessions = outcomes["point_session"].results
    hidden = [s for s in sessions if s is None]  # one read in ten is another user's
    assert len(hidden) == len(sessions) // 10 and isinstance(sessions[1], CrawlSession)

    shallow = outcomes["page_shallow"].results
    assert all(0 < len(page) <= 50 for page in shallow)
    first = shallow[0]
    assert [i.issue_updated_at for i in first] == sorted(
        (i.issue_updated_at for i in first), reverse=True
    )

    details = outcomes["nested_load"].results
    assert len(details) == 6 and all(isinstance(d, IssueDetail) for page in details for d in page)
    assert sum(len(d.comments) for page in details for d in page) > 0
    assert sum(len(d.history) for page in details for d in page) > 0

    for name in ("search_en", "search_ko"):
        hits = outcomes[name].results
        assert any(hits) and all(isinstance(h, SearchHit) for page in hits for h in page), name

    rls = outcomes["rls_list"].results
    ops = outcomes["rls_list"].workload.ops
    for (user, kind), result in zip(ops, rls, strict=True):
        if kind == "list":
            assert result and {s.user_id for s in result} == {user}

    assert outcomes["ingest"].results == [SIZE]
    assert outcomes["recrawl_unchanged"].results == [(0, 0, SIZE)]
    assert outcomes["recrawl_half_changed"].results == [(0, SIZE // 2, SIZE // 2)]


def test_a_disagreement_is_reported(bench: Bench) -> None:
    workload = next(w for w in bench.workloads() if w.name == "point_issue")
    floor = workload.impls["floor"]

    def off_by_one(op: Any) -> Any:
        user, pk = op
        return floor((user, pk + 1))

    broken = Workload(
        name=workload.name,
        title=workload.title,
        ops=workload.ops[:5],
        impls={**workload.impls, "floor": off_by_one},
        canon=workload.canon,
    )
    with pytest.raises(Mismatch, match="floor and ims_repo differ at operation 0"):
        run_workload(broken, 1, say=lambda *_: None)
