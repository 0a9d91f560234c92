"""``linkway distal``: the commissioner's distal-activity feed, by file and by topic.

linkway distal import FILE [--source NAME] [--report OUT]   a CSV file, row by row
linkway distal close                                         state every outcome now due
linkway consume distal                                       the linkway.distal.activity topic

The feed is matched through the personal-data store (its keys, as the API's), so these
run where the API runs; docs/distal-feed.md is the guide for the feed's sender.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from inbound.distal import DistalFeed, report_csv, summary
from inbound.distal_outcomes import DistalOutcomes
from infra.health import Health
from infra.settings import Settings
from ops.database import engine_at_head, schema_is_current


def feed_for(settings: Settings, engine: Engine, source: str) -> DistalFeed:
    from api.personal_data import Access, PersonalDataStore, load_keys
    from pathway.config import load

    people = PersonalDataStore(engine, load_keys(settings))
    access = Access(f"distal-feed:{source}"[:64], "commissioner", "distal_outcome_feed")
    months = load(settings.pathway_profile).distal_window_months
    outcomes = DistalOutcomes(engine, months, settings.event_source)
    return DistalFeed(engine, lambda nhs: people.match_nhs_number(nhs, access), outcomes, source)


def distal(settings: Settings, args: argparse.Namespace) -> int:
    """Import a distal-activity CSV file, or state the distal outcomes now due."""
    if not schema_is_current(settings, f"distal {args.action}"):
        return 2
    engine = engine_at_head(settings, f"distal {args.action}")
    feed = feed_for(settings, engine, args.source)
    if args.action == "close":
        stated = feed.outcomes.state_all(args.today)
        print(f"linkway: {stated} distal outcomes stated", file=sys.stderr)
        return 0
    if not args.file:
        print("linkway: distal import needs a FILE", file=sys.stderr)
        return 2
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"linkway: cannot read {args.file}: {exc.__class__.__name__}", file=sys.stderr)
        return 2
    results = feed.import_csv(text, args.today)
    report = report_csv(results)
    if args.report:
        Path(args.report).write_text(report, encoding="utf-8")
    else:
        sys.stdout.write(report)
    print(f"linkway: {summary(results)}", file=sys.stderr)
    return 1 if any(r.status == "malformed" for r in results) else 0


def consume(settings: Settings, health: Health) -> int:
    """``linkway consume distal``: the topic, until stopped."""
    from inbound import distal_consumer
    from messaging.consumer import watch

    engine = engine_at_head(settings, "consume distal")
    broker, _ = distal_consumer.build(settings, feed_for(settings, engine, "kafka"))

    async def run() -> None:
        await broker.start()
        watching = asyncio.create_task(watch(broker, health))
        try:
            await asyncio.Event().wait()
        finally:
            watching.cancel()
            await broker.stop()

    from ops.cli import _run_until_signal

    return _run_until_signal(run)


def distal_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["import", "close"])
    parser.add_argument("file", nargs="?", help="the CSV file (import)")
    parser.add_argument("--source", default="csv", help="the feed's name, kept with each row")
    parser.add_argument("--report", metavar="OUT", help="write the row report here")
    parser.add_argument(
        "--today", type=date.fromisoformat, help="state outcomes as on this date (default today)"
    )
