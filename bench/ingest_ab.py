"""Fresh ingest, A/B across migration 0011 (lazy rank bounds), paired on one database.

    .venv/bin/python -m bench.ingest_ab [--size 20000] [--rounds 3]

Each round runs, on the schema without 0011 (rolled back) and then with it (migrated
again): the plain table's single-connection text COPY (issue 13's reference), then
``Database.upsert_issues(connections=2)`` and single-connection ``upsert_many`` as the
runtime login, each followed by a reset of the issues it added. Every line gives the
ingest's rate as a ratio to the plain table's measured just before it, so the machine's
load, which moves by 2x within minutes when other suites run, cancels out of each ratio.
With 0011, the ingest followed by ``refresh_bounds`` (the cost 0011 defers) is a line too.
"0011" is the schema up to the latest migration (0012 changes only the search and the
refresh, which now also analyzes the bounds' tables when their statistics are stale);
"0010" rolls back everything after 0010.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.data import BenchDatabase, issue_items, rollback_to
from bench.raw import PLAIN_TABLE, Raw
from ims_repo import Database
from ims_repo.services.migrations import migrate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_ab", description=__doc__)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    db = BenchDatabase(name="ims_ingest_ab")
    db.create()
    try:
        with db.admin() as conn:
            for statement in PLAIN_TABLE.split(";"):
                conn.execute(statement)
            conn.execute(f'GRANT ALL ON public.plain_issues TO "{db.login}"')
            conn.execute("INSERT INTO ims.users (username, email) VALUES ('ab', 'ab@x')")
        ratios: dict[str, list[float]] = {}
        for round_ in range(1, args.rounds + 1):
            for schema in ("0010", "0011"):
                if schema == "0010":
                    rollback_to(db.admin_url, "0010.lean_writes")
                else:
                    migrate(db.admin_url)
                for name, seconds in _round(db, args.size, refresh=schema == "0011").items():
                    ratios.setdefault(f"{schema} {name}", []).append(seconds)
                print(
                    f"round {round_} {schema}: "
                    + ", ".join(
                        f"{k.split(' ', 1)[1]} {v[-1]:.2f}"
                        for k, v in ratios.items()
                        if k.startswith(schema)
                    ),
                    flush=True,
                )
        print("\n| schema | measured | rate / plain table's (median of rounds) |")
        print("|---|---|---:|")
        for key, values in ratios.items():
            schema, name = key.split(" ", 1)
            print(f"| {schema} | {name} | {statistics.median(values):.2f} |")
    finally:
        db.drop()
    return 0


def _round(db: BenchDatabase, size: int, *, refresh: bool) -> dict[str, float]:
    """Each step's rate as a ratio to the plain table's: plain time / step time."""
    with db.admin() as conn:
        user = conn.execute("SELECT user_id FROM ims.users").fetchone()
    assert user is not None
    results: dict[str, float] = {}
    with Database(db.app_url, max_size=4) as ims:
        raw = Raw(db.app_url)
        try:

            def items() -> Any:
                return issue_items(size, "AB")

            for name, run in (
                (
                    "upsert_issues(connections=2)",
                    lambda: ims.upsert_issues(items(), user_id=user[0], connections=2),
                ),
                ("upsert_many, one connection", lambda: _one(ims, user[0], items())),
            ):
                plain = _timed(lambda: raw.ingest_plain(items()))
                _reset(db)
                spent = _timed(run)
                results[name] = plain / spent
                if refresh:
                    with ims.session(user_id=user[0]) as s:
                        spent += _timed(lambda: s.search.refresh_bounds(size))
                    results[f"{name} + refresh_bounds"] = plain / spent
                _reset(db)
        finally:
            raw.close()
    return results


def _one(ims: Database, user: int, items: Any) -> Any:
    with ims.session(user_id=user) as s:
        return s.issues.upsert_many(items)


def _timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _reset(db: BenchDatabase) -> None:
    with db.admin() as conn:
        conn.execute("TRUNCATE public.plain_issues")
        conn.execute("TRUNCATE ims.issues, ims.audit_log CASCADE")
        for table in ("issue_search_stale", "issue_search_bounds"):
            if conn.execute("SELECT to_regclass(%s)", (f"ims.{table}",)).fetchone() != (None,):
                conn.execute(f"TRUNCATE ims.{table}")
        conn.execute("VACUUM ANALYZE ims.issues")


if __name__ == "__main__":
    raise SystemExit(main())
