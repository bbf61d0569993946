"""Smoke test of the benchmark suite (``bench/``): every workload runs at a tiny size and
the three implementations (raw psycopg floor, ims_repo, SQLAlchemy ORM) agree. Timings
are not asserted; ``python -m bench`` measures them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the bench extra (SQLAlchemy) is not installed")

from bench import crawl_page, data
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


def test_the_load_computes_the_rank_bounds_of_every_issue(bench: Bench) -> None:
    # The loader copies the issues as a replica, so 0011's trigger does not mark them
    # stale: unless the loader marks them itself, its refresh computes nothing and every
    # search workload ranks all its matches (as every bench run since 0011 did, until this fix).
    with bench.db.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM ims.issue_search_bounds WHERE issue_pk <= %s", (SIZE,)
        ).fetchone()
    assert row == (SIZE,)


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
        "crawl_page",
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
    # the plain table's COPY stored as many issues as ims_repo (its state is its own)
    assert len(outcomes["ingest"].runs["ref:plain_table"].seconds) == 1
    pages = outcomes["crawl_page"]
    assert pages.results == [50] * len(pages.workload.ops)
    comments = [len(item["comments"]) for page in pages.workload.ops for item in page]
    assert max(comments) == 10 and 3 < sum(comments) / len(comments) < 7  # 0-10, about 5


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


@pytest.mark.parametrize("impl", ["floor", "ims_repo"])
def test_a_crawl_page_sends_as_many_statements_whatever_its_size(bench: Bench, impl: str) -> None:
    """The crawl page's statements do not grow with its issues (one fixed set per page);
    the ORM's and the per-table methods' do, which shows the counts are real."""
    store = {
        "floor": lambda u, s, items: crawl_page.floor_page(bench.raw, u, s, items),
        "ims_repo": lambda u, s, items: crawl_page.ims_page(bench.ims, u, s, items),
        "per_issue": lambda u, s, items: crawl_page.ims_page_per_issue(bench.ims, u, s, items),
        "orm": lambda u, s, items: crawl_page.orm_page(
            bench.orm, bench.orm_statements, u, s, items
        ),
    }
    user = bench.user(2)
    session_id = next(
        s for s in range(1, bench.plan.sessions + 1) if data.session_owner(bench.plan, s) == user
    )
    sent: dict[str, list[int]] = {}
    for page, size in enumerate((5, 40)):
        for offset, name in enumerate((impl, "per_issue", "orm")):
            # pages far from the workload's, a different one for each implementation
            items = crawl_page.page_items(1000 + 10 * page + offset, size, session_id)
            stored, statements = store[name](user, session_id, items)
            assert stored == size
            sent.setdefault(name, []).append(statements)
    small, large = sent[impl]
    assert small == large, sent
    assert sent["per_issue"][1] > sent["per_issue"][0] + 3 * 30
    assert sent["orm"][1] > sent["orm"][0] + 30
    bench._reset_issues()
