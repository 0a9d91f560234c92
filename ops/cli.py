"""``linkway``: one command for every Linkway process and operator task.

linkway dev                 the whole embedded stack (Temporal, Tansu, worker, relay, API)
linkway worker              the Temporal worker
linkway relay               the outbox relay
linkway api                 the HTTP API
linkway consume NAME        a Kafka consumer: providers | payments | reporting | distal
linkway distal import FILE  a commissioner's distal-activity CSV (distal close: state what is due)
linkway topics              create the Kafka topics
linkway migrate             upgrade the database schema to head (--new MSG writes a migration)
linkway events TOPIC        print a topic's events from the start (--follow to wait)
linkway token ROLE:PARTNER   mint a demo bearer token (embedded default only; link_worker:P
                            is a Tier One link worker, tier_one:P its manager)
linkway replay ...          publish outbox history again (a referral, a time window, a topic)
linkway rebuild MODEL       rebuild a read model: referrals, reporting (from topics), measures
linkway synthetic           a synthetic year of referrals into the reporting read models
linkway docs [--check]      regenerate (or check) the published contract under docs/
linkway reconcile           recompute claims from outcome events against the ledger (CSV/JSON)
linkway status [--json]     is anything stuck, and where? (exit 1 when a check fails)
linkway imd ...             build the postcode to IMD decile lookup from the published files
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from infra.settings import Settings, get_settings
from ops.database import engine_at_head as _engine
from ops.database import schema_is_current as _schema_is_current
from ops.distal import distal, distal_args
from ops.imd import imd, imd_args
from ops.tasks import (
    _docs_args,
    _events_args,
    _people_args,
    _rebuild_args,
    _reconcile_args,
    _replay_args,
    _status_args,
    _synthetic_args,
    _token_args,
    docs,
    events,
    people,
    rebuild,
    reconcile,
    replay,
    status,
    synthetic,
    token,
)

log = logging.getLogger("linkway")
Command = Callable[[Settings, argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linkway", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, configure) in COMMANDS.items():
        configure(sub.add_parser(name, help=(func.__doc__ or "").strip().splitlines()[0]))
    args = parser.parse_args(argv)
    from infra import telemetry

    # JSON lines with the trace and span ids, so a log line finds its trace.
    telemetry.configure_logging(logging.INFO)
    # Client libraries narrate every connection at INFO; only their warnings matter here.
    for noisy in ("kafka", "aiokafka", "temporalio", "httpx", "faststream", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    func, _ = COMMANDS[args.command]
    try:
        return func(get_settings(), args)
    except Exception as exc:
        from ops.schema import SchemaError

        if not isinstance(exc, SchemaError):
            raise
        # Any command that needs the database (topics, rebuild, ...) says what to do.
        print(f"linkway {args.command}: {exc}", file=sys.stderr)
        return 2


def dev(settings: Settings, args: argparse.Namespace) -> int:
    """Run Linkway on its embedded default: real Temporal and Kafka-protocol servers."""
    from api.auth import demo_tokens
    from messaging import provisioning
    from ops import devstack
    from ops.processes import DevStackError, say

    # Also creates the embedded signing key before any service starts.
    tokens = {} if settings.jwks_url else demo_tokens(settings)
    python = [sys.executable, "-m", "ops.cli"]
    services = [(name, [*python, name]) for name in ("worker", "relay", "api")]
    services += [
        (name, [*python, "consume", name]) for name in ("providers", "payments", "reporting")
    ]

    def provision() -> None:
        # The demo directory (services of the demo providers) seeds an empty database;
        # each provider organisation gets its own handoff topic.
        from directory import seed_demo
        from infra.db import get_engine
        from ops import schema

        # The embedded default migrates for the user: one process, one database, and
        # nobody to run a migrate job first (production runs `linkway migrate` as one).
        try:
            say(schema.migrate(get_engine(settings)))
        except schema.SchemaError as exc:
            raise DevStackError(str(exc)) from None
        seed_demo(_engine(settings, "dev"))
        provisioning.provision(settings, extra=_provider_topics(settings))

    def banner() -> str:
        api = f"http://{settings.api_host}:{settings.api_port}"
        host = settings.temporal_address.rsplit(":", 1)[0]
        return "\n".join(
            [
                "",
                "Linkway is running on the embedded default.",
                f"  API               {api}  (docs {api}/docs, OpenAPI {api}/openapi.json)",
                f"  Dashboard         {api}/dashboard  (sign in: contract_manager, tier_one token)",
                f"  Temporal UI       http://{host}:{settings.temporal_ui_port}",
                f"  Temporal gRPC     {settings.temporal_address}",
                f"  Kafka broker      {settings.kafka_bootstrap}",
                f"  Data directory    {settings.data_dir}",
                f"  Pathway profile   {settings.pathway_profile}",
                *(
                    [
                        "Demo bearer tokens (8 h; `linkway token <role>:<partner>` mints more):",
                        *[f"  {name:32} {tok}" for name, tok in tokens.items()],
                    ]
                    if tokens
                    else []
                ),
                "Press Ctrl-C to stop.",
            ]
        )

    return devstack.run_dev(settings, services, provision, banner)


def worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run the Temporal worker (referral workflows and their activities)."""
    from infra import telemetry, temporal
    from infra.health import Health, serve
    from workers.worker import build_worker

    telemetry.setup(settings, "worker")
    if not _schema_is_current(settings, "worker"):
        return 2
    health = Health("worker")
    serve(health, settings.health_host, settings.health_port)

    async def run() -> None:
        client = await temporal.connect(settings)
        watching = asyncio.create_task(_watch_temporal(client, health))
        try:
            await build_worker(client, settings).run()
        finally:
            watching.cancel()

    return _run_until_signal(run)


