"""The server's cost per fresh issue, A/B: ``INSERT … SELECT`` of IMS-like issues as the
owner into ``ims.issues``, against the same into a plain table, removing one thing at a
time (issue 13).

    .venv/bin/python -m bench.server_cost [--rows 20000] [--repeat 3]

Every figure is the median of ``--repeat`` runs of one statement inserting ``--rows``
issues (about 60-character titles, 400-character descriptions, from ``bench.data``'s
vocabularies), each rolled back and followed by a ``VACUUM`` so the next run starts from
the same table. Steps, each on top of the one before:

- ``0009``: migrations 0001-0009 (``bench.data.rollback_to``: every later one rolled back);
- ``0010`` and ``0011`` (lazy rank bounds) alternately, twice each, then ``0011`` with
  ``ims.refresh_search_bounds`` in the same transaction (the cost 0011 defers; "0011" is
  the schema up to the latest migration: 0012 changes only the search and the refresh,
  which since then also analyzes the bounds' tables when their statistics are stale);
- then without the audit trigger on INSERT, without 0011's stale trigger, without
  0009's pairs index, without the title trigram index, with the search vector computed
  by two ``to_tsvector`` calls instead of four (a vector that is *not* ims_repo's: the
  cost of the calls only), without the ``search_vector`` GIN index;
- ``plain``: the plain table of issue 13 (same columns, one english vector + GIN, a few
  btrees, no RLS or audit).

The database (``ims_cost_<pid>``) is created on ``IMS_BENCH_DATABASE_URL`` (default the
local server as ``postgres``) and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from bench import data
from bench.raw import PLAIN_TABLE
from ims_repo.services.migrations import migrate

COLUMNS = (
    "issue_id",
    "title",
    "description",
    "product",
    "module",
    "version",
    "status",
    "priority",
    "severity",
    "reporter",
    "assignee",
    "issue_created_at",
    "issue_updated_at",
    "url",
    "raw_data",
)

TWO_CALL_VECTOR = """
ALTER TABLE ims.issues DROP COLUMN search_vector CASCADE;
ALTER TABLE ims.issues ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'B')
) STORED;
CREATE INDEX issues_search_vector_idx ON ims.issues USING gin (search_vector);
"""


def issue_rows(count: int) -> Iterator[tuple[Any, ...]]:
    """IMS-like issues: bench titles and descriptions joined and cut at a word to at
    most 60 and 400 characters."""
    for n in range(count):
        item = data.issue_item(n, "COST")
        other = data.issue_item(n + 5003)
        third = data.issue_item(n + 2011)
        item["title"] = _cut(f"{item['title']} {other['title']}", 60)
        item["description"] = _cut(
            f"{item['description']} {other['description']} {third['description']}", 400
        )
        yield tuple(Jsonb(item[c]) if c == "raw_data" else item[c] for c in COLUMNS)


def _cut(text: str, length: int) -> str:
    """``text`` cut to at most ``length`` characters, at a word boundary."""
    return text if len(text) <= length else text[:length].rsplit(" ", 1)[0]


def load_source(conn: psycopg.Connection[Any], count: int) -> tuple[float, float]:
    conn.execute(
        "CREATE TABLE public.cost_source AS SELECT "
        + ", ".join(COLUMNS)
        + " FROM ims.issues WITH NO DATA"
    )
    with conn.cursor().copy(
        sql.SQL("COPY public.cost_source ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
    ) as copy:
        copy.set_types([*("text",) * 11, "timestamptz", "timestamptz", "text", "jsonb"])
        for row in issue_rows(count):
            copy.write_row(row)
    conn.execute("GRANT SELECT ON public.cost_source TO ims_owner")
    conn.execute("VACUUM ANALYZE public.cost_source")
    lengths = conn.execute(
        "SELECT avg(length(title)), avg(length(description)) FROM public.cost_source"
    ).fetchone()
    assert lengths is not None
    return float(lengths[0]), float(lengths[1])


def insert_seconds(
    conn: psycopg.Connection[Any], table: str, repeat: int, then: str | None = None
) -> list[float]:
    """Times of ``repeat`` rolled-back ``INSERT … SELECT`` of the source into ``table``,
    as the owner with a user context (what the audit records as the actor), each
    followed by the statement ``then`` (timed with it) when given."""
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    target = sql.Identifier(*table.split("."))
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM public.cost_source").format(
        target, columns, columns
    )
    times: list[float] = []
    for _ in range(repeat):
        conn.execute("VACUUM " + table)
        with conn.transaction(force_rollback=True):
            if table.startswith("ims."):
                conn.execute("SET LOCAL ROLE ims_owner")
            conn.execute("SELECT set_config('ims.current_user_id', '2', true)")
            started = time.perf_counter()
            conn.execute(statement)
            if then is not None:
                conn.execute(then)
            times.append(time.perf_counter() - started)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_cost", description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    server = os.environ.get(data.URL_VARIABLE) or data.DEFAULT_URL
    name = f"ims_cost_{os.getpid()}"
    url = make_conninfo(server, dbname=name)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO ims.users (user_id, username, email) VALUES (2, 'u', 'u@x')")
            title, description = load_source(conn, args.rows)
            print(
                f"{args.rows:,} issues, titles {title:.0f} and descriptions "
                f"{description:.0f} characters on average; median of {args.repeat}"
            )
            print("| schema | s per run | µs per issue | x plain |")
            print("|---|---:|---:|---:|")
            for statement in PLAIN_TABLE.split(";"):
                conn.execute(statement)
            plain = statistics.median(insert_seconds(conn, "public.plain_issues", args.repeat))

            def step(
                label: str, change: Callable[[], None] | None = None, then: str | None = None
            ) -> None:
                if change is not None:
                    change()
                median = statistics.median(insert_seconds(conn, "ims.issues", args.repeat, then))
                print(
                    f"| {label} | {median:.2f} | {median / args.rows * 1e6:.0f} "
                    f"| {median / plain:.2f} |",
                    flush=True,
                )

            def run(*statements: str) -> Callable[[], None]:
                def change() -> None:
                    for statement in statements:
                        conn.execute(statement)

                return change

            data.rollback_to(url, "0009.search_ranking")
            step("full, migrations 0001-0009")
            for _ in range(2):  # 0010 and 0011 alternately: a paired A/B on a shared machine
                migrate(url)
                data.rollback_to(url, "0010.lean_writes")
                step("full, migrations 0001-0010")
                migrate(url)
                step("full, migrations 0001-0011 (rank bounds lazy)")
            step(
                "0011, the bounds refreshed in the same transaction (the deferred cost)",
                then=f"SELECT ims.refresh_search_bounds({args.rows})",
            )
            step(
                "… without the audit trigger on INSERT",
                run("ALTER TABLE ims.issues DISABLE TRIGGER issues_audit_insert"),
            )
            step(
                "… and without the stale-bounds trigger (0011)",
                run("ALTER TABLE ims.issues DISABLE TRIGGER issues_search_stale_insert"),
            )
            step(
                "… and without 0009's title_bigrams index",
                run("DROP INDEX ims.issues_title_bigrams_idx"),
            )
            step(
                "… and without the title trigram index",
                run("DROP INDEX ims.issues_title_trgm_idx"),
            )
            step(
                "… and two to_tsvector calls (english only) instead of four",
                run(*[s for s in TWO_CALL_VECTOR.split(";\n") if s.strip()]),
            )
            step(
                "… and without the search_vector GIN index",
                run("DROP INDEX ims.issues_search_vector_idx"),
            )
            print(
                f"| plain table (english vector + GIN, 3 btrees) | {plain:.2f} "
                f"| {plain / args.rows * 1e6:.0f} | 1.00 |"
            )
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
