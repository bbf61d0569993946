"""Measure every workload three ways, check they agree, print the table.

    .venv/bin/python -m bench [--size 100000] [--repeat 5] [--write-repeat 3]
                              [--only WORKLOAD ...] [--write-doc] [--profile WORKLOAD]
                              [--keep] [--list]

Each repetition runs the implementations in a rotated order (floor, ims_repo, orm; then
ims_repo, orm, floor; …) so slow drift of the machine does not favour one of them. The
table shows the median over repetitions of the time per operation, the ratios of
medians, and the peak RSS above the RSS at the start of each run (the kernel's high-water
mark, reset through ``/proc/self/clear_refs`` before the run: no tracing overhead).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.data import BenchDatabase, Plan, load
from bench.workloads import IMPLEMENTATIONS, Bench, Workload

DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
KEEP_MARKER = "<!-- everything below this line is kept by `python -m bench --write-doc` -->"


class Mismatch(AssertionError):
    """Two implementations returned different results for the same workload."""


@dataclass
class Runs:
    """Every measured run of one implementation of one workload."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """Client CPU time (this process) of each run: the layer's own cost, which the
    server's and the other tenants' load do not inflate."""
    latencies: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


@dataclass
class Outcome:
    workload: Workload
    runs: dict[str, Runs]
    results: Any = None
    """ims_repo's canonical results of the first repetition (what all three agreed on)."""

    def ratio(self, top: str, bottom: str) -> float:
        return self.runs[top].median / self.runs[bottom].median

    def per_op(self, impl: str) -> float:
        return self.runs[impl].median / len(self.workload.ops)


# --- memory ----------------------------------------------------------------------------------


def _status_kb(field_name: str) -> int:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- measuring -------------------------------------------------------------------------------


def measure(workload: Workload, impl: str) -> tuple[float, float, list[float], int, list[Any], Any]:
    """One run: prepare, time every operation, client CPU, peak RSS growth, verify."""
    function = workload.impls[impl]
    before = workload.prepare() if workload.prepare else None
    gc.collect()
    _reset_peak()
    baseline = _status_kb("VmRSS")
    latencies: list[float] = []
    results: list[Any] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    for op in workload.ops:
        tick = time.perf_counter()
        results.append(function(op))
        latencies.append(time.perf_counter() - tick)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak = max(0, _status_kb("VmHWM") - baseline)
    state = workload.verify(before) if workload.verify else None
    return elapsed, cpu, latencies, peak, results, state


