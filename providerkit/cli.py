"""``linkway-provider``: receive your handoffs from Linkway and report back, over Kafka.
``receive`` prints new handoffs and every status change of yours (accepted, cancelled,
failed, completed with what was delivered); ``--json`` marks a change ``"update": true``.

  linkway-provider receive [--csv FILE] [--json] [--follow] [--group ID]
  linkway-provider accept HANDOFF_ID
  linkway-provider start HANDOFF_ID
  linkway-provider reject HANDOFF_ID --reason CODE
  linkway-provider waitlist HANDOFF_ID --band under_1_month|1_to_3_months|over_3_months
  linkway-provider complete HANDOFF_ID --delivered CODE [--sessions N]
  linkway-provider report HANDOFF_ID --date YYYY-MM-DD --status attended
  linkway-provider report --csv week.csv

Common options (or environment variables): --bootstrap (LINKWAY_PROVIDER_BOOTSTRAP),
--provider (LINKWAY_PROVIDER_ID), --state (default linkway-provider-<id>.json), and the
Kafka security options; the SASL password is read from LINKWAY_PROVIDER_SASL_PASSWORD.
Exit status: 0 done, 1 something was refused (each reason printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from providerkit import contract
from providerkit.position import Positions, StateError, StateFile

HANDOFF_COLUMNS = [
    "handoff_id",
    "referral_id",
    "episode",
    "service_id",
    "support_level",
    "respond_by",
    "requested_at",
]
SEND_TIMEOUT = 30.0


class Refused(Exception):
    """Something the user must fix; printed, exit status 1."""


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if not args.provider or not args.bootstrap:
        print("linkway-provider: give --provider and --bootstrap", file=sys.stderr)
        return 2
    try:
        state = StateFile(
            Path(args.state or f"linkway-provider-{args.provider}.json"), args.provider
        )
        return int(args.run(args, state, out))
    except (Refused, StateError, contract.ContractError) as exc:
        print(f"linkway-provider: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"linkway-provider: Kafka said {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # --follow ends with Ctrl-C; the position is already saved
        return 130


def receive(args: argparse.Namespace, state: StateFile, out: TextIO) -> int:
    """Print the handoffs made to you since the last run (and append them to --csv)."""
    topic = contract.handoffs_topic(args.provider)
    consumer = KafkaConsumer(**_client(args), group_id=args.group, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        if not partitions:
            raise Refused(f"no topic {topic} on {args.bootstrap}: ask Linkway's operators")
        consumer.assign(partitions)  # no group join: the tool keeps its own position
        positions = Positions(consumer, state, args.group)
        for tp, offset in positions.load(partitions).items():
            if offset is None or args.from_beginning:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        with _CsvOut(args.csv) as sheet:
            idle_until = time.monotonic() + args.idle
            while args.follow or time.monotonic() < idle_until:
                batch = consumer.poll(timeout_ms=500)
                if not batch:
                    continue
                read: dict[TopicPartition, int] = {}
                for tp, records in batch.items():
                    for record in records:
                        handoff = contract.read_handoff(record.value, args.provider)
                        if handoff is not None:
                            _show(handoff, out, args.json)
                            sheet.write(handoff)
                            state.remember(handoff.handoff_id, **_fields(handoff))
                        update = contract.read_update(record.value, args.provider)
                        if update is not None:
                            _show_update(update, out, args.json)
                        read[tp] = record.offset + 1
                out.flush()
                sheet.flush()
                positions.commit(read)  # only after what was read is printed and written
                idle_until = time.monotonic() + args.idle
    finally:
        consumer.close()
    return 0


def respond(args: argparse.Namespace, state: StateFile, out: TextIO) -> int:
    """Accept, start, reject (with a reason code), waitlist (with a band) or complete (with
    what was delivered) a handoff."""
    event = contract.response(
        args.provider,
        args.handoff_id,
        _referral(args, state, args.handoff_id),
        args.decision,
        reason_code=getattr(args, "reason", None),
        waitlist_band=getattr(args, "band", None),
        delivered_code=getattr(args, "delivered", None),
        sessions_delivered=getattr(args, "sessions", None),
    )
    _send(args, [event])
    print(f"sent {args.decision} for handoff {args.handoff_id} (event {event.event_id})", file=out)
    return 0


def report(args: argparse.Namespace, state: StateFile, out: TextIO) -> int:
    """Report attendance: one session from arguments, or a CSV of sessions."""
    if args.csv:
        events, refused = _report_rows(args, state, Path(args.csv))
    elif args.handoff_id and args.date and args.status:
        session_date = _date(args.date)
        referral = _referral(args, state, args.handoff_id)
        events = [
            contract.attendance(args.provider, args.handoff_id, referral, session_date, args.status)
        ]
        refused = []
    else:
        raise Refused("report needs HANDOFF_ID --date --status, or --csv FILE")
    _send(args, events)
    for reason in refused:
        print(reason, file=sys.stderr)
    print(f"sent {len(events)} attendance report(s); {len(refused)} row(s) refused", file=out)
    return 1 if refused else 0


def _report_rows(
    args: argparse.Namespace, state: StateFile, path: Path
) -> tuple[list[contract.Outgoing], list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    missing = {"handoff_id", "session_date", "status"} - set(reader.fieldnames or [])
    if missing:
        raise Refused(f"{path}: the header must name handoff_id, session_date and status")
    events, refused = [], []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        handoff_id = (row.get("handoff_id") or "").strip()
        try:
            referral = (row.get("referral_id") or "").strip() or _referral(args, state, handoff_id)
            session_date = _date((row.get("session_date") or "").strip())
            status = (row.get("status") or "").strip()
            events.append(
                contract.attendance(args.provider, handoff_id, referral, session_date, status)
            )
        except (Refused, contract.ContractError) as exc:
            refused.append(f"{path}: line {reader.line_num}: {exc}")
    return events, refused


def _send(args: argparse.Namespace, events: list[contract.Outgoing]) -> None:
    if not events:
        return
    producer = KafkaProducer(
        **_client(args), acks="all", enable_idempotence=True, linger_ms=5, max_block_ms=10_000
    )
    try:
        futures = [
            producer.send(e.topic, key=e.key, value=e.value, headers=[contract.CONTENT_TYPE_HEADER])
            for e in events
        ]
        producer.flush(timeout=SEND_TIMEOUT)
        for future in futures:
            future.get(timeout=SEND_TIMEOUT)  # raises if the broker did not acknowledge it
    finally:
        producer.close(timeout=5)


def _referral(args: argparse.Namespace, state: StateFile, handoff_id: str) -> str:
    found = getattr(args, "referral", None) or state.referral_of(handoff_id)
    if not found:
        raise Refused(
            f"handoff {handoff_id!r} has not been received here; run `receive` first, "
            "or give its referral id (--referral, or a referral_id column)"
        )
    return str(found)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Refused(f"{text!r} is not a date written YYYY-MM-DD") from None


def _fields(handoff: contract.Handoff) -> dict[str, Any]:
    return {name: getattr(handoff, name) for name in HANDOFF_COLUMNS if name != "handoff_id"}


def _show(handoff: contract.Handoff, out: TextIO, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"handoff_id": handoff.handoff_id, **_fields(handoff)}), file=out)
        return
    print(
        f"{handoff.requested_at}  handoff {handoff.handoff_id}  referral {handoff.referral_id}  "
        f"service {handoff.service_id}  support level {handoff.support_level}  "
        f"respond by {handoff.respond_by}",
        file=out,
    )


def _show_update(update: contract.HandoffUpdate, out: TextIO, as_json: bool) -> None:
    """A status change: printed, never written to the handoffs CSV (one row a request)."""
    if as_json:
        fields = {k: v for k, v in vars(update).items() if v is not None}
        print(json.dumps({"update": True, **fields}), file=out)
        return
    said = f"{update.occurred_at}  handoff {update.handoff_id}  is now {update.status}"
    if update.reason_code:
        said += f" (reason {update.reason_code})"
    if update.delivered_code:
        said += f", delivered {update.delivered_code}"
        if update.sessions_delivered is not None:
            said += f" in {update.sessions_delivered} session(s)"
    if update.status in ("cancelled", "failed"):
        said += ": stop work on it and send nothing more; the person's details are no longer yours"
    print(said, file=out)


class _CsvOut:
    """Appends handoffs to a CSV file (header written once), or does nothing."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.file: TextIO | None = None
        self.writer: Any = None

    def __enter__(self) -> _CsvOut:
        if self.path is not None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.file = self.path.open("a", newline="", encoding="utf-8")
            self.writer = csv.writer(self.file)
            if new:
                self.writer.writerow(HANDOFF_COLUMNS)
        return self

    def write(self, handoff: contract.Handoff) -> None:
        if self.writer is not None:
            self.writer.writerow([getattr(handoff, name) for name in HANDOFF_COLUMNS])

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _client(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": args.bootstrap.split(","),
        "client_id": f"linkway-provider-{args.provider}",
        "security_protocol": args.security_protocol,
    }
    if args.sasl_mechanism:
        config["sasl_mechanism"] = args.sasl_mechanism
        config["sasl_plain_username"] = args.sasl_username
        config["sasl_plain_password"] = os.environ.get("LINKWAY_PROVIDER_SASL_PASSWORD", "")
    if args.ssl_cafile:
        config["ssl_cafile"] = args.ssl_cafile
    return config


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="linkway-provider", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--bootstrap", default=env("LINKWAY_PROVIDER_BOOTSTRAP"), help="host:port")
    parser.add_argument("--provider", default=env("LINKWAY_PROVIDER_ID"), help="your provider id")
    parser.add_argument("--state", help="state file (default linkway-provider-<id>.json)")
    parser.add_argument(
        "--security-protocol",
        default=env("LINKWAY_PROVIDER_SECURITY_PROTOCOL", "PLAINTEXT"),
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
    )
    parser.add_argument("--sasl-mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    parser.add_argument("--sasl-username")
    parser.add_argument("--ssl-cafile", help="CA certificate (PEM) for the brokers")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("receive", help="print the handoffs made to you since the last run")
    p.add_argument("--csv", help="also append them to this CSV file")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--follow", action="store_true", help="keep waiting for new handoffs")
    p.add_argument("--group", help="keep the position in this consumer group, not the file")
    p.add_argument("--idle", type=float, default=2.0, help="seconds without news before exit")
    p.add_argument("--from-beginning", action="store_true", help="print every retained handoff")
    p.set_defaults(run=receive)

    for decision, helptext in (
        ("accept", "accept a handoff"),
        ("start", "say the service has started for the person"),
        ("reject", "reject a handoff, with a reason code"),
        ("waitlist", "put a handoff on your waiting list, with a band"),
        ("complete", "report a handoff completed, with what was delivered"),
    ):
        p = sub.add_parser(decision, help=helptext)
        p.add_argument("handoff_id")
        p.add_argument("--referral", help="the handoff's referral id, if not received here")
        if decision == "reject":
            p.add_argument("--reason", required=True, help="a code, e.g. full, not_eligible")
        if decision == "waitlist":
            p.add_argument("--band", required=True, choices=contract.WAITLIST_BANDS)
        if decision == "complete":
            p.add_argument("--delivered", required=True, help="a code, e.g. course_completed")
            p.add_argument("--sessions", type=int, help="how many sessions were held")
        p.set_defaults(run=respond, decision=decision)

    p = sub.add_parser("report", help="report attendance, one session or a CSV of sessions")
    p.add_argument("handoff_id", nargs="?")
    p.add_argument("--date", help="the session's date, YYYY-MM-DD")
    p.add_argument("--status", choices=contract.STATUSES)
    p.add_argument("--referral", help="the handoff's referral id, if not received here")
    p.add_argument("--csv", help="handoff_id,session_date,status[,referral_id] rows")
    p.set_defaults(run=report)
    return parser
