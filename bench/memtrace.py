"""What a cached open workflow holds in the worker: ``python -m bench.memtrace [N] [--past]``.

Starts the bench's servers, then one ``bench.memworker`` process per side (Linkway's
referral, the floor's trivial workflow) tracing its allocations with ``tracemalloc``;
opens 10 workflows as P4 does (a warm worker), takes a snapshot, opens N more (default
100, under the cache), takes another, and prints the difference per workflow: by file,
then the largest allocation sites with their stacks. It measures Python allocations
only (not the SDK's Rust core, nor the allocator's slack that RSS also counts), and
tracing slows the worker several times: read it for shares, and P4 for the figures.
With ``--past`` the worker caches only the first 10 + N, and the second snapshot comes
after N more: what each open workflow past the cache leaves behind (P4's second row).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import tracemalloc
import uuid
from pathlib import Path

from bench.drive import concurrently
from bench.env import running
from bench.p4_memory import KINDS, WorkerProcess, _openers

FRAMES = 12
WARM = 10


def _snapshot(worker: WorkerProcess, path: Path) -> tracemalloc.Snapshot:
    assert worker.proc.stdin is not None and worker.proc.stdout is not None
    worker.proc.stdin.write(f"snapshot {path}\n".encode())
    worker.proc.stdin.flush()
    if worker.proc.stdout.readline().strip() != b"done":
        raise RuntimeError("the worker did not take its snapshot")
    return tracemalloc.Snapshot.load(str(path))


def report(kind: str, before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int) -> None:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    by_file = after.compare_to(before, "filename")
    total = sum(d.size_diff for d in by_file)
    print(f"\n== {kind}: {total / n / 1024:.1f} KiB of Python allocations per workflow")
    for d in by_file[:15]:
        print(f"{d.size_diff / n / 1024:8.2f} KiB {d.size_diff / total:6.1%}  {d.traceback}")
    print(f"-- {kind}: largest allocation sites, with their stacks")
    for d in after.compare_to(before, "traceback")[:12]:
        print(f"{d.size_diff / n / 1024:8.2f} KiB {d.count_diff / n:7.1f} blocks")
        for line in d.traceback.format(limit=FRAMES, most_recent_first=True)[::2][:8]:
            print("        ", line.strip())


async def main(n: int, past: bool) -> None:
    os.environ["LINKWAY_BENCH_TRACEMALLOC"] = str(FRAMES)
    with tempfile.TemporaryDirectory(prefix="linkway-memtrace-") as tmp:
        async with running(Path(tmp), quick=True) as env:
            for kind in KINDS:
                queue = f"bench-memtrace-{kind}-{uuid.uuid4().hex[:6]}"
                worker = WorkerProcess(env, kind, queue, n + WARM if past else n + 2 * WARM)
                try:
                    opener = _openers(env, queue)[kind]
                    await concurrently(n + WARM if past else WARM, 10, opener)
                    before = _snapshot(worker, Path(tmp) / f"{kind}-0.snap")
                    await concurrently(n, 10, opener)
                    await asyncio.sleep(0.5)
                    after = _snapshot(worker, Path(tmp) / f"{kind}-1.snap")
                finally:
                    worker.stop()
                report(kind, before, after, n)


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    asyncio.run(main(numbers[0] if numbers else 100, "--past" in sys.argv[1:]))
