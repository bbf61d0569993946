"""Measure the async workloads, check that every implementation agrees, print the table.

    .venv/bin/python -m bench.aio [--size 100000] [--repeat 5] [--write-repeat 3]
                                  [--only WORKLOAD ...] [--write-doc] [--keep]
                                  [--profile WORKLOAD [--profile-impl IMPL]]

The database and its data are ``bench.data``'s (the same builder as ``python -m bench``).
Everything runs in one event loop; the sync implementations run in it too, blocking it
while they work (nothing else is scheduled meanwhile). A repetition of a read workload
runs every implementation interleaved, slice by slice of its operations (rotating the
order per slice), so that the load of the machine's other tenants falls on all of them
alike; the ingest runs whole, rotated per repetition as ``bench.run`` does. The table
shows medians over repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import inspect
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aio.workloads import IMPLEMENTATIONS, AsyncBench, AsyncWorkload
from bench.data import BenchDatabase, Plan, load
from bench.run import Mismatch, Runs, compare, machine
from bench.workloads import Bench

DOC = Path(__file__).resolve().parents[2] / "docs" / "BENCHMARKS.md"
BEGIN = "<!-- async table: written by `python -m bench.aio --write-doc` -->"
END = "<!-- end of the async table -->"


@dataclass
class AsyncOutcome:
    workload: AsyncWorkload
    runs: dict[str, Runs]
    results: Any = None
    """ims_repo's canonical results of the first repetition (what every implementation
    agreed on)."""
    waits: dict[str, list[float]] = field(default_factory=dict)
    """Per implementation and repetition: how long the event loop's thread waited for a
    CPU (runnable, not running; the kernel's run-queue delay) during its runs."""
    slices: dict[str, list[list[float]]] = field(default_factory=dict)
    """Per implementation and repetition: the wall time of each slice of operations
    (``measure_interleaved``; one slice, the whole run, for the ingest)."""

    def paired(self, top: str, bottom: str) -> float:
        """The median over slices of ``top``'s time / ``bottom``'s time on the same slice
        of operations, run back to back (the repetitions where both ran): robust to the
        machine's load changing during a run, which moves both sides of a pair alike."""
        ratios = [
            a / b
            for tops, bottoms in zip(self.slices[top], self.slices[bottom], strict=False)
            for a, b in zip(tops, bottoms, strict=True)
        ]
        return statistics.median(ratios)

    def wait_share(self, impl: str) -> float:
        """The median share of an implementation's wall time spent waiting for a CPU."""
        shares = [w / s for w, s in zip(self.waits[impl], self.runs[impl].seconds, strict=True)]
        return statistics.median(shares)

    def ratio(self, top: str, bottom: str) -> float:
        return self.runs[top].median / self.runs[bottom].median


async def _call(function: Callable[[Any], Any], op: Any) -> Any:
    result = function(op)
    if inspect.isawaitable(result):
        result = await result
    return result


def _run_queue_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat;
    0 where it is not available)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def measure(workload: AsyncWorkload, impl: str) -> tuple[float, float, float, list[Any], Any]:
    """One run: prepare, time every operation (wall, client CPU, the loop thread's wait
    for a CPU), verify."""
    function = workload.impls[impl]
    before = workload.prepare() if workload.prepare else None
    gc.collect()
    results: list[Any] = []
    waited = _run_queue_wait()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for op in workload.ops:
        results.append(await _call(function, op))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    waited = _run_queue_wait() - waited
    state = workload.verify(before) if workload.verify else None
    return elapsed, cpu, waited, results, state


