"""An API process that dies at one named point of ``POST /referrals``, as ``kill -9`` would:
``os._exit`` runs no ``finally``, no ``except`` and no shutdown, so whatever the request
had committed stays committed and nothing it would have done next happens.

    python -m tests.integration.doomed_api SEAM DATA_DIR TEMPORAL_ADDRESS PORT

The database, the key files and the Temporal server are the real ones the test's own
API and worker use; only the point of death is arranged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

SEAMS = ("before_person", "after_person", "after_start", "after_answer")


def die() -> None:
    sys.stderr.flush()
    os._exit(137)


def arrange(seam: str) -> None:
    from temporalio.client import Client

    from api.idempotency import IdempotencyStore
    from api.personal_data import PersonalDataStore

    if seam == "before_person":
        # The person's details are about to be written, nothing of the request is stored.
        PersonalDataStore.put = lambda *a, **k: die()  # type: ignore[method-assign]
    elif seam == "after_person":
        # The details are committed; the workflow is about to be started.
        Client.execute_update_with_start_workflow = (  # type: ignore[method-assign]
            lambda *a, **k: die()
        )
    elif seam == "after_start":
        # The workflow has started and confirmed the referral; the answer is not stored.
        start = Client.execute_update_with_start_workflow

        async def start_then_die(*args: Any, **kwargs: Any) -> Any:
            await start(*args, **kwargs)
            die()

        Client.execute_update_with_start_workflow = start_then_die  # type: ignore[method-assign]
    elif seam == "after_answer":
        # The answer is stored; the client never receives it.
        finish = IdempotencyStore.finish

        def finish_then_die(self: IdempotencyStore, *args: Any) -> None:
            finish(self, *args)
            die()

        IdempotencyStore.finish = finish_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown seam {seam!r}; one of {', '.join(SEAMS)}")


def main() -> None:
    seam, data_dir, temporal_address, port = sys.argv[1:5]
    from api.app import create_app
    from infra.settings import Settings

    arrange(seam)
    settings = Settings(
        data_dir=Path(data_dir), temporal_address=temporal_address, api_port=int(port)
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=int(port), log_level="error")


if __name__ == "__main__":
    main()
