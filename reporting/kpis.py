"""The KPIs: each a function of the reporting read models and a filter, returning one
table. Every definition here is written out in docs/reporting.md (the anchor each table
names), so two people computing a KPI get the same number.

``Data`` is the read models loaded once for a request (``load``); ``Filters`` narrows
them the same way for every KPI. A KPI table's rows are plain dicts of codes and numbers,
sorted, so exports are byte-for-byte the same for the same events.

Extension point: a KPI is one ``Kpi`` entry in ``KPIS``. The link-worker activity log and
the distal outcomes (other issues) add their tables to ``reporting.tables``, load them in
``load`` and register their KPIs here; the API, the exports and the docs' list follow.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from pathway.config import PathwayConfig
from pathway.measures import MeasureError, Registry, Scores
from payments.ratebook import RateCardBook
from reporting import stats
from reporting.project import TIME_ZONE, utc
from reporting.suppression import TOTAL, suppress
from reporting.tables import (
    ReportAction,
    ReportClaim,
    ReportDeadLetter,
    ReportEpisode,
    ReportHandoff,
    ReportMeasure,
    ReportOutcome,
    ReportReferral,
    ReportSession,
)

DOC = "docs/reporting.md"
FUNNEL = (
    "received",
    "contacted",
    "assessed",
    "plan_agreed",
    "handoff_accepted",
    "attended",
    "reviewed",
    "followed_up",
)
DAY_BUCKETS = (0, 1, 2, 3, 5, 7, 10, 14, 21, 28, 42, 56)
# A claim in these states is money the contract owes or has paid.
PAYABLE = frozenset({"claimed", "validated", "approved", "paid", "disputed"})


@dataclass(frozen=True)
class Filters:
    """What a KPI is narrowed to; None is "all". Dates are local calendar dates
    (Europe/London), ``start`` and ``end`` both inclusive."""

    contract: str | None = None
    partner: str | None = None
    locality: str | None = None
    source: str | None = None
    practice: str | None = None
    support_level: str | None = None
    start: date | None = None
    end: date | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "contract": self.contract,
            "partner": self.partner,
            "locality": self.locality,
            "source": self.source,
            "practice": self.practice,
            "support_level": self.support_level,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


@dataclass
class Data:
    """The read models, as loaded for one request (or one test)."""

    referrals: list[Any] = field(default_factory=list)
    episodes: list[Any] = field(default_factory=list)
    handoffs: list[Any] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)
    measures: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)
    claims: list[Any] = field(default_factory=list)
    dead_letters: list[Any] = field(default_factory=list)


SOURCES: dict[str, Any] = {
    "referrals": ReportReferral,
    "episodes": ReportEpisode,
    "handoffs": ReportHandoff,
    "sessions": ReportSession,
    "measures": ReportMeasure,
    "actions": ReportAction,
    "outcomes": ReportOutcome,
    "claims": ReportClaim,
    "dead_letters": ReportDeadLetter,
}
EVERYTHING = tuple(SOURCES)


def load(session: Session, needs: Iterable[str] = EVERYTHING) -> Data:
    """The read models a KPI needs, as plain rows (attribute access like the models, a
    fraction of the cost of building model instances)."""
    connection = session.connection()
    data = Data()
    for name in needs:
        table = SOURCES[name].__table__
        setattr(data, name, list(connection.execute(table.select())))
    return data


@dataclass(frozen=True)
class Context:
    """What the KPIs are measured against: the pathway profile (trajectory, deadlines,
    known sources), the rate cards (contracts, caps) and the instruments."""

    profile: PathwayConfig
    book: RateCardBook
    registry: Registry


@dataclass
class Table:
    kpi: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    counts: tuple[str, ...] = ()  # columns counting people (suppressed when small)
    derived: dict[str, str] = field(default_factory=dict)  # column -> the count it is from
    group_by: tuple[str, ...] = ()

    def suppressed(self) -> Table:
        rows = suppress(self.rows, self.counts, self.derived, self.group_by)
        return Table(self.kpi, self.title, self.columns, rows, (), {}, self.group_by)

    def as_json(self, filters: Filters, suppressed: bool) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "title": self.title,
            "definition": f"{DOC}#{self.kpi}",
            "filters": filters.as_dict(),
            "suppressed": suppressed,
            "columns": self.columns,
            "rows": self.rows,
        }


class View:
    """The read models narrowed by a filter, shared by every KPI of one request."""

    def __init__(self, data: Data, filters: Filters, ctx: Context) -> None:
        self.data, self.filters, self.ctx = data, filters, ctx
        f = filters
        partners: set[str] | None = None
        if f.contract is not None:
            known = f.contract in ctx.book.contracts()
            cards = ctx.book.versions(f.contract) if known else []  # unknown: pays no one
            partners = {p for card in cards for p in card.partners}

        def person_ok(partner: str, locality: str, source: str | None, org: str | None) -> bool:
            return (
                (f.partner is None or partner == f.partner)
                and (partners is None or partner in partners)
                and (f.locality is None or locality == f.locality)
                and (f.source is None or source == f.source)
                and (f.practice is None or org == f.practice)
            )

        self.episodes = [
            e
            for e in data.episodes
            if e.received_at is not None
            and person_ok(e.partner_id, e.locality, e.source, e.referrer_org_id)
            and (f.support_level is None or e.support_level == f.support_level)
            and self.in_period(e.received_at)
        ]
        self.keys = {(e.referral_id, e.episode) for e in self.episodes}
        # Dimension filters other than the period: facts dated later (a claim, an outcome)
        # belong to an episode of any start date.
        self.any_period = {
            (e.referral_id, e.episode)
            for e in data.episodes
            if person_ok(e.partner_id, e.locality, e.source, e.referrer_org_id)
            and (f.support_level is None or e.support_level == f.support_level)
        }
        self.referrals = [
            r
            for r in data.referrals
            if person_ok(r.partner_id, r.locality, r.source, r.referrer_org_id)
            and self.in_period(r.received_at)
            and (f.support_level is None or (r.referral_id, r.episode) in self.any_period)
        ]
        self.handoffs = [h for h in data.handoffs if (h.referral_id, h.episode) in self.keys]
        handoff_ids = {h.handoff_id for h in self.handoffs}
        self.sessions = [s for s in data.sessions if s.handoff_id in handoff_ids]
        self.measures = [m for m in data.measures if (m.referral_id, m.episode) in self.keys]

    def in_period(self, at: datetime) -> bool:
        day = utc(at).astimezone(TIME_ZONE).date()
        f = self.filters
        return (f.start is None or day >= f.start) and (f.end is None or day <= f.end)

    def month_in_period(self, month: str) -> bool:
        f = self.filters
        return (f.start is None or month >= f.start.strftime("%Y-%m")) and (
            f.end is None or month <= f.end.strftime("%Y-%m")
        )

    def dated(self, rows: Iterable[Any], at: Callable[[Any], datetime]) -> list[Any]:
        """Facts of episodes matching the filter (any start date), dated within the period."""
        return [
            r
            for r in rows
            if (r.referral_id, r.episode) in self.any_period and self.in_period(at(r))
        ]


# --- referrals ------------------------------------------------------------------------------


def referrals_trajectory(v: View) -> Table:
    received = Counter(r.month for r in v.referrals)
    expected = {m: n for m, n in v.ctx.profile.referral_trajectory.items() if v.month_in_period(m)}
    rows = []
    for month in sorted(set(received) | set(expected)):
        got, want = received.get(month, 0), expected.get(month)
        rows.append(
            {
                "month": month,
                "expected": want,
                "received": got,
                "difference": None if want is None else got - want,
                "pct_of_expected": stats.pct(got, want) if want else None,
            }
        )
    return Table(
        "referrals_trajectory",
        "Referrals received each month against the trajectory",
        ["month", "expected", "received", "difference", "pct_of_expected"],
        rows,
        counts=("received",),
        derived={"difference": "received", "pct_of_expected": "received"},
    )


def referrals_by_source(v: View) -> Table:
    counts = Counter((r.source, r.kind) for r in v.referrals)
    rows = []
    for source in sorted({s for s, _ in counts}):
        by_kind = {k: counts.get((source, k), 0) for k in ("received", "reentered", "joined")}
        rows.append(
            {
                "source": source,
                "known_source": source in v.ctx.profile.referral_sources,
                "new": by_kind["received"],
                "reentered": by_kind["reentered"],
                "joined": by_kind["joined"],
                "referrals": sum(by_kind.values()),
            }
        )
    return Table(
        "referrals_by_source",
        "Referrals by source",
        ["source", "known_source", "new", "reentered", "joined", "referrals"],
        rows,
        counts=("new", "reentered", "joined", "referrals"),
    )


def referrals_by_practice(v: View) -> Table:
    counts = Counter((r.referrer_org_id, r.source) for r in v.referrals)
    rows = [
        {"referrer_org_id": org, "source": source, "referrals": n}
        for (org, source), n in sorted(counts.items())
    ]
    return Table(
        "referrals_by_practice",
        "Referrals by referring organisation (practice)",
        ["referrer_org_id", "source", "referrals"],
        rows,
        counts=("referrals",),
    )


def triage(v: View) -> Table:
    counts: Counter[tuple[str, str]] = Counter()
    for e in v.episodes:
        if e.declined_at is not None:
            counts["declined", e.decline_reason or "unspecified"] += 1
        elif e.accepted_at is not None:
            counts["accepted", ""] += 1
        else:
            counts["awaiting_triage", ""] += 1
    total = len(v.episodes)
    rows = [
        {"decision": d, "reason": reason or None, "episodes": n, "pct": stats.pct(n, total)}
        for (d, reason), n in sorted(counts.items())
    ]
    rows.append(
        {"decision": TOTAL, "reason": None, "episodes": total, "pct": stats.pct(total, total)}
    )
    return Table(
        "triage",
        "Episodes accepted and declined at triage, with the reasons",
        ["decision", "reason", "episodes", "pct"],
        rows,
        counts=("episodes",),
        derived={"pct": "episodes"},
    )


# --- funnel and timeliness ---------------------------------------------------------------


def _reached(v: View) -> dict[str, set[tuple[str, int]]]:
    accepted = {(h.referral_id, h.episode) for h in v.handoffs if h.accepted or h.started}
    attended = {(s.referral_id, s.episode) for s in v.sessions if s.status == "attended"}
    reached: dict[str, set[tuple[str, int]]] = {stage: set() for stage in FUNNEL}
    for e in v.episodes:
        key = (e.referral_id, e.episode)
        steps = {
            "received": True,
            "contacted": e.first_contact_at is not None,
            "assessed": e.assessed_at is not None,
            "plan_agreed": e.plan_at is not None,
            "handoff_accepted": key in accepted,
            "attended": key in attended,
            "reviewed": e.reviewed_at is not None,
            "followed_up": e.followup_at is not None,
        }
        for stage, done in steps.items():
            if done:
                reached[stage].add(key)
    return reached


def funnel(v: View) -> Table:
    reached = _reached(v)
    rows, previous = [], None
    total = len(reached["received"])
    for order, stage in enumerate(FUNNEL, start=1):
        n = len(reached[stage])
        rows.append(
            {
                "order": order,
                "stage": stage,
                "episodes": n,
                "pct_of_previous": None if previous is None else stats.pct(n, previous),
                "pct_of_received": stats.pct(n, total),
            }
        )
        previous = n
    return Table(
        "funnel",
        "The stage funnel: episodes reaching each step, and conversion",
        ["order", "stage", "episodes", "pct_of_previous", "pct_of_received"],
        rows,
        counts=("episodes",),
        derived={"pct_of_previous": "episodes", "pct_of_received": "episodes"},
    )


def _days(start: datetime, end: datetime) -> float:
    return (utc(end) - utc(start)) / timedelta(days=1)


def _waits(v: View) -> dict[str, list[tuple[float, bool | None]]]:
    waits: dict[str, list[tuple[float, bool | None]]] = {"first_contact": [], "assessment": []}
    for e in v.episodes:
        if e.received_at is None:
            continue
        if e.first_contact_at is not None:
            met = (
                None
                if e.first_contact_due is None
                else utc(e.first_contact_at) <= utc(e.first_contact_due)
            )
            waits["first_contact"].append((_days(e.received_at, e.first_contact_at), met))
        if e.assessed_at is not None:
            waits["assessment"].append((_days(e.received_at, e.assessed_at), None))
    return waits


def time_to_contact(v: View) -> Table:
    rows = []
    deadline = {"first_contact": v.ctx.profile.first_contact_due, "assessment": None}
    for measure, waits in _waits(v).items():
        days = [d for d, _ in waits]
        judged = [m for _, m in waits if m is not None]
        within = sum(judged)
        rows.append(
            {
                "measure": measure,
                "episodes": len(days),
                "median_days": stats.r(stats.percentile(days, 50)),
                "p90_days": stats.r(stats.percentile(days, 90)),
                "deadline": deadline[measure],
                "within_deadline": within if deadline[measure] else None,
                "pct_within_deadline": stats.pct(within, len(judged))
                if deadline[measure]
                else None,
            }
        )
    return Table(
        "time_to_contact",
        "Time from referral to first contact and to assessment",
        [
            "measure",
            "episodes",
            "median_days",
            "p90_days",
            "deadline",
            "within_deadline",
            "pct_within_deadline",
        ],
        rows,
        counts=("episodes", "within_deadline"),
        derived={
            "median_days": "episodes",
            "p90_days": "episodes",
            "pct_within_deadline": "within_deadline",
        },
        group_by=("measure",),
    )


def _bucket(days: float) -> str:
    lower = max(b for b in DAY_BUCKETS if b <= days) if days >= 0 else 0
    later = [b for b in DAY_BUCKETS if b > lower]
    return f"{lower}-{later[0]}" if later else f"{lower}+"


def time_to_contact_distribution(v: View) -> Table:
    rows = []
    for measure, waits in _waits(v).items():
        counts = Counter(_bucket(d) for d, _ in waits)
        for lower in DAY_BUCKETS:
            label = _bucket(lower)
            rows.append(
                {
                    "measure": measure,
                    "days": label,
                    "from_day": lower,
                    "episodes": counts.get(label, 0),
                }
            )
    return Table(
        "time_to_contact_distribution",
        "How many days people waited for first contact and for assessment",
        ["measure", "days", "from_day", "episodes"],
        rows,
        counts=("episodes",),
        group_by=("measure",),
    )


def overdue_actions(v: View) -> Table:
    actions = v.dated(v.data.actions, lambda a: a.due_at)
    counts = Counter(a.action for a in actions)
    people = defaultdict(set)
    for a in actions:
        people[a.action].add((a.referral_id, a.episode))
    rows = [
        {"action": action, "actions_due": counts[action], "episodes": len(people[action])}
        for action in sorted(counts)
    ]
    return Table(
        "overdue_actions",
        "Actions that fell due (a deadline passed before the work was done)",
        ["action", "actions_due", "episodes"],
        rows,
        counts=("actions_due", "episodes"),
    )


# --- handoffs --------------------------------------------------------------------------------


def handoffs(v: View) -> Table:
    by: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for h in v.handoffs:
        c = by[h.provider_id, h.service_id or "unknown"]
        c["requested"] += 1
        c["accepted"] += h.accepted or h.started
        c["rejected"] += h.rejected_reason is not None and not h.started
        c["waitlisted"] += h.waitlist_band is not None
        c["attended"] += h.started
        c["failed"] += h.failed_reason is not None
        c["late_response"] += h.response_overdue
    service_of = {h.handoff_id: (h.provider_id, h.service_id or "unknown") for h in v.handoffs}
    for s in v.sessions:
        c = by[service_of[s.handoff_id]]
        c["sessions_attended"] += s.status == "attended"
        c["sessions_dna"] += s.status == "did_not_attend"
    rows = []
    for (provider, service), c in sorted(by.items()):
        booked = c["sessions_attended"] + c["sessions_dna"]
        rows.append(
            {
                "provider_id": provider,
                "service_id": service,
                **{
                    k: c[k]
                    for k in (
                        "requested",
                        "accepted",
                        "rejected",
                        "waitlisted",
                        "attended",
                        "failed",
                        "late_response",
                        "sessions_attended",
                        "sessions_dna",
                    )
                },
                "dna_rate_pct": stats.pct(c["sessions_dna"], booked),
            }
        )
    counted = (
        "requested",
        "accepted",
        "rejected",
        "waitlisted",
        "attended",
        "failed",
        "late_response",
        "sessions_attended",
        "sessions_dna",
    )
    return Table(
        "handoffs",
        "Handoffs by provider and service",
        ["provider_id", "service_id", *counted, "dna_rate_pct"],
        rows,
        counts=counted,
        derived={"dna_rate_pct": "sessions_dna"},
    )


def handoff_reasons(v: View) -> Table:
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for h in v.handoffs:
        service = h.service_id or "unknown"
        if h.rejected_reason is not None and not h.started:
            counts[h.provider_id, service, "rejected", h.rejected_reason] += 1
        if h.waitlist_band is not None:
            counts[h.provider_id, service, "waitlisted", h.waitlist_band] += 1
        if h.failed_reason is not None:
            counts[h.provider_id, service, "failed", h.failed_reason] += 1
    rows = [
        {
            "provider_id": p,
            "service_id": s,
            "answer": a,
            "reason": reason,
            "handoffs": n,
            "no_capacity": reason in ("no_capacity", "full", "over_3_months"),
        }
        for (p, s, a, reason), n in sorted(counts.items())
    ]
    return Table(
        "handoff_reasons",
        "Handoffs rejected, waitlisted (by band) or failed, by reason; services with no capacity",
        ["provider_id", "service_id", "answer", "reason", "handoffs", "no_capacity"],
        rows,
        counts=("handoffs",),
        group_by=("provider_id", "service_id"),
    )


# --- measures ---------------------------------------------------------------------------------


def _scores(m: ReportMeasure) -> Scores:
    return Scores(m.instrument, m.version, json.loads(m.raw), json.loads(m.derived))


def _headline(registry: Registry, m: ReportMeasure) -> float | None:
    """The one number an instrument's change is measured on, if it has one (a summed
    scale: its total, or its converted metric score where change is on that)."""
    try:
        inst = registry.get(m.instrument)
    except MeasureError:
        return None
    if inst.scoring != "sum":
        return None
    raw, derived = json.loads(m.raw), json.loads(m.derived)
    value = raw.get("total") if inst.change_on == "total" else derived.get(inst.change_on)
    return float(value) if isinstance(value, int | float) else None


def _pairs(v: View) -> list[tuple[tuple[str, int], str, float | None, bool]]:
    """Each episode's instruments measured at baseline and review, comparable (same
    instrument version): (episode, instrument, change in the headline score, improved by
    the instrument's own meaningful-change rule)."""
    at: dict[tuple[str, int, str], dict[str, ReportMeasure]] = defaultdict(dict)
    for m in v.measures:
        at[m.referral_id, m.episode, m.instrument][m.timepoint] = m
    out = []
    for (referral_id, episode, instrument), points in sorted(at.items()):
        base, review = points.get("baseline"), points.get("review")
        if base is None or review is None:
            continue
        try:
            change = v.ctx.registry.compare(_scores(base), _scores(review))
        except MeasureError:
            continue  # different versions, or not a known instrument: not comparable
        before, after = _headline(v.ctx.registry, base), _headline(v.ctx.registry, review)
        delta = None if before is None or after is None else after - before
        out.append(((referral_id, episode), instrument, delta, change.improved))
    return out


def _changes(v: View) -> dict[str, list[tuple[float | None, bool]]]:
    """Per instrument, each episode's (change, improved) from baseline to review."""
    out: dict[str, list[tuple[float | None, bool]]] = defaultdict(list)
    for _, instrument, delta, improved in _pairs(v):
        out[instrument].append((delta, improved))
    return out


def improved_by_episode(v: View) -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[str]] = defaultdict(list)
    for key, instrument, _, improved in _pairs(v):
        if improved:
            out[key].append(instrument)
    return out


