"""Exports: a KPI table as CSV or JSON, and the pseudonymised episode-level evaluation
dataset as CSV or Parquet (its data dictionary is docs/reporting.md#evaluation-dataset).

Both are deterministic: the same read models give the same bytes (rows sorted, keys in
a fixed order, no time of export inside), which is how a rebuild is checked.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reporting.kpis import Context, Filters, Table, View, improved_by_episode
from reporting.project import utc


def table_json(table: Table, filters: Filters, suppressed: bool) -> bytes:
    return json.dumps(table.as_json(filters, suppressed), sort_keys=False, default=str).encode()


def table_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in table.columns])
    return out.getvalue().encode()


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | integer | number | date | boolean
    meaning: str


# The data dictionary: the columns, in order, with their meaning (docs/reporting.md prints
# the same list; a test holds the two equal).
EVALUATION_COLUMNS: tuple[Column, ...] = (
    Column(
        "episode_key",
        "string",
        "Pseudonymous episode id: a keyed hash of referral id and episode, the same in "
        "every export of one deployment, not reversible without the key",
    ),
    Column("episode", "integer", "The episode's number for this person (2 and above: a re-entry)"),
    Column("partner_id", "string", "The Tier One partner managing the episode"),
    Column("locality", "string", "The locality code"),
    Column("source", "string", "Kind of referrer (gp, social_care, self, ...)"),
    Column("referrer_org_id", "string", "The referring organisation (practice) code"),
    Column("support_level", "string", "Support level set at assessment"),
    Column("received_month", "string", "Month the episode's referral was received (YYYY-MM)"),
    Column("days_to_first_contact", "number", "Days from referral to first successful contact"),
    Column("days_to_assessment", "number", "Days from referral to assessment"),
    Column("declined_reason", "string", "Triage decline reason code, if declined"),
    Column("plan_agreed", "boolean", "A personal plan was agreed"),
    Column("reviewed", "boolean", "The 3-month review was recorded"),
    Column("followed_up", "boolean", "The sustained-outcome follow-up was recorded"),
    Column("dormant_reason", "string", "Why the episode went dormant, if it did"),
    Column("handoffs_requested", "integer", "Handoffs to Tier Two services"),
    Column("handoffs_accepted", "integer", "Handoffs accepted (or attended) by the provider"),
    Column(
        "sessions_attended", "integer", "Tier Two sessions attended (latest report per session)"
    ),
    Column("sessions_dna", "integer", "Tier Two sessions not attended"),
    Column("wemwbs_baseline", "number", "WEMWBS total at baseline"),
    Column("wemwbs_review", "number", "WEMWBS total at review"),
    Column("wemwbs_followup", "number", "WEMWBS total at follow-up"),
    Column("wemwbs_change", "number", "WEMWBS review minus baseline"),
    Column("instruments_measured", "string", "Instruments with a baseline, ';'-separated"),
    Column(
        "instruments_improved",
        "string",
        "Instruments meaningfully improved at review, ';'-separated",
    ),
    Column("outcomes", "string", "Outcome facts stated for the episode, ';'-separated"),
)


KEY_FILE = "evaluation-pseudonym.key"


def evaluation_key(configured: str, data_dir: Path) -> bytes:
    """The key of the dataset's pseudonyms: the configured one, or in the embedded
    default one generated once under ``data_dir``."""
    if configured:
        return configured.encode()
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)  # never readable by others, not even briefly
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()


def evaluation_rows(v: View, key: bytes) -> list[dict[str, Any]]:
    """One row per episode in the view: pseudonymous, no personal data, no dates finer
    than a month (the day of a referral with a practice code could single someone out)."""
    handoffs: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for h in v.handoffs:
        handoffs[h.referral_id, h.episode].append(h)
    sessions: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for s in v.sessions:
        sessions[s.referral_id, s.episode].append(s)
    measures: dict[tuple[str, int], dict[tuple[str, str], Any]] = defaultdict(dict)
    for m in v.measures:
        measures[m.referral_id, m.episode][m.instrument, m.timepoint] = m
    outcomes: dict[tuple[str, int], list[str]] = defaultdict(list)
    for o in v.data.outcomes:
        outcomes[o.referral_id, o.episode].append(o.outcome)
    improved = improved_by_episode(v)
    rows = []
    for e in v.episodes:
        k = (e.referral_id, e.episode)
        digest = hmac.new(key, f"{e.referral_id}|{e.episode}".encode(), hashlib.sha256)
        wem = {
            tp: _total(measures[k].get(("WEMWBS", tp))) for tp in ("baseline", "review", "followup")
        }
        rows.append(
            {
                "episode_key": digest.hexdigest()[:24],
                "episode": e.episode,
                "partner_id": e.partner_id,
                "locality": e.locality,
                "source": e.source,
                "referrer_org_id": e.referrer_org_id,
                "support_level": e.support_level,
                "received_month": e.month,
                "days_to_first_contact": _days(e.received_at, e.first_contact_at),
                "days_to_assessment": _days(e.received_at, e.assessed_at),
                "declined_reason": e.decline_reason,
                "plan_agreed": e.plan_at is not None,
                "reviewed": e.reviewed_at is not None,
                "followed_up": e.followup_at is not None,
                "dormant_reason": e.dormant_reason,
                "handoffs_requested": len(handoffs[k]),
                "handoffs_accepted": sum(1 for h in handoffs[k] if h.accepted or h.started),
                "sessions_attended": sum(1 for s in sessions[k] if s.status == "attended"),
                "sessions_dna": sum(1 for s in sessions[k] if s.status == "did_not_attend"),
                "wemwbs_baseline": wem["baseline"],
                "wemwbs_review": wem["review"],
                "wemwbs_followup": wem["followup"],
                "wemwbs_change": None
                if wem["baseline"] is None or wem["review"] is None
                else wem["review"] - wem["baseline"],
                "instruments_measured": ";".join(
                    sorted(i for (i, tp) in measures[k] if tp == "baseline")
                ),
                "instruments_improved": ";".join(sorted(improved.get(k, ()))),
                "outcomes": ";".join(sorted(outcomes[k])),
            }
        )
    rows.sort(key=lambda r: (r["episode_key"], r["episode"]))
    return rows


def _total(m: Any) -> float | None:
    if m is None:
        return None
    value = json.loads(m.raw).get("total")
    return float(value) if isinstance(value, int | float) else None


def _days(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((utc(end) - utc(start)).total_seconds() / 86400, 1)


def evaluation_csv(rows: list[dict[str, Any]]) -> bytes:
    names = [c.name for c in EVALUATION_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if row[n] is None else _cell(row[n]) for n in names])
    return out.getvalue().encode()


def evaluation_parquet(rows: list[dict[str, Any]]) -> bytes:
    """The same rows as Parquet, with the dictionary's types (pyarrow writes it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "string": pa.string(),
        "integer": pa.int64(),
        "number": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
    }
    schema = pa.schema(
        [
            pa.field(c.name, types[c.kind], metadata={"meaning": c.meaning})
            for c in EVALUATION_COLUMNS
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


__all__ = [
    "EVALUATION_COLUMNS",
    "Context",
    "evaluation_csv",
    "evaluation_parquet",
    "evaluation_rows",
    "table_csv",
    "table_json",
]
