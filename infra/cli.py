"""``linkway``: one command for every Linkway process.

linkway dev       the whole embedded stack (Temporal dev server, Tansu, worker, relay, API)
linkway worker    the Temporal worker
linkway relay     the outbox relay
linkway api       the HTTP API
linkway topics    create the Kafka topics
linkway migrate   create the database tables
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from infra.settings import Settings, get_settings

log = logging.getLogger("linkway")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linkway", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in COMMANDS.items():
        sub.add_parser(name, help=(func.__doc__ or "").strip().splitlines()[0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Client libraries narrate every connection at INFO; only their warnings matter here.
    for noisy in ("kafka", "aiokafka", "temporalio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    return COMMANDS[args.command](settings) or 0


def dev(settings: Settings) -> int:
    """Run Linkway on its embedded default: real Temporal and Kafka-protocol servers."""
    from infra import devstack, kafka

    python = [sys.executable, "-m", "infra.cli"]
    services = [(name, [*python, name]) for name in ("worker", "relay", "api")]

    def banner() -> str:
        api = f"http://{settings.api_host}:{settings.api_port}"
        host = settings.temporal_address.rsplit(":", 1)[0]
        return "\n".join(
            [
                "",
                "Linkway is running on the embedded default.",
                f"  API               {api}  (docs {api}/docs, OpenAPI {api}/openapi.json)",
                f"  Temporal UI       http://{host}:{settings.temporal_ui_port}",
                f"  Temporal gRPC     {settings.temporal_address}",
                f"  Kafka broker      {settings.kafka_bootstrap}",
                f"  Data directory    {settings.data_dir}",
                f"  Pathway profile   {settings.pathway_profile}",
                "Press Ctrl-C to stop.",
            ]
        )

    def provision() -> None:
        kafka.provision(settings)

    return devstack.run_dev(settings, services, provision, banner)


def worker(settings: Settings) -> int:
    """Run the Temporal worker (referral workflows and their activities)."""
    from infra import telemetry, temporal
    from workers.worker import build_worker

    telemetry.setup(settings, "worker")

    async def run() -> None:
        client = await temporal.connect(settings)
        await build_worker(client, settings).run()

    return _run_until_signal(run)


def relay(settings: Settings) -> int:
    """Run the outbox relay (publishes committed events to Kafka)."""
    from events.relay import OutboxRelay, make_producer
    from infra import telemetry
    from infra.db import create_tables, get_engine

    telemetry.setup(settings, "relay")
    engine = get_engine(settings)
    create_tables(engine)

    producer = make_producer(settings)
    relay = OutboxRelay(engine, producer, settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: relay.stop())
    try:
        relay.run()
    finally:
        producer.close(timeout=10)
    return 0


def api(settings: Settings) -> int:
    """Run the HTTP API."""
    import uvicorn

    from api.app import create_app
    from infra import telemetry

    telemetry.setup(settings, "api")
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,  # paths carry only pseudonymous ids, but keep the log lean
    )
    return 0


def topics(settings: Settings) -> int:
    """Create Linkway's Kafka topics if they are missing."""
    from infra import kafka

    for name in kafka.provision(settings):
        print(f"created topic {name}")
    return 0


def migrate(settings: Settings) -> int:
    """Create the database tables if they are missing."""
    from infra.db import create_tables, get_engine

    create_tables(get_engine(settings))
    return 0


def _run_until_signal(main: Callable[[], Awaitable[None]]) -> int:
    async def supervised() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(supervised())
    return 0


COMMANDS: dict[str, Callable[[Settings], int]] = {
    "dev": dev,
    "worker": worker,
    "relay": relay,
    "api": api,
    "topics": topics,
    "migrate": migrate,
}

if __name__ == "__main__":
    sys.exit(main())