def measures(v: View) -> Table:
    have: dict[str, Counter[str]] = defaultdict(Counter)
    for m in v.measures:
        have[m.instrument][m.timepoint] += 1
    changes = _changes(v)
    rows = []
    for instrument in sorted(have):
        c, pairs = have[instrument], changes.get(instrument, [])
        deltas = [d for d, _ in pairs if d is not None]
        mean, low, high = stats.mean_ci(deltas)
        improved = sum(1 for _, i in pairs if i)
        p_low, p_high = stats.wilson(improved, len(pairs))
        rows.append(
            {
                "instrument": instrument,
                "baseline": c["baseline"],
                "review": c["review"],
                "followup": c["followup"],
                "pct_reviewed": stats.pct(c["review"], c["baseline"]),
                "pct_followed_up": stats.pct(c["followup"], c["baseline"]),
                "paired": len(pairs),
                "mean_change": stats.r(mean, 2),
                "mean_change_ci_low": stats.r(low, 2),
                "mean_change_ci_high": stats.r(high, 2),
                "improved": improved,
                "pct_improved": stats.pct(improved, len(pairs)),
                "pct_improved_ci_low": None if p_low is None else round(100 * p_low, 1),
                "pct_improved_ci_high": None if p_high is None else round(100 * p_high, 1),
            }
        )
    return Table(
        "measures",
        "Wellbeing measures: completeness, mean change and people meaningfully improved",
        [
            "instrument",
            "baseline",
            "review",
            "followup",
            "pct_reviewed",
            "pct_followed_up",
            "paired",
            "mean_change",
            "mean_change_ci_low",
            "mean_change_ci_high",
            "improved",
            "pct_improved",
            "pct_improved_ci_low",
            "pct_improved_ci_high",
        ],
        rows,
        counts=("baseline", "review", "followup", "paired", "improved"),
        derived={
            "pct_reviewed": "review",
            "pct_followed_up": "followup",
            "mean_change": "paired",
            "mean_change_ci_low": "paired",
            "mean_change_ci_high": "paired",
            "pct_improved": "improved",
            "pct_improved_ci_low": "improved",
            "pct_improved_ci_high": "improved",
        },
        group_by=("instrument",),
    )


