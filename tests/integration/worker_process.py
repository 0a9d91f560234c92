"""A Linkway worker in its own process, for tests that kill it:

python -m tests.integration.worker_process DATA_DIR TEMPORAL_ADDRESS TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def main() -> None:
    data_dir, temporal_address, task_queue = sys.argv[1:4]
    from infra import temporal
    from infra.settings import Settings
    from workers.worker import build_worker

    settings = Settings(data_dir=Path(data_dir), temporal_address=temporal_address)
    await build_worker(await temporal.connect(settings), settings, task_queue).run()


if __name__ == "__main__":
    asyncio.run(main())