async def _watch_temporal(client: Any, health: Any, every: float = 5.0) -> None:
    """The worker's probes: live while its event loop comes round, ready while the
    Temporal frontend answers."""
    while True:
        health.beat()
        try:
            await asyncio.wait_for(client.service_client.check_health(), 3.0)
            health.ready(True, temporal="reachable")
        except Exception:
            health.ready(False, temporal="unreachable", reason="Temporal does not answer")
        await asyncio.sleep(every)


def relay(settings: Settings, args: argparse.Namespace) -> int:
    """Run an outbox relay (publishes committed events to Kafka; one of several replicas
    publishes at a time, the one holding the lease, and the others stand by)."""
    from infra import telemetry
    from infra.health import Health, serve
    from messaging.relay import OutboxRelay, UnsafeProducerSettings, make_producer

    telemetry.setup(settings, "relay")
    if not _schema_is_current(settings, "relay"):
        return 2
    try:
        producer = make_producer(settings)  # refuses settings that could lose events
    except UnsafeProducerSettings as exc:
        print(f"linkway relay: refusing to start: {exc}", file=sys.stderr)
        return 2
    engine = _engine(settings, "relay")
    health = Health("relay")
    serve(health, settings.health_host, settings.health_port)
    outbox_relay = OutboxRelay(engine, producer, settings, health=health)
    from ops.health import register_gauges

    # Every replica registers them; only the active one reports, so each reading once.
    register_gauges(engine, settings, active=lambda: outbox_relay.active)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: outbox_relay.stop())
    outbox_relay.run()  # closes its producer and releases the lease when it returns
    return 0


def api(settings: Settings, args: argparse.Namespace) -> int:
    """Run the HTTP API."""
    import uvicorn

    from api.app import create_app
    from infra import telemetry

    telemetry.setup(settings, "api")
    if not _schema_is_current(settings, "api"):
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        # On SIGTERM uvicorn stops accepting, then lets requests in flight finish.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    return 0


def consume(settings: Settings, args: argparse.Namespace) -> int:
    """Run a Kafka consumer: providers (inbound responses and attendance), payments,
    reporting (the KPIs' read models) or distal (the commissioner's distal-activity feed)."""
    from infra import telemetry
    from infra.health import Health, serve

    telemetry.setup(settings, f"consume-{args.name}")
    if not _schema_is_current(settings, f"consume {args.name}"):
        return 2
    health = Health(f"consume-{args.name}")
    if args.name == "providers":
        from workers import providers

        serve(health, settings.health_host, settings.health_port)
        return _run_until_signal(lambda: providers.run(settings, health))
    if args.name == "payments":
        from workers import payments

        serve(health, settings.health_host, settings.health_port)
        return _run_until_signal(lambda: payments.run(settings, health))
    if args.name == "reporting":
        from workers import reporting

        serve(health, settings.health_host, settings.health_port)
        return _run_until_signal(lambda: reporting.run(settings, health))
    if args.name == "distal":
        from ops import distal as distal_feed

        serve(health, settings.health_host, settings.health_port)
        return distal_feed.consume(settings, health)
    print(f"linkway: no consumer named {args.name!r} yet", file=sys.stderr)
    return 2


def topics(settings: Settings, args: argparse.Namespace) -> int:
    """Create Linkway's Kafka topics if they are missing."""
    from messaging import provisioning

    for name in provisioning.provision(settings, extra=[*args.extra, *_provider_topics(settings)]):
        print(f"created topic {name}")
    return 0


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Upgrade the database schema to head (or write a new migration with --new)."""
    from infra.db import get_engine
    from ops import schema

    if args.new:
        # The models are needed only here, to compare with the schema at head.
        from ops.tables import metadata

        for path in schema.new_revision(args.new, metadata()):
            print(f"wrote {path}: read it, say why in its docstring, and test it")
        return 0
    try:
        print(schema.migrate(get_engine(settings)))
    except schema.SchemaError as exc:
        print(f"linkway migrate: {exc}", file=sys.stderr)
        return 1
    return 0


def _provider_topics(settings: Settings) -> list[str]:
    """One handoff topic per provider organisation in the service directory."""
    from sqlmodel import Session

    from directory import provider_topics

    with Session(_engine(settings, "topics")) as session:
        return provider_topics(session)


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


def _no_args(parser: argparse.ArgumentParser) -> None:
    pass


def _migrate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--new",
        metavar="MESSAGE",
        help="write a migration for what the models add to the schema at head (autogenerate)",
    )


def _consume_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=["providers", "payments", "reporting", "distal"])


def _topics_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "extra", nargs="*", help="further topics, e.g. linkway.handoffs.<provider-id>"
    )


COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None]]] = {
    "dev": (dev, _no_args),
    "worker": (worker, _no_args),
    "relay": (relay, _no_args),
    "api": (api, _no_args),
    "consume": (consume, _consume_args),
    "topics": (topics, _topics_args),
    "migrate": (migrate, _migrate_args),
    "events": (events, _events_args),
    "token": (token, _token_args),
    "replay": (replay, _replay_args),
    "rebuild": (rebuild, _rebuild_args),
    "synthetic": (synthetic, _synthetic_args),
    "docs": (docs, _docs_args),
    "reconcile": (reconcile, _reconcile_args),
    "distal": (distal, distal_args),
    "status": (status, _status_args),
    "people": (people, _people_args),
    "imd": (imd, imd_args),
}

if __name__ == "__main__":
    sys.exit(main())