def measure_change_distribution(v: View) -> Table:
    rows: list[dict[str, Any]] = []
    for instrument, pairs in sorted(_changes(v).items()):
        counts = Counter(d for d, _ in pairs if d is not None)
        rows.extend(
            {"instrument": instrument, "change": change, "episodes": n}
            for change, n in sorted(counts.items())
        )
    return Table(
        "measure_change_distribution",
        "Distribution of change from baseline to review, per instrument with one score",
        ["instrument", "change", "episodes"],
        rows,
        counts=("episodes",),
        group_by=("instrument",),
    )


# --- outcomes and payments --------------------------------------------------------------------


def outcomes(v: View) -> Table:
    facts = [o for o in v.dated(v.data.outcomes, lambda o: o.occurred_at)]
    counts = Counter((o.month, o.outcome) for o in facts)
    rows = [{"month": m, "outcome": o, "episodes": n} for (m, o), n in sorted(counts.items())]
    return Table(
        "outcomes",
        "Outcomes achieved, by month and outcome",
        ["month", "outcome", "episodes"],
        rows,
        counts=("episodes",),
    )


def payments(v: View) -> Table:
    claims = [
        c
        for c in v.data.claims
        if (c.referral_id, c.episode) in v.any_period
        and (v.filters.contract is None or c.contract_id == v.filters.contract)
        and v.month_in_period(c.month)
    ]
    by: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for c in claims:
        n = by[c.contract_id, c.month, c.metric]
        n["claims"] += 1
        if c.status in PAYABLE:
            n["payable"] += 1
            n["amount_pence"] += c.amount_pence
        n["capped"] += c.status == "capped"
        n["reversed"] += c.status == "reversed"
        n["paid_pence"] += c.amount_pence if c.status == "paid" else 0
    rows = []
    running: Counter[str] = Counter()
    for contract_id, month, metric in sorted(by):
        n = by[contract_id, month, metric]
        running[contract_id] += n["amount_pence"]
        card = _card(v.ctx.book, contract_id, month)
        metric_cap = card.metrics[metric].max_pence if card and metric in card.metrics else None
        rows.append(
            {
                "contract_id": contract_id,
                "month": month,
                "metric": metric,
                "claims": n["claims"],
                "payable": n["payable"],
                "capped": n["capped"],
                "reversed": n["reversed"],
                "amount_pence": n["amount_pence"],
                "paid_pence": n["paid_pence"],
                "contract_to_date_pence": running[contract_id],
                "metric_max_pence": metric_cap,
                "partner_month_cap_pence": card.caps.per_partner_per_month_pence if card else None,
                "contract_max_pence": card.caps.total_contract_pence if card else None,
            }
        )
    return Table(
        "payments",
        "Outcome payments by contract, month and metric, against the caps",
        [
            "contract_id",
            "month",
            "metric",
            "claims",
            "payable",
            "capped",
            "reversed",
            "amount_pence",
            "paid_pence",
            "contract_to_date_pence",
            "metric_max_pence",
            "partner_month_cap_pence",
            "contract_max_pence",
        ],
        rows,
        counts=("claims", "payable", "capped", "reversed"),
        group_by=("contract_id", "month"),
    )


