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
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from infra.keyfile import generated_once
from reporting.kpis import (
    DAY,
    EP,
    HO,
    MEA,
    OUT,
    SES,
    Context,
    Filters,
    Table,
    View,
    count_if,
    improved_by_episode,
)


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
    Column(
        "evaluation_consent",
        "boolean",
        "The person consented to evaluation (true); empty: never asked, and the measure "
        "columns are blank. Episodes whose person refused are not in the dataset",
    ),
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
    return generated_once(Path(data_dir) / KEY_FILE, lambda: secrets.token_hex(32).encode()).strip()


def evaluation_rows(v: View, key: bytes) -> list[dict[str, Any]]:
    """One row per episode in the view: pseudonymous, no personal data, no dates finer
    than a month (the day of a referral with a practice code could single someone out).

    Consent to evaluation decides what an episode gives (docs/reporting.md, "Consent to
    evaluation"): refused, the episode is left out; never asked (not assessed yet, or
    assessed before the question was asked separately), its measures are left blank."""
    e = EP
    consent = e.c.evaluation_consent
    episodes = v.rows(
        sa.select(
            e.c.referral_id,
            e.c.episode,
            e.c.partner_id,
            e.c.locality,
            e.c.source,
            e.c.referrer_org_id,
            e.c.support_level,
            e.c.month,
            v.seconds(e.c.received_at, e.c.first_contact_at),
            v.seconds(e.c.received_at, e.c.assessed_at),
            e.c.decline_reason,
            e.c.plan_at.is_not(None),
            e.c.reviewed_at.is_not(None),
            e.c.followup_at.is_not(None),
            e.c.dormant_reason,
            consent,
        ).where(*v.episode_where(), sa.or_(consent.is_(None), consent))
    )
    handoffs = {
        (r, ep): (n, accepted)
        for r, ep, n, accepted in v.rows(
            sa.select(
                HO.c.referral_id,
                HO.c.episode,
                sa.func.count(),
                count_if(sa.or_(HO.c.accepted, HO.c.started)),
            )
            .where(v.of_episode(HO))
            .group_by(HO.c.referral_id, HO.c.episode)
        )
    }
    h = HO.alias()
    sessions = {
        (r, ep): (attended, dna)
        for r, ep, attended, dna in v.rows(
            sa.select(
                SES.c.referral_id,
                SES.c.episode,
                count_if(SES.c.status == "attended"),
                count_if(SES.c.status == "did_not_attend"),
            )
            .select_from(SES.join(h, h.c.handoff_id == SES.c.handoff_id))
            .where(*v.session_where(h))
            .group_by(SES.c.referral_id, SES.c.episode)
        )
    }
    measures: dict[tuple[str, int], dict[tuple[str, str], str | None]] = defaultdict(dict)
    wemwbs_raw = sa.case((MEA.c.instrument == "WEMWBS", MEA.c.raw), else_=sa.null())
    for r, ep, instrument, timepoint, raw in v.rows(
        sa.select(
            MEA.c.referral_id, MEA.c.episode, MEA.c.instrument, MEA.c.timepoint, wemwbs_raw
        ).where(v.of_episode(MEA))
    ):
        measures[r, ep][instrument, timepoint] = raw
    outcomes: dict[tuple[str, int], list[str]] = defaultdict(list)
    for r, ep, name in v.rows(
        sa.select(OUT.c.referral_id, OUT.c.episode, OUT.c.outcome).where(v.of_episode(OUT))
    ):
        outcomes[r, ep].append(name)
    improved = improved_by_episode(v)
    rows = []
    for (
        referral_id,
        episode,
        partner,
        locality,
        source,
        practice,
        level,
        month,
        to_contact,
        to_assessment,
        declined,
        planned,
        reviewed,
        followed,
        dormant,
        consented,
    ) in episodes:
        k = (referral_id, episode)
        digest = hmac.new(key, f"{referral_id}|{episode}".encode(), hashlib.sha256)
        measured = measures[k] if consented else {}
        wem = {
            tp: _total(measured.get(("WEMWBS", tp))) for tp in ("baseline", "review", "followup")
        }
        n_handoffs, n_accepted = handoffs.get(k, (0, 0))
        attended, dna = sessions.get(k, (0, 0))
        rows.append(
            {
                "episode_key": digest.hexdigest()[:24],
                "episode": episode,
                "partner_id": partner,
                "locality": locality,
                "source": source,
                "referrer_org_id": practice,
                "support_level": level,
                "received_month": month,
                "evaluation_consent": None if consented is None else bool(consented),
                "days_to_first_contact": _days(to_contact),
                "days_to_assessment": _days(to_assessment),
                "declined_reason": declined,
                "plan_agreed": bool(planned),
                "reviewed": bool(reviewed),
                "followed_up": bool(followed),
                "dormant_reason": dormant,
                "handoffs_requested": n_handoffs,
                "handoffs_accepted": n_accepted,
                "sessions_attended": attended,
                "sessions_dna": dna,
                "wemwbs_baseline": wem["baseline"],
                "wemwbs_review": wem["review"],
                "wemwbs_followup": wem["followup"],
                "wemwbs_change": None
                if wem["baseline"] is None or wem["review"] is None
                else wem["review"] - wem["baseline"],
                "instruments_measured": ";".join(
                    sorted(i for (i, tp) in measured if tp == "baseline")
                ),
                "instruments_improved": ";".join(sorted(improved.get(k, ()) if consented else ())),
                "outcomes": ";".join(sorted(outcomes[k])),
            }
        )
    rows.sort(key=lambda r: (r["episode_key"], r["episode"]))
    return rows


def _total(raw: str | None) -> float | None:
    if raw is None:
        return None
    value = json.loads(raw).get("total")
    return float(value) if isinstance(value, int | float) else None


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / DAY, 1)


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
