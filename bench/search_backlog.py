"""The bench's search queries on a kept bench database, with and without a backlog of
issues whose rank bounds a refresh has not computed yet (migration 0011).

    python -m bench --size 1000000 --only search_en search_ko --repeat 3 --keep
    .venv/bin/python -m bench.search_backlog --database ims_bench_<pid> \\
        [--backlog 20000 100000] [--repeat 3] [--batch-size 10000]

First with no backlog (a backlog left in the database is refreshed first, and the two
tables analyzed), then for each ``--backlog`` N: the newest N issues are left as a fresh
crawl nobody has refreshed yet leaves them (a row in ``ims.issue_search_stale``, none in
``ims.issue_search_bounds``; then ``VACUUM ANALYZE`` of both tables, as autovacuum would
after such a change), the queries are measured, the backlog is refreshed with
``s.search.refresh_bounds()`` in batches of ``--batch-size`` (one transaction each, as
``ims-repo refresh-search`` does) and timed per issue, and the queries are measured
again: right after the refresh (until migration 0012 the planner's statistics still those
of the backlog, and the new bounds in the GIN index's pending list), then after ``VACUUM
ANALYZE`` of the two tables (what autovacuum does some time after the refresh; since 0012
the refresh's last batch does the part that matters to the search).

Each measurement: the bench's queries (``bench.data.SEARCH_EN``, ``SEARCH_KO``) through
``s.search.issues(query, limit=50)`` as the runtime login, ``--repeat`` passes after an
untimed one; per query set the p50, max and mean over all its latencies (the bench's
p50 is the same median). The untimed pass also checks every result against ranking every
match (``ts_rank`` over all full-text matches, ties in issue_pk order:
``tests/test_search_ranking.py``'s reference, whose time is printed too) and asks the
function, at DEBUG level, which way it went (bounds proved the top in n rounds, or every
match ranked). The database is left as it was found: every backlog made is refreshed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench import data
from bench.data import BenchDatabase, Plan
from ims_repo import Database, Session

# The reference: rank every full-text match (tests/test_search_ranking.py's PLAIN).
RANK_ALL = """
SELECT
    i.issue_pk,
    ts_rank(i.search_vector, q.tsq) AS rank
FROM ims.issues AS i,
    (SELECT ims.search_tsquery(%(query)s) AS tsq) AS q
WHERE i.search_vector @@ q.tsq
ORDER BY
    rank DESC,
    i.issue_pk
LIMIT %(limit)s
"""

# The backlog: the newest issues marked stale and their bounds removed, as after a crawl
# of that many new issues that no refresh has seen yet.
MAKE_BACKLOG = """
WITH newest AS (
    SELECT i.issue_pk
    FROM ims.issues AS i
    ORDER BY i.issue_pk DESC
    LIMIT %(issues)s
),
removed AS (
    DELETE FROM ims.issue_search_bounds AS b
    USING newest AS n
    WHERE b.issue_pk = n.issue_pk
)
INSERT INTO ims.issue_search_stale (issue_pk)
SELECT n.issue_pk
FROM newest AS n
ORDER BY n.issue_pk
ON CONFLICT (issue_pk) DO NOTHING
"""

# The size of the backlog.
COUNT_STALE = """
SELECT count(*)
FROM ims.issue_search_stale
"""

# What ims.search_full_text says about one search (RAISE DEBUG), as the runtime login.
SEARCH_ONCE = """
SELECT s.issue_pk
FROM ims.search_issues(%s, NULL, 50) AS s
"""

LIMIT = 50
QUERY_SETS = {"search_en": data.SEARCH_EN, "search_ko": data.SEARCH_KO}


@dataclass
class Measurement:
    """One state of the database: every query's latencies and what the check found."""

    state: str
    stale: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    exact: dict[str, bool] = field(default_factory=dict)
    rank_all: dict[str, float] = field(default_factory=dict)
    way: dict[str, str] = field(default_factory=dict)
    load: str = ""

    def of_set(self, name: str) -> list[float]:
        return [t for q in QUERY_SETS[name] for t in self.latencies[q]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search_backlog", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database", required=True, help="the kept bench database (ims_bench_<pid>)"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        nargs="+",
        default=[20_000, 100_000],
        help="stale issues to measure with (default 20000 100000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (default 3)")
    parser.add_argument(
        "--batch-size", type=int, default=10_000, help="issues per refresh (default 10000)"
    )
    args = parser.parse_args(argv)
    db = BenchDatabase(name=args.database)  # not created here: never dropped here
    with db.admin() as conn:
        row = conn.execute("SELECT count(*) FROM ims.issues").fetchone()
    issues = int(row[0]) if row else 0
    users = Plan(max(issues, 50)).ordinary_users
    print(f"search_backlog: {db.name}, {issues:,} issues, {args.repeat} passes")
    measurements: list[Measurement] = []
    refreshes: list[tuple[int, float, list[float]]] = []
    with Database(db.app_url, min_size=1, max_size=4, name="bench_ims") as ims:
        left = _stale(db)
        if left:
            seconds, _ = _refresh(ims, args.batch_size)
            print(f"  refreshed a backlog of {left:,} left in the database: {seconds:.1f} s")
        _analyze(db)
        measurements.append(_measure(ims, db, users, "no backlog", args.repeat))
        for backlog in args.backlog:
            _make_backlog(db, backlog)
            measurements.append(_measure(ims, db, users, f"{backlog:,} stale", args.repeat))
            stale = _stale(db)
            seconds, batches = _refresh(ims, args.batch_size)
            refreshes.append((stale, seconds, batches))
            print(
                f"  refresh of {stale:,}: {seconds:.2f} s, "
                f"{seconds / max(stale, 1) * 1e6:.0f} µs per issue, "
                f"batches {', '.join(f'{b:.2f}' for b in batches)} s"
            )
            measurements.append(_measure(ims, db, users, f"{backlog:,} refreshed", args.repeat))
            _analyze(db)
            measurements.append(
                _measure(ims, db, users, f"{backlog:,} refreshed, analyzed", args.repeat)
            )
    print()
    print(_report(measurements, refreshes))
    return 0


