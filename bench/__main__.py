"""``python -m bench [--quick] [--only P1,P3] [--keep]``: run the benchmarks, print the
table and write JSON under var/bench/ (one file per run, and latest.json).

Exit status 1 if any benchmark produced no number: that is all ``--quick`` checks (CI
runs it so the harness cannot rot); whether a goal was met is for people to read, never
an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import BENCHMARKS
from bench.core import HEADER, Result, as_json, machine, machine_line, row
from bench.env import running

OUT = Path("var/bench")


async def _run(ids: list[str], quick: bool, run_dir: Path, file: bool) -> list[Result]:
    results: list[Result] = []
    async with running(run_dir, quick, file) as env:
        context: dict[str, object] = {}
        for bid in ids:
            t0 = time.monotonic()
            print(f"-- {bid} ...", file=sys.stderr, flush=True)
            try:
                found = await BENCHMARKS[bid](env, context)
            except Exception:
                traceback.print_exc()
                found = [_failed(bid)]
            results += found
            for r in found:  # as it comes, so a long run shows its progress
                print(row(r), file=sys.stderr, flush=True)
            print(f"-- {bid} took {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return results


def _failed(bid: str) -> Result:
    return Result(bid, "failed: see the log", "", None, None, None, "higher", "", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="e.g. P1,P5")
    parser.add_argument(
        "--temporal-file",
        action="store_true",
        help="the Temporal dev server on a SQLite file, as `linkway dev` runs it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's servers' files")
    args = parser.parse_args(argv)
    ids = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in ids if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    # A plain SIGTERM would skip atexit, which stops the servers this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = OUT / f"run-{stamp}"
    started = time.monotonic()
    try:
        results = asyncio.run(_run(ids, args.quick, run_dir, args.temporal_file))
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    m = machine()
    m["temporal_store"] = "SQLite file" if args.temporal_file else "memory"
    print(f"\nMachine: {machine_line(m)}")
    mode = "quick" if args.quick else "full"
    print(
        f"Mode: {mode}; Temporal store: {m['temporal_store']}; {time.monotonic() - started:.0f} s\n"
    )
    print(HEADER)
    print("|---" * 8 + "|")
    for r in results:
        print(row(r))
    report = {
        "when": stamp,
        "mode": "quick" if args.quick else "full",
        "seconds": round(time.monotonic() - started, 1),
        "machine": m,
        "results": [as_json(r) for r in results],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name in (f"{stamp}{'-quick' if args.quick else ''}.json", "latest.json"):
        (OUT / name).write_text(json.dumps(report, indent=2, default=str) + "\n")
    missing = [r.id for r in results if not r.produced]
    if missing:
        print(f"\nno number from {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