def _card(book: RateCardBook, contract_id: str, month: str) -> Any:
    try:
        moment = datetime.fromisoformat(f"{month}-15T12:00:00+00:00")
        return book.in_force(contract_id, moment)
    except (LookupError, ValueError):
        return None


# --- data quality ----------------------------------------------------------------------------


def data_quality(v: View) -> Table:
    counts: Counter[tuple[str, str]] = Counter()
    for e in v.episodes:
        if e.assessed_at is not None and e.baseline_count == 0:
            counts["missing_baseline", e.partner_id] += 1
        if e.reviewed_at is not None and e.review_measure_count == 0:
            counts["review_without_measures", e.partner_id] += 1
        if e.followup_at is not None and e.followup_measure_count == 0:
            counts["followup_without_measures", e.partner_id] += 1
    known = set(v.ctx.profile.referral_sources)
    for r in v.referrals:
        if r.source not in known:
            counts["unknown_source", r.partner_id] += 1
    for h in v.handoffs:
        if h.response_overdue:
            counts["provider_response_late", h.provider_id] += 1
            if h.status == "requested":
                counts["provider_response_missing", h.provider_id] += 1
    for s in v.sessions:
        if s.reports > 1:
            counts["attendance_corrected", s.provider_id] += 1
    rows = [
        {"check": check, "partner_id": partner, "records": n}
        for (check, partner), n in sorted(counts.items())
    ]
    return Table(
        "data_quality",
        "Data quality: what is missing, late or wrong, and whose it is",
        ["check", "partner_id", "records"],
        rows,
        counts=("records",),
        group_by=("check",),
    )