def _stale(db: BenchDatabase) -> int:
    with db.admin() as conn:
        row = conn.execute(COUNT_STALE).fetchone()
    return int(row[0]) if row else 0


def _make_backlog(db: BenchDatabase, issues: int) -> None:
    with db.admin() as conn:
        conn.execute(MAKE_BACKLOG, {"issues": issues})
    _analyze(db)


def _analyze(db: BenchDatabase) -> None:
    with db.admin() as conn:
        conn.execute("VACUUM ANALYZE ims.issue_search_bounds, ims.issue_search_stale")


def _refresh(ims: Database, batch_size: int) -> tuple[float, list[float]]:
    """Refresh until a batch comes back short, one transaction a batch; the times."""
    batches: list[float] = []
    while True:
        tick = time.perf_counter()
        with ims.session() as s:
            done = s.search.refresh_bounds(batch_size)
        batches.append(time.perf_counter() - tick)
        if done < batch_size:
            return sum(batches), batches


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


def _measure(
    ims: Database, db: BenchDatabase, users: list[int], state: str, repeat: int
) -> Measurement:
    m = Measurement(state=state, stale=_stale(db), load=_load())
    queries = [q for qs in QUERY_SETS.values() for q in qs]
    for n, query in enumerate(queries):  # untimed: warms up, and checks
        with ims.session(user_id=users[n % len(users)]) as s:
            hits = s.search.issues(query, limit=LIMIT)
            tick = time.perf_counter()
            expected = _rank_all(s, query)
            m.rank_all[query] = time.perf_counter() - tick
        got = [(h.issue_pk, h.rank) for h in hits]
        # Fewer full-text matches than LIMIT: title-text hits (rank <= 0) follow them.
        m.exact[query] = got[: len(expected)] == expected and all(
            rank <= 0 for _, rank in got[len(expected) :]
        )
        m.way[query] = _way(db, query)
        m.latencies[query] = []
    for rep in range(repeat):
        for n, query in enumerate(queries):
            tick = time.perf_counter()
            with ims.session(user_id=users[(n + rep) % len(users)]) as s:
                s.search.issues(query, limit=LIMIT)
            m.latencies[query].append(time.perf_counter() - tick)
    m.load += f" → {_load()}"
    print(
        f"  {state} ({m.stale:,} stale, load {m.load}): "
        + ", ".join(f"{name} p50 {_ms(statistics.median(m.of_set(name)))}" for name in QUERY_SETS)
        + f"; exact {sum(m.exact.values())}/{len(m.exact)}",
        flush=True,
    )
    return m


def _rank_all(s: Session, query: str) -> list[tuple[int, float]]:
    rows = s.execute(RANK_ALL, {"query": query, "limit": LIMIT})
    return [(int(row["issue_pk"]), float(row["rank"])) for row in rows]


def _way(db: BenchDatabase, query: str) -> str:
    messages: list[str] = []
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: messages.append(diag.message_primary or ""))
        conn.execute("SET client_min_messages = debug1")
        conn.execute(SEARCH_ONCE, (query,)).fetchall()
    for message in messages:
        if "proved in" in message:
            return "b" + message.rsplit(" in ", 1)[1].split(" ")[0]
    if any("ranking every match" in message for message in messages):
        return "all"
    return "?"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _report(
    measurements: list[Measurement], refreshes: list[tuple[int, float, list[float]]]
) -> str:
    lines = [
        "| state | stale | English p50 / max / mean | Korean p50 / max / mean "
        "| exact top 50 | load |",
        "|---|---:|---|---|---|---|",
    ]
    for m in measurements:
        sets = []
        for name in QUERY_SETS:
            values = m.of_set(name)
            sets.append(
                f"{_ms(statistics.median(values))} / {_ms(max(values))} / "
                f"{_ms(statistics.mean(values))}"
            )
        exact = "yes" if all(m.exact.values()) else f"NO ({sum(m.exact.values())}/{len(m.exact)})"
        lines.append(f"| {m.state} | {m.stale:,} | {sets[0]} | {sets[1]} | {exact} | {m.load} |")
    lines.append("")
    lines.append("Per query: p50 in each state and the way it went (bN: the bounds proved the")
    lines.append("top in N rounds; all: every match ranked); ranking every match (the")
    lines.append("reference, one run, first state).")
    lines.append("")
    lines.append("| query | " + " | ".join(m.state for m in measurements) + " | rank all |")
    lines.append("|---|" + "---:|" * len(measurements) + "---:|")
    for qs in QUERY_SETS.values():
        for query in qs:
            cells = " | ".join(
                f"{_ms(statistics.median(m.latencies[query]))} {m.way[query]}" for m in measurements
            )
            lines.append(f"| `{query}` | {cells} | {_ms(measurements[0].rank_all[query])} |")
    lines.append("")
    for stale, seconds, batches in refreshes:
        lines.append(
            f"- refresh of {stale:,} stale issues: {seconds:.2f} s in {len(batches)} "
            f"batches, {seconds / max(stale, 1) * 1e6:.0f} µs per issue"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