async def measure_interleaved(
    workload: AsyncWorkload, order: Sequence[str], chunks: int = 20
) -> dict[str, tuple[float, float, float, list[Any], list[float]]]:
    """One run of every implementation in ``order`` over a read workload, interleaved:
    the operations are cut into ``chunks`` slices and each slice is run by every
    implementation in turn (the order rotated per slice), so that a change of the
    machine's load during the run (other tenants) falls on all of them alike. Per
    implementation: the summed wall time, client CPU time and wait for a CPU, and its
    results in order."""
    gc.collect()
    size = max(1, -(-len(workload.ops) // chunks))
    timed: dict[str, list[Any]] = {impl: [0.0, 0.0, 0.0, [], []] for impl in order}
    for index, first in enumerate(range(0, len(workload.ops), size)):
        ops = workload.ops[first : first + size]
        shift = index % len(order)
        for impl in [*order[shift:], *order[:shift]]:
            function = workload.impls[impl]
            results = timed[impl][3]
            waited = _run_queue_wait()
            started = time.perf_counter()
            cpu_started = time.process_time()
            for op in ops:
                results.append(await _call(function, op))
            elapsed = time.perf_counter() - started
            timed[impl][0] += elapsed
            timed[impl][1] += time.process_time() - cpu_started
            timed[impl][2] += _run_queue_wait() - waited
            timed[impl][4].append(elapsed)
    return {impl: tuple(values) for impl, values in timed.items()}


async def run_workload(workload: AsyncWorkload, repeat: int, *, say: Any = print) -> AsyncOutcome:
    impls = [name for name in workload.impls if name in IMPLEMENTATIONS]
    refs = [name for name in workload.impls if name.startswith("ref:")]
    runs = {name: Runs() for name in (*impls, *refs)}
    waits: dict[str, list[float]] = {name: [] for name in runs}
    slices: dict[str, list[list[float]]] = {name: [] for name in runs}
    agreed: Any = None
    if not workload.write:  # warm up: pool connections, prepared statements, threads
        for name in (*impls, *refs):
            for op in workload.ops[: workload.warm_up]:
                await _call(workload.impls[name], op)
    for rep in range(repeat):
        shift = rep % len(impls)
        order = impls[shift:] + impls[:shift] + (refs if rep == 0 else [])
        canon: dict[str, Any] = {}
        states: dict[str, Any] = {}
        if not workload.write:
            measured = await measure_interleaved(workload, order)
            for impl, (elapsed, cpu, waited, results, times) in measured.items():
                runs[impl].seconds.append(elapsed)
                runs[impl].cpu.append(cpu)
                waits[impl].append(waited)
                slices[impl].append(times)
                if rep == 0:
                    canon[impl] = workload.canon(impl, results)
                    states[impl] = None
                del results
        for impl in order if workload.write else ():
            elapsed, cpu, waited, results, state = await measure(workload, impl)
            runs[impl].seconds.append(elapsed)
            runs[impl].cpu.append(cpu)
            waits[impl].append(waited)
            slices[impl].append([elapsed])
            canon[impl] = workload.canon(impl, results)
            states[impl] = state
            del results
        if canon:
            for impl in canon:
                if impl == "ims_repo":
                    continue
                compare(workload, impl, canon[impl], "ims_repo", canon["ims_repo"])  # type: ignore[arg-type]
                if states[impl] != states["ims_repo"]:
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
    return AsyncOutcome(workload, runs, agreed, waits, slices)


async def profile_workload(workload: AsyncWorkload, impl: str, top: int = 30) -> str:
    """cProfile of one run of ``impl`` (after one unprofiled run), by own time."""
    await measure(workload, impl)
    function = workload.impls[impl]
    before = workload.prepare() if workload.prepare else None
    profiler = cProfile.Profile()
    profiler.enable()
    for op in workload.ops:
        await _call(function, op)
    profiler.disable()
    if workload.verify:
        workload.verify(before)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


async def run_all(
    bench: Bench,
    repeat: int,
    write_repeat: int,
    *,
    only: Sequence[str] | None = None,
    profile: tuple[str, str] | None = None,
    say: Any = print,
) -> list[AsyncOutcome]:
    """Every async workload (or those named in ``only``), in one event loop; then the
    profile of ``profile`` = (workload, implementation), printed, when asked for."""
    abench = await AsyncBench.start(bench)
    try:
        outcomes = []
        for workload in abench.workloads():
            if only and workload.name not in only:
                continue
            say(f"  {workload.name}: {workload.title}")
            count = write_repeat if workload.write else repeat
            outcomes.append(await run_workload(workload, count, say=say))
        if profile is not None:
            name, impl = profile
            chosen = [w for w in abench.workloads() if w.name == name]
            say(await profile_workload(chosen[0], impl))
        return outcomes
    finally:
        await abench.close()


# --- formatting ----------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _cell(outcome: AsyncOutcome, impl: str, value: Callable[[Runs], float]) -> str:
    runs = outcome.runs.get(impl)
    return _fmt(value(runs) / len(outcome.workload.ops)) if runs else "-"


def table(outcomes: Sequence[AsyncOutcome]) -> str:
    head = (
        "| workload | ops/run | async floor | AsyncDatabase | Database (sync) "
        "| async / floor (paired) | async / sync (paired) | target (paired) "
        "| client CPU per op floor / async / sync "
        "| waiting for a CPU floor / async / sync |"
    )
    lines = [head, "|" + "---|" * 10]
    for outcome in outcomes:
        workload = outcome.workload
        runs = outcome.runs
        layer = (
            f"{outcome.ratio('ims_repo', 'floor'):.2f} ({outcome.paired('ims_repo', 'floor'):.2f})"
            if "floor" in runs
            else "-"
        )
        twin = f"{outcome.ratio('ims_repo', 'sync'):.2f} ({outcome.paired('ims_repo', 'sync'):.2f})"
        target = workload.target
        if target.most is None:
            check = "reported"
        else:
            ratio = outcome.paired(target.top, target.bottom)
            name = "async / floor" if target.bottom == "floor" else "async / sync"
            check = f"{name} ≤ {target.most:.2f} {'ok' if ratio <= target.most else 'MISS'}"
        cpu = " / ".join(_cell(outcome, impl, lambda r: r.median_cpu) for impl in IMPLEMENTATIONS)
        waiting = " / ".join(
            f"{outcome.wait_share(impl):.0%}" if impl in runs else "-" for impl in IMPLEMENTATIONS
        )
        lines.append(
            f"| {workload.name} | {len(workload.ops)} | {_cell(outcome, 'floor', _median)} "
            f"| {_cell(outcome, 'ims_repo', _median)} | {_cell(outcome, 'sync', _median)} "
            f"| {layer} | {twin} | {check} | {cpu} | {waiting} |"
        )
    return "\n".join(lines)


def _median(runs: Runs) -> float:
    return runs.median


def notes(outcomes: Sequence[AsyncOutcome]) -> str:
    """Reference variants and rates, the throughput ratio of the concurrency workload."""
    lines: list[str] = []
    for outcome in outcomes:
        workload = outcome.workload
        ops = len(workload.ops)
        for name, runs in outcome.runs.items():
            if name.startswith("ref:"):
                versus = ", ".join(
                    f"{runs.median / outcome.runs[impl].median:.2f}x {label}"
                    for impl, label in (("floor", "the async floor"), ("sync", "sync ims_repo"))
                    if impl in outcome.runs
                )
                lines.append(
                    f"- {workload.name}, {name[4:]}: {_fmt(runs.median / ops)} per op "
                    f"({versus}; client CPU {_fmt(runs.median_cpu / ops)})"
                )
        if workload.per_item:
            total = workload.per_item * ops
            rates = ", ".join(
                f"{name.removeprefix('ref:')} {total / runs.median:,.0f}/s"
                for name, runs in outcome.runs.items()
            )
            lines.append(f"- {workload.name} rates (items per second): {rates}")
        if workload.name == "concurrent_points":
            lines.append(
                "- concurrent_points throughput, async tasks / sync threads: "
                f"ims_repo {outcome.ratio('sync', 'ims_repo'):.2f}x, floor "
                f"{outcome.ratio('ref:sync_floor', 'floor'):.2f}x"
            )
    return "\n".join(lines)


def section(outcomes: Sequence[AsyncOutcome], facts: dict[str, str], command: str) -> str:
    """The table block of docs/BENCHMARKS.md's "Async" section."""
    return (
        f"{BEGIN}\n\nRun: `{command}`, {facts['date']}, load average {facts['load']} at "
        f"the start ({facts['cpus']} CPUs, shared with other engineers' test suites).\n\n"
        f"{table(outcomes)}\n\n{notes(outcomes)}\n\n{END}"
    )


def write_doc(text: str) -> None:
    """Replace the async table block of docs/BENCHMARKS.md (between its markers)."""
    doc = DOC.read_text(encoding="utf-8")
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no async table markers ({BEGIN!r} … {END!r})")
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + text + tail, encoding="utf-8")


# --- main ----------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.aio", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="issues (default 100000)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the reads")
    parser.add_argument(
        "--write-repeat", type=int, default=3, help="repetitions of the ingest (default 3)"
    )
    parser.add_argument("--only", nargs="+", metavar="WORKLOAD", help="run only these")
    parser.add_argument(
        "--write-doc", action="store_true", help="rewrite the async table in docs/BENCHMARKS.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--profile", metavar="WORKLOAD", help="print a cProfile of one run of WORKLOAD"
    )
    parser.add_argument(
        "--profile-impl", default="ims_repo", help="the implementation --profile profiles"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    plan = Plan(args.size)
    db = BenchDatabase(name=f"ims_bench_aio_{os.getpid()}")
    print(
        f"bench.aio: {plan.issues:,} issues, {args.repeat} repetitions "
        f"({args.write_repeat} for the ingest), database {db.name}"
    )
    started = time.perf_counter()
    db.create()
    try:
        load(db, plan, progress=True)
        print(f"  loaded in {time.perf_counter() - started:.1f} s")
        bench = Bench(db, plan)
        try:
            facts = machine(db)
            profile = (args.profile, args.profile_impl) if args.profile else None
            outcomes = asyncio.run(
                run_all(bench, args.repeat, args.write_repeat, only=args.only, profile=profile)
            )
        finally:
            bench.close()
        print()
        print(table(outcomes))
        print()
        print(notes(outcomes))
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        if args.write_doc:
            command = "python -m bench.aio" + "".join(
                f" {a}" for a in (argv if argv is not None else sys.argv[1:])
            )
            write_doc(section(outcomes, facts, command))
            print(f"wrote {DOC}")
    except Mismatch as error:
        print(f"\nMISMATCH: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept database {db.name}: {db.admin_url}")
        else:
            db.drop()
    return 0
