"""Where P1's CPU goes: ``python -m bench.p1cpu [--relay-off] [--rounds N]``.

Runs P1's rounds (20 referrals, 10 at a time, Linkway and the floor alternating) and
reports, per referral and per side, the CPU seconds of the bench process (client,
workers, activities, the relay when on) and of the Temporal dev server's process tree,
read from ``/proc`` around each round. With ``--relay-off`` the relay is stopped first,
so its publishing of Linkway's events (which also runs during the floor's rounds) is
left out of both. A diagnostic beside P1, not a benchmark row (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.drive import concurrently, floor_pathway, pathway
from bench.env import running

TICK = os.sysconf("SC_CLK_TCK")
PER_ROUND, CONCURRENCY = 20, 10


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cpu(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _descendants(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat(int(entry))[1]) == pid:
                    found.append(int(entry))
            except OSError:
                continue
    return found + [d for child in found for d in _descendants(child)]


def _temporal_tree() -> list[int]:
    pids = []
    for child in _descendants(os.getpid()):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"temporal" in f.read():
                    pids.append(child)
        except OSError:
            continue
    return pids


async def main(relay_off: bool, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="linkway-p1cpu-") as tmp:
        async with running(Path(tmp), quick=False) as env:
            server = _temporal_tree()
            if relay_off:
                env.relay.stop()
            sides: dict[str, Callable[[], Awaitable[None]]] = {
                "linkway": lambda: pathway(env.client, env.engine),
                "floor": lambda: floor_pathway(env.raw),
            }
            for one in sides.values():  # unmeasured: imports and the sandbox's first load
                await one()
            totals = {name: [0.0, 0.0, 0.0] for name in sides}
            for n in range(rounds):
                for name in list(sides) if n % 2 == 0 else list(sides)[::-1]:
                    own, srv, t0 = _cpu(os.getpid()), sum(map(_cpu, server)), time.perf_counter()
                    await concurrently(PER_ROUND, CONCURRENCY, sides[name])
                    totals[name][0] += _cpu(os.getpid()) - own
                    totals[name][1] += sum(map(_cpu, server)) - srv
                    totals[name][2] += time.perf_counter() - t0
            count = rounds * PER_ROUND
            relay = "off" if relay_off else "on"
            for name, (own_s, srv_s, wall) in totals.items():
                print(
                    f"{name:8} relay {relay}: bench process {own_s / count * 1000:.0f} ms CPU "
                    f"per referral, Temporal server {srv_s / count * 1000:.0f} ms, "
                    f"{count / wall:.2f} referrals/s"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.p1cpu", description=__doc__)
    parser.add_argument("--relay-off", action="store_true")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.relay_off, args.rounds))