def dead_letters(v: View) -> Table:
    f = v.filters
    letters = [
        d
        for d in v.data.dead_letters
        if v.month_in_period(d.month) and (f.partner is None or d.partner_id == f.partner)
    ]
    counts = Counter((d.partner_id, d.topic, d.reason) for d in letters)
    rows = [
        {"partner_id": p, "topic": t, "reason": reason, "messages": n}
        for (p, t, reason), n in sorted(counts.items())
    ]
    # Messages, not people: not suppressed.
    return Table(
        "dead_letters",
        "Partner events refused (dead-lettered), by partner and reason",
        ["partner_id", "topic", "reason", "messages"],
        rows,
    )


@dataclass(frozen=True)
class Kpi:
    name: str
    compute: Callable[[View], Table]
    needs: tuple[str, ...]  # the read models it reads (``SOURCES``); episodes always


E = ("episodes",)


KPIS: dict[str, Kpi] = {
    k.name: k
    for k in (
        Kpi("referrals_trajectory", referrals_trajectory, (*E, "referrals")),
        Kpi("referrals_by_source", referrals_by_source, (*E, "referrals")),
        Kpi("referrals_by_practice", referrals_by_practice, (*E, "referrals")),
        Kpi("triage", triage, E),
        Kpi("funnel", funnel, (*E, "handoffs", "sessions")),
        Kpi("time_to_contact", time_to_contact, E),
        Kpi("time_to_contact_distribution", time_to_contact_distribution, E),
        Kpi("overdue_actions", overdue_actions, (*E, "actions")),
        Kpi("handoffs", handoffs, (*E, "handoffs", "sessions")),
        Kpi("handoff_reasons", handoff_reasons, (*E, "handoffs")),
        Kpi("measures", measures, (*E, "measures")),
        Kpi("measure_change_distribution", measure_change_distribution, (*E, "measures")),
        Kpi("outcomes", outcomes, (*E, "outcomes")),
        Kpi("payments", payments, (*E, "claims")),
        Kpi("data_quality", data_quality, (*E, "referrals", "handoffs", "sessions")),
        Kpi("dead_letters", dead_letters, ("dead_letters",)),
    )
}


def compute(name: str, data: Data, filters: Filters, ctx: Context) -> Table:
    return KPIS[name].compute(View(data, filters, ctx))


def answer(session: Session, name: str, filters: Filters, ctx: Context) -> Table:
    """One KPI from the database, loading only the read models it reads."""
    return compute(name, load(session, KPIS[name].needs), filters, ctx)
