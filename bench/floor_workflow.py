"""The raw floor: the thinnest workflow that does what a referral does to Temporal.

It takes the same number of updates and signals as a referral and, like the referral's
single writer, commits one database row per update through one activity; it holds one
timer, as an open referral sleeps until its next deadline. It decides nothing and
publishes nothing, so Linkway's cost is whatever it takes beyond this.

Kept apart from the activity (``bench.floor``) because the workflow sandbox re-imports
this module: it imports nothing but Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

FLOOR_WORKFLOW = "BenchFloorWorkflow"
FLOOR_WRITE = "bench_floor_write"


@dataclass
class FloorInput:
    key: str
    # An open referral sleeps until its next deadline: one timer, this long.
    sleep_seconds: float = 30 * 24 * 3600


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    """Update ``step`` (one activity, one row), signal ``poke``, query ``get_count``."""

    def __init__(self) -> None:
        self.pokes = 0
        self.steps = 0
        self.started = False

    @workflow.run
    async def run(self, input: FloorInput) -> None:
        self.key = input.key
        # The referral persists its "received" state before anything else: so does this.
        await self._write("start")
        self.started = True
        await workflow.sleep(timedelta(seconds=input.sleep_seconds))

    async def _write(self, what: str) -> None:
        await workflow.execute_activity(
            FLOOR_WRITE, f"{self.key}/{what}", start_to_close_timeout=timedelta(seconds=30)
        )

    @workflow.update
    async def step(self, n: int) -> int:
        await workflow.wait_condition(lambda: self.started)
        self.steps += 1
        await self._write(str(n))
        return self.steps

    @workflow.signal
    def poke(self, n: int) -> None:
        self.pokes += 1

    @workflow.query
    def get_count(self) -> int:
        return self.pokes + self.steps
