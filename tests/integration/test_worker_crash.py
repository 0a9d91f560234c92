"""A worker killed with ``kill -9`` costs the next command little: the workflow's next
task waits on the dead worker's sticky queue only ``STICKY_SCHEDULE_TO_START`` before the
server hands it to a live worker (Temporal's default, 10 s, was the whole stall).

Real Temporal dev server; the killed worker is its own process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.db import get_engine
from infra.settings import Settings
from ops.tables import create_tables
from pathway import commands as cmd
from tests.conftest import temporal_address
from tests.workflow.helpers import command, start_referral
from workers.worker import STICKY_SCHEDULE_TO_START, build_worker
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("test.worker_crash")


async def test_a_command_after_the_worker_is_killed_waits_about_the_sticky_timeout(
    dev_env, tmp_path: Path, task_queue: str
) -> None:
    settings = Settings(data_dir=tmp_path, temporal_address=temporal_address(dev_env))
    create_tables(get_engine(settings))
    args = [str(tmp_path), settings.temporal_address, task_queue]
    doomed = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.worker_process", *args],
        cwd=ROOT,
    )
    try:
        handle = await start_referral(dev_env.client, task_queue)
        # The workflow has run on the doomed worker, so its next task goes to that
        # worker's sticky queue.
        accepted = command(cmd.AcceptReferral, link_worker_id="lw-1")
        await asyncio.wait_for(
            handle.execute_update(ReferralWorkflow.accept_referral, accepted), 60
        )
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)

    async with build_worker(dev_env.client, settings, task_queue):
        sent = time.monotonic()
        attempt = command(cmd.RecordContactAttempt, outcome="no_answer")
        result = await asyncio.wait_for(
            handle.execute_update(ReferralWorkflow.record_contact_attempt, attempt), 60
        )
        stall = time.monotonic() - sent
    log.info("a command after the worker was killed took %.1f s", stall)
    assert result.version == 3
    assert stall < STICKY_SCHEDULE_TO_START.total_seconds() + 3