def compare(workload: Workload, impl: str, got: Any, reference: str, expected: Any) -> None:
    """Raise ``Mismatch`` naming the first operation where two canonical results differ."""
    if got == expected:
        return
    for index, (left, right) in enumerate(zip(got, expected, strict=False)):
        if left != right:
            raise Mismatch(
                f"{workload.name}: {impl} and {reference} differ at operation {index} "
                f"({workload.ops[index]!r}):\n  {impl}: {_short(left)}\n  {reference}: "
                f"{_short(right)}"
            )
    raise Mismatch(
        f"{workload.name}: {impl} returned {len(got)} results, {reference} {len(expected)}"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 600 else text[:600] + "…"


def run_workload(workload: Workload, repeat: int, *, say: Any = print) -> Outcome:
    impls = [name for name in workload.impls if name in IMPLEMENTATIONS]
    refs = [name for name in workload.impls if name.startswith("ref:")]
    runs = {name: Runs() for name in (*impls, *refs)}
    agreed: Any = None
    if not workload.write:  # warm up: pool connections, prepared statements, imports
        for name in (*impls, *refs):
            for op in workload.ops[:20]:
                workload.impls[name](op)
    for rep in range(repeat):
        # Reference variants run (and are checked) in the first repetition only.
        order = impls[rep % len(impls) :] + impls[: rep % len(impls)] + (refs if rep == 0 else [])
        canon: dict[str, Any] = {}
        states: dict[str, Any] = {}
        for impl in order:
            elapsed, cpu, latencies, peak, results, state = measure(workload, impl)
            runs[impl].seconds.append(elapsed)
            runs[impl].cpu.append(cpu)
            runs[impl].latencies.extend(latencies)
            runs[impl].peak_rss.append(peak)
            if rep == 0 or workload.write:
                canon[impl] = workload.canon(impl, results)
                states[impl] = state
            # Drop them now: kept alive, the next implementation's run would pay the
            # garbage collector's passes over them.
            del results
        if canon:
            for impl in ("floor", "orm", *(refs if rep == 0 else [])):
                compare(workload, impl, canon[impl], "ims_repo", canon["ims_repo"])
                if impl not in workload.own_state and states[impl] != states["ims_repo"]:
                    raise Mismatch(
                        f"{workload.name}: database state after {impl} {states[impl]!r} "
                        f"differs from after ims_repo {states['ims_repo']!r}"
                    )
            if agreed is None:
                agreed = canon["ims_repo"]
        say(
            f"    rep {rep + 1}/{repeat}: "
            + ", ".join(f"{name} {_fmt(runs[name].seconds[-1])}" for name in order)
        )
    return Outcome(workload, runs, agreed)


def profile_workload(workload: Workload, impl: str = "ims_repo", top: int = 30) -> str:
    """cProfile of one run of ``impl`` (after one warm-up run), sorted by own time."""
    measure(workload, impl)
    profiler = cProfile.Profile()
    function = workload.impls[impl]
    before = workload.prepare() if workload.prepare else None
    profiler.enable()
    for op in workload.ops:
        function(op)
    profiler.disable()
    if workload.verify:
        workload.verify(before)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- formatting ------------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _check(ok: bool) -> str:
    return "ok" if ok else "MISS"


def table(outcomes: Sequence[Outcome]) -> str:
    head = (
        "| workload | ops/run | floor | ims_repo | ORM | ims_repo / floor | ORM / ims_repo "
        "| targets | client CPU per op floor / ims_repo / ORM "
        "| peak RSS MB floor / ims_repo / ORM |"
    )
    lines = [head, "|" + "---|" * 10]
    for outcome in outcomes:
        workload = outcome.workload
        layer = outcome.ratio("ims_repo", "floor")
        peer = outcome.ratio("orm", "ims_repo")
        target = workload.target
        checks = [f"≤ {target.layer_max:.2f} {_check(layer <= target.layer_max)}"]
        if target.orm_min is not None:
            checks.append(f"ORM ≥ {target.orm_min:g}x {_check(peer >= target.orm_min)}")
        memory = " / ".join(
            f"{max(outcome.runs[name].peak_rss) / 1024:.0f}" for name in IMPLEMENTATIONS
        )
        cpu = " / ".join(
            _fmt(outcome.runs[name].median_cpu / len(workload.ops)) for name in IMPLEMENTATIONS
        )
        lines.append(
            f"| {workload.name} | {len(workload.ops)} | {_fmt(outcome.per_op('floor'))} "
            f"| {_fmt(outcome.per_op('ims_repo'))} | {_fmt(outcome.per_op('orm'))} "
            f"| {layer:.2f} | {peer:.2f} | {'; '.join(checks)} | {cpu} | {memory} |"
        )
    return "\n".join(lines)


def notes(outcomes: Sequence[Outcome]) -> str:
    """Reference variants, rates, latencies and the targets the table cannot show."""
    by_name = {outcome.workload.name: outcome for outcome in outcomes}
    lines: list[str] = []
    for outcome in outcomes:
        workload = outcome.workload
        for name, runs in outcome.runs.items():
            if name.startswith("ref:"):
                ops = len(workload.ops)
                lines.append(
                    f"- {workload.name}, {name[4:]}: {_fmt(runs.median / ops)} per op "
                    f"({runs.median / outcome.runs['floor'].median:.2f}x the floor, "
                    f"{runs.median / outcome.runs['ims_repo'].median:.2f}x ims_repo; "
                    f"client CPU {_fmt(runs.median_cpu / ops)})"
                )
        if workload.per_item:
            rates = ", ".join(
                f"{name} {workload.per_item / outcome.runs[name].median:,.0f}/s"
                for name in outcome.runs
            )
            lines.append(f"- {workload.name} rates (items per second): {rates}")
    if "ingest" in by_name:
        ingest = by_name["ingest"].runs
        if "ref:plain_table" in ingest:
            plain = ingest["ref:plain_table"].median
            lines.append(
                "- ingest as a ratio to the plain table's rate (one connection, text COPY; "
                "> 1 is faster): "
                + ", ".join(
                    f"{name.removeprefix('ref:')} {plain / runs.median:.2f}x"
                    for name, runs in ingest.items()
                    if name != "ref:plain_table"
                )
            )
    for outcome in outcomes:
        if outcome.workload.statements:
            lines.append(
                f"- {outcome.workload.name}: statements per operation "
                + ", ".join(
                    f"{name.removeprefix('ref:')} {count}"
                    for name, count in outcome.workload.statements.items()
                )
            )
    for name in ("search_en", "search_ko"):
        if name in by_name:
            by_impl = by_name[name].runs
            lines.append(
                f"- {name}: p50 per query "
                + ", ".join(f"{impl} {_fmt(by_impl[impl].p50)}" for impl in IMPLEMENTATIONS)
                + f"; max ims_repo {_fmt(max(by_impl['ims_repo'].latencies))}"
            )
    if "page_shallow" in by_name and "page_deep" in by_name:
        shallow, deep = by_name["page_shallow"], by_name["page_deep"]
        lines.append(
            "- deep page / first page, per page: "
            + ", ".join(
                f"{impl} {deep.per_op(impl) / shallow.per_op(impl):.1f}x"
                for impl in IMPLEMENTATIONS
            )
            + " (target: about 1x, keyset pagination)"
        )
    return "\n".join(lines)


# --- the machine -----------------------------------------------------------------------------


def machine(db: BenchDatabase) -> dict[str, str]:
    def run(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = run("free", "-h").splitlines()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": run("nproc").strip() or str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory[1].split()[1] if len(memory) > 1 else "?",
        "load": Path("/proc/loadavg").read_text().split(" ")[0]
        if Path("/proc/loadavg").exists()
        else "?",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": db.server_version(),
        "psycopg": version("psycopg"),
        "psycopg_pool": version("psycopg-pool"),
        "pydantic": version("pydantic"),
        "sqlalchemy": version("sqlalchemy"),
    }


def document(
    outcomes: Sequence[Outcome],
    facts: dict[str, str],
    plan: Plan,
    counts: dict[str, int],
    repeat: int,
    command: str,
    load_end: str,
) -> str:
    kept = ""
    if DOC.exists():
        text = DOC.read_text(encoding="utf-8")
        if KEEP_MARKER in text:
            kept = text.split(KEEP_MARKER, 1)[1].lstrip("\n")
    repeats = {len(o.runs["ims_repo"].seconds) for o in outcomes if o.workload.write}
    writes = ""
    if repeats - {repeat}:
        writes = f" ({', '.join(map(str, sorted(repeats)))} for the writes)"
    return f"""# Benchmarks

The last full run of `bench/` (SPEC §8, issues 5 and 13), written by `{command}`.
Regenerate with `make bench` (prints the table) or `.venv/bin/python -m bench --write-doc`.

## Run

- Date: {facts["date"]}; size: {plan.issues:,} issues ({counts["issue_comments"]:,}
  comments, {counts["issue_history"]:,} history rows, {counts["attachments"]:,}
  attachments), {plan.users} users, {counts["crawl_sessions"]:,} crawl sessions;
  {repeat} repetition(s){writes}, medians; reference variants once.
- Machine: {facts["cpus"]} CPUs ({facts["cpu"]}), {facts["memory"]} memory, load average
  {facts["load"]} at the start and {load_end} at the end (the machine is shared); {facts["os"]}.
- Software: PostgreSQL {facts["postgresql"]} (same machine, loopback TCP), Python
  {facts["python"]}, psycopg {facts["psycopg"]}, psycopg-pool {facts["psycopg_pool"]},
  pydantic {facts["pydantic"]}, SQLAlchemy {facts["sqlalchemy"]}.

## Results

Wall time per operation (median over repetitions of one run's time / its operations),
ratios of the medians, the benchmark process's own CPU time per operation (what each
implementation costs on the client, whatever the server and the machine's other tenants
do), and the peak RSS growth of the process during a run.

{table(outcomes)}

{notes(outcomes)}

## Method

- One fresh database (`ims_bench_<pid>`), migrated with `ims_repo.services.migrations.migrate`,
  loaded once by binary COPY (triggers off) and `VACUUM ANALYZE`d; every implementation
  connects as the same runtime login (`grant_login`), so row-level security applies to
  all three. The database and the login are dropped at the end.
- **floor** (`bench/raw.py`): a `psycopg_pool` pool of autocommit connections; each read
  is one checkout sending `set_config(…, true)` and the query in one pipeline (one round
  trip; the statements before the pipeline's Sync form one implicit transaction, which
  ends the context; `ref:floor_begin_commit` is the same with an explicit
  `BEGIN … COMMIT` around them); tuples zipped with column names and validated into the
  same pydantic records (`find_detailed`: the page aggregated to one JSON text on the server and
  validated with `validate_json`, the fastest way measured). Ingest validates with
  `NewIssue`, binary-COPYs into a temporary staging table (PostgreSQL refuses `COPY FROM`
  into a table under row-level security) and runs one `INSERT … SELECT`; re-crawl stages
  the same way, counts inserted/changed rows and runs one plain
  `INSERT … ON CONFLICT DO UPDATE` of every row. Issues are read through the view
  `ims.issues_with_crawls`, as ims_repo reads them; deep pages by keyset, as ims_repo.
- **ims_repo**: the public API, `with db.session(user_id=u) as s: s.<repo>.<method>(…)`
  per operation; deep pages with `find(after=…)`; the fresh ingest with
  `db.upsert_issues(items, connections=2)`. Before each re-crawl (untimed) every stored
  issue is given the digest an ims_repo crawl of its current content leaves in
  `ims.issue_crawls`: the state of a crawler that stores with ims_repo (the bulk load
  bypasses the layer, and the floor's and the ORM's rewrites make the database forget
  the digests).
- **ORM** (`bench/orm.py`): SQLAlchemy 2 declarative models on the same schema, used as
  the usage guide writes it: `get_session(user_id)` running
  `SELECT ims.set_current_user(:u)`, `session.get`, `session.query(…)`,
  `joinedload(comments)`, `joinedload(history)` (+ `selectinload(attachments)`),
  `bulk_save_objects` in batches of 5,000, `text()` for `ims.search_issues`. The ORM
  returns its own objects (not converted to records inside the timing) and keeps them
  loaded after commit (`expire_on_commit=False`): both favour the ORM.
- **plain table** (`ref:plain_table` of the ingest, `bench/raw.py`): the table a user who
  skips the layer builds (same columns, one english vector + GIN, btrees on the key,
  `issue_id`, product and status; no RLS, no audit), written by one connection's text
  COPY without validation; every ingest is also shown as a ratio to its rate.
- **crawl_page** (`bench/crawl_page.py`): pages of 50 fresh issues with their comments,
  history and an attachment each, linked to a crawl session, the search logged; one
  checkout a page. ims_repo stores a page with `ims_repo.services.importer.import_file` on the open
  session (the one public path with a constant number of statements); the statements each
  implementation sent per page are listed under the table.
- Every workload checks that the three implementations return the same results
  (converted to the records outside the timing); write workloads also compare a digest
  of the rows they leave, and start from the same state (untimed cleanup and VACUUM).
- Implementations run in a rotated order in each repetition. Peak RSS: `VmHWM` after
  resetting it through `/proc/self/clear_refs`, minus `VmRSS` at the start of the run.

{KEEP_MARKER}

{kept}"""


# --- main ------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="issues (default 100000)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="repetitions of the read workloads (default 5)"
    )
    parser.add_argument(
        "--write-repeat",
        type=int,
        default=3,
        help="repetitions of the write workloads: ingest, re-crawl (default 3)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="WORKLOAD", help="run only these workloads (by name)"
    )
    parser.add_argument("--write-doc", action="store_true", help="rewrite docs/BENCHMARKS.md")
    parser.add_argument(
        "--profile",
        metavar="WORKLOAD",
        help="print a cProfile of one ims_repo run of WORKLOAD (after the table)",
    )
    parser.add_argument(
        "--profile-impl", default="ims_repo", help="implementation --profile profiles"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    plan = Plan(args.size)
    db = BenchDatabase()
    outcomes: list[Outcome] = []
    print(
        f"bench: {plan.issues:,} issues, {args.repeat} repetitions "
        f"({args.write_repeat} for the writes), database {db.name}"
    )
    started = time.perf_counter()
    db.create()
    try:
        load(db, plan, progress=True)
        print(f"  loaded in {time.perf_counter() - started:.1f} s")
        bench = Bench(db, plan)
        try:
            workloads = bench.workloads()
            if args.list:
                for workload in workloads:
                    print(f"{workload.name:24} {workload.title}")
                return 0
            if args.only:
                unknown = set(args.only) - {w.name for w in workloads}
                if unknown:
                    print(f"unknown workloads: {', '.join(sorted(unknown))}", file=sys.stderr)
                    return 2
                workloads = [w for w in workloads if w.name in args.only]
            facts = machine(db)
            for workload in workloads:
                print(f"  {workload.name}: {workload.title}", flush=True)
                repeat = args.write_repeat if workload.write else args.repeat
                outcomes.append(run_workload(workload, repeat))
            print()
            print(table(outcomes))
            print()
            print(notes(outcomes))
            print(f"\ntotal {time.perf_counter() - started:.0f} s")
            if args.profile:
                chosen = [w for w in bench.workloads() if w.name == args.profile]
                print(profile_workload(chosen[0], args.profile_impl))
            if args.write_doc:
                load_end = Path("/proc/loadavg").read_text().split(" ")[0]
                command = "python -m bench" + "".join(
                    f" {a}" for a in (argv if argv is not None else sys.argv[1:])
                )
                DOC.write_text(
                    document(outcomes, facts, plan, bench.counts, args.repeat, command, load_end),
                    encoding="utf-8",
                )
                print(f"wrote {DOC}")
        finally:
            bench.close()
    except Mismatch as error:
        print(f"\nMISMATCH: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept database {db.name}: {db.admin_url}")
        else:
            db.drop()
    return 0
