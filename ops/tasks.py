"""The operator's one-shot ``linkway`` tasks: reading topics, demo tokens, replay and
rebuilds, the published contract, reconciliation and status. ``ops.cli`` runs them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from infra.settings import Settings
from ops.database import engine_at_head as _engine
from ops.database import schema_is_current as _schema_is_current


def events(settings: Settings, args: argparse.Namespace) -> int:
    """Print a topic's events from the beginning, one JSON object per line."""
    from messaging.reader import read

    try:
        for key, value, _ in read(settings.kafka_bootstrap, args.topic, follow=args.follow):
            try:
                body = json.loads(value)
            except ValueError:
                body = {"undecodable": True, "bytes": len(value)}
            if args.full:
                print(json.dumps(body))
            else:
                subject = key.decode() if key else ""
                print(f"{body.get('time', '')}  {subject}  {body.get('type', body)}")
    except LookupError as exc:
        print(f"linkway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def token(settings: Settings, args: argparse.Namespace) -> int:
    """Print a demo bearer token (embedded default only): linkway token tier_one:north-wellbeing
    (a Tier One manager) or link_worker:north-wellbeing --subject lw-1 (a link worker)."""
    from api.auth import LINK_WORKER, mint_token
    from api.tenancy import load

    role, _, partner_id = args.identity.partition(":")
    # tier_one:<partner> is the partner's manager (the team's view), as its demo token;
    # link_worker:<partner> a plain link worker of it (their own view).
    worker = role == LINK_WORKER
    partner = load(settings.tenancy_file).partner(partner_id)
    if partner is None or partner.role != ("tier_one" if worker else role):
        print(f"linkway: the tenancy has no {args.identity!r}", file=sys.stderr)
        return 2
    subject = args.subject or f"demo-{role}.{partner.id}"
    manager = partner.role == "tier_one" and not worker
    try:
        print(mint_token(settings, partner.id, partner.role, subject, args.ttl, manager=manager))
    except RuntimeError as exc:
        print(f"linkway: {exc}", file=sys.stderr)
        return 2
    return 0


def replay(settings: Settings, args: argparse.Namespace) -> int:
    """Publish outbox history again (same event ids): a referral, a time window, a topic."""
    from infra.db import get_engine
    from messaging.relay import make_producer
    from messaging.replay import ReplayFailed, republish

    producer = make_producer(settings)
    try:
        count = republish(
            get_engine(settings),
            producer,
            referral_id=args.referral,
            since=args.since,
            until=args.until,
            topic=args.topic,
        )
    except ValueError as exc:
        print(f"linkway: {exc}", file=sys.stderr)
        return 2
    except ReplayFailed as exc:
        print(f"linkway: {exc}", file=sys.stderr)
        return 1
    finally:
        producer.close(timeout=10)
    print(f"replayed {count} events")
    return 0


def rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild a read model: referrals (timeline, from its topic), reporting (the KPIs'
    read models, from their topics), measures (from the outbox)."""
    from infra.db import get_engine
    from messaging.replay import rebuild_referrals

    if args.model == "measures":
        from activities.readmodel import rebuild_measurements

        print(f"added {rebuild_measurements(_engine(settings, 'rebuild'))} measurements")
        return 0
    if args.model == "reporting":
        from reporting.lease import RebuildRefused
        from reporting.rebuild import rebuild as rebuild_reporting

        engine = _engine(settings, "rebuild")
        try:
            applied = rebuild_reporting(settings.kafka_bootstrap, engine, fresh=args.fresh)
        except RebuildRefused as exc:
            print(f"linkway: {exc}", file=sys.stderr)
            return 1
        print(f"applied {applied} records")
        return 0

    try:
        count = rebuild_referrals(settings.kafka_bootstrap, get_engine(settings), fresh=args.fresh)
    except LookupError as exc:
        print(f"linkway: {exc}", file=sys.stderr)
        return 1
    print(f"applied {count} events")
    return 0


def synthetic(settings: Settings, args: argparse.Namespace) -> int:
    """Fill the reporting read models with a synthetic year of referrals (driven through
    the pathway's real rules; for the benchmark and for trying the KPIs, never production)."""
    from pathway.config import load
    from reporting import synthetic as made
    from reporting.rebuild import ensure_tables

    engine = _engine(settings, "synthetic")
    ensure_tables(engine)
    folded = made.fill(engine, args.referrals, load(settings.pathway_profile), seed=args.seed)
    print(f"folded {folded} events of {args.referrals} referrals")
    return 0


def docs(settings: Settings, args: argparse.Namespace) -> int:
    """Regenerate the published contract under docs/ (or, with --check, report drift)."""
    from api.dashboard import definitions
    from api.openapi import check_openapi, write_openapi
    from messaging.asyncapi import check_docs, write_docs

    root = Path(args.root)
    if args.check:
        drift = check_docs(root) + check_openapi(root) + definitions.check(root)
        for stale in drift:
            print(f"out of date: {stale}")
        if drift:
            print("run `make docs` and commit the result", file=sys.stderr)
        return 1 if drift else 0
    for written in [*write_docs(root), *write_openapi(root), *definitions.write(root)]:
        print(f"wrote {written}")
    return 0


def status(settings: Settings, args: argparse.Namespace) -> int:
    """Is anything stuck, and where? Database, relay, Temporal, workers, consumer lag."""
    from ops import health
    from workflows import TASK_QUEUE

    if not _schema_is_current(settings, "status"):
        return 2
    engine = _engine(settings, "status")
    checks = asyncio.run(health.status(settings, engine, TASK_QUEUE))
    if args.json:
        print(json.dumps([c.__dict__ for c in checks]))
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:28} {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


def reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Reconcile the payment ledger with the outcome events; exit 1 if they differ."""
    from infra.settings import PaymentSettings
    from payments import report
    from payments.engine import PaymentEngine

    if not _schema_is_current(settings, "reconcile"):
        return 2
    engine = _engine(settings, "reconcile")
    payments = PaymentEngine.from_settings(engine, PaymentSettings(), settings.data_dir)

    def progress(done: int, total: int) -> None:
        # On stderr, rewritten in place, so the report on stdout stays clean to redirect.
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        print(f"\r[{bar:<30}] {done}/{total} events", end="", file=sys.stderr, flush=True)

    result = payments.reconcile(progress=None if args.quiet else progress)
    if not args.quiet:
        print(file=sys.stderr)
    text = report.to_csv(result) if args.format == "csv" else report.to_json(result)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(report.summary(result), file=sys.stderr)
    return 0 if result.ok else 1


def people(settings: Settings, args: argparse.Namespace) -> int:
    """``linkway people check [--fix]``: NHS numbers stored before only ASCII digits were
    accepted, and people with two cases; exit 1 while anything needs an operator."""
    from api.personal_data import PersonalDataStore, load_keys

    if not _schema_is_current(settings, "people"):
        return 2
    store = PersonalDataStore(_engine(settings, "people"), load_keys(settings))
    findings = store.check_nhs_numbers(fix=args.fix)
    for f in findings:  # pseudonymous ids only: never a number
        what = {
            "normalised": "NHS number in other digits or with separators",
            "duplicate": f"the same person as referral {f.other}: merge or close one case",
            "invalid": "not a valid NHS number: ask the link worker to correct it",
        }[f.kind]
        done = " (fixed)" if f.fixed and f.kind == "normalised" else ""
        print(f"{f.kind:10}  {f.referral_id}  partner {f.partner_id}: {what}{done}")
    print(f"{len(findings)} finding(s)" + ("" if args.fix else "; --fix to normalise"))
    outstanding = [f for f in findings if f.kind != "normalised" or not f.fixed]
    return 1 if outstanding else 0


def _people_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"])
    parser.add_argument(
        "--fix", action="store_true", help="normalise and re-index what can be, in place"
    )


def _events_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", help="e.g. linkway.referrals")
    parser.add_argument("--follow", action="store_true", help="keep waiting for new events")
    parser.add_argument("--full", action="store_true", help="print whole events as JSON")


def _replay_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--referral", metavar="ID", help="only this referral's events")
    parser.add_argument("--since", type=_instant, metavar="ISO", help="recorded at or after")
    parser.add_argument("--until", type=_instant, metavar="ISO", help="recorded before")
    parser.add_argument("--topic", metavar="T", help="only events on this topic")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _token_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "identity",
        help="<role>:<partner id>, e.g. tier_one:north-wellbeing (a Tier One manager: the "
        "team's capacity and time) or link_worker:north-wellbeing (a link worker: their own)",
    )
    parser.add_argument("--subject", help="the token's pseudonymous subject")
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")


def _rebuild_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=["referrals", "reporting", "measures"])
    parser.add_argument("--fresh", action="store_true", help="empty the table first")


def _synthetic_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--referrals", type=int, default=100_000, help="how many (a year's)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed, the same year")


def _status_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON list of checks")


def _docs_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="fail if docs/ is out of date")
    parser.add_argument("--root", default=".", help="the repository root")


def _reconcile_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["json", "csv"], default="json")
    parser.add_argument("--output", metavar="FILE", help="write the report here, not stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
