"""``python -m bench.memory``: peak memory of a streaming ingest, by input size (issue 5).

For each size, a fresh Python process ingests that many generated issues into an empty,
migrated database through ``Database.upsert_issues`` (two connections) and reports its
peak RSS (``ru_maxrss``) before and after. Streaming holds when the peak does not grow
with the input: the batches in flight, not the input, set the memory.

    python -m bench.memory --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

from bench import data


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def ingest(app_url: str, size: int, connections: int) -> dict[str, float]:
    """Ingest ``size`` issues in this process; what it measured."""
    from ims_repo import Database

    with Database(app_url, min_size=1, max_size=connections) as db:
        before = _peak_mb()
        started = time.perf_counter()
        result = db.upsert_issues(data.issue_items(size, "MEM"), connections=connections)
        seconds = time.perf_counter() - started
    assert result.inserted == size, result
    return {"size": size, "peak_before_mb": before, "peak_mb": _peak_mb(), "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--child", metavar="APP_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(ingest(args.child, args.sizes[0], args.connections)))
        return 0
    for size in args.sizes:
        db = data.BenchDatabase()
        db.create()
        try:
            command = [sys.executable, "-m", "bench.memory", "--child", db.app_url]
            command += ["--sizes", str(size), "--connections", str(args.connections)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        finally:
            db.drop()
        got = json.loads(output.splitlines()[-1])
        print(
            f"{got['size']:>9,} issues: peak RSS {got['peak_mb']:.0f} MB "
            f"({got['peak_before_mb']:.0f} MB before the ingest), "
            f"{got['size'] / got['seconds']:,.0f} issues/s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
