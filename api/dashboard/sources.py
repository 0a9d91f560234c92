"""Where every dashboard panel gets its numbers: the one module that decides.

With the reporting read models in the build (issue 14, items 1-3), each panel is its
reporting KPI (``api.dashboard.reports``: the table ``GET /reports/{kpi}`` serves, its
CSV the KPI's export). Without them (``load`` falls back), the panels read what the API
already keeps: the referral, episode, handoff and measurement read models
(``activities.readmodel``) and the payment engine's statements, with the interim
definitions in docs/reporting.md ("Dashboard panels before the reporting read models").
Once reporting is merged, the fallback loaders here can go.

Every loader is scoped like every other read (``api.scope.scoped``: a Tier One partner
sees its own localities; the payment statements its own partner's). A panel whose source
this server does not have answers ``available: false`` with the reason, and the page
says so in its place. A panel's definition is the heading of docs/reporting.md named as
its reporting KPI (``### funnel``), whichever source draws it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from activities.readmodel import EpisodeRow, HandoffRow, MeasurementRow, ReferralRow
from api.auth import Caller
from api.dashboard import reports
from api.dashboard.panels import Panel, PanelName, Series, Unit, suppress
from api.deps import Deps
from api.scope import scoped

DEFINITIONS = "/dashboard/definitions"
FUNNEL_STEPS = (
    "received",
    "contacted",
    "assessed",
    "plan agreed",
    "handoff accepted",
    "attended",
    "reviewed",
    "followed up",
)
# Stages that mean the step was reached in the current episode (a dormant episode is
# judged by its measures and handoffs instead).
_CONTACTED = {"assessment", "planning", "supported", "review", "ongoing_support"}
_ASSESSED = {"planning", "supported", "review", "ongoing_support"}
_PLANNED = {"supported", "review", "ongoing_support"}
_ACCEPTED = {"accepted", "in-progress", "on-hold", "completed"}
# WEMWBS change bands (points, review minus baseline); a change of 3 or more is the
# meaningful improvement docs/reporting.md cites.
_BANDS = (
    ("-9 or less", -99, -9),
    ("-8 to -3", -8, -3),
    ("-2 to +2", -2, 2),
    ("+3 to +8", 3, 8),
    ("+9 or more", 9, 99),
)


@dataclass(frozen=True)
class Episodes:
    """The caller's visible episodes and what the read models say each reached."""

    rows: list[EpisodeRow]
    phases: dict[tuple[str, int], set[str]]  # (referral, episode) -> measurement phases
    wemwbs: dict[tuple[str, int, str], float]  # (referral, episode, phase) -> total
    handoffs: dict[tuple[str, int], set[str]]  # (referral, episode) -> handoff statuses


def _episodes(session: Session, caller: Caller) -> Episodes:
    visible = scoped(select(ReferralRow.referral_id), caller)
    rows = list(session.exec(select(EpisodeRow).where(col(EpisodeRow.referral_id).in_(visible))))
    phases: dict[tuple[str, int], set[str]] = {}
    wemwbs: dict[tuple[str, int, str], float] = {}
    measured = select(MeasurementRow).where(col(MeasurementRow.referral_id).in_(visible))
    for m in session.exec(measured):
        phases.setdefault((m.referral_id, m.episode), set()).add(m.phase)
        if m.instrument == "WEMWBS":
            total = json.loads(m.raw).get("total")
            if isinstance(total, int | float):
                wemwbs[(m.referral_id, m.episode, m.phase)] = float(total)
    handoffs: dict[tuple[str, int], set[str]] = {}
    for h in session.exec(select(HandoffRow).where(col(HandoffRow.referral_id).in_(visible))):
        handoffs.setdefault((h.referral_id, h.episode), set()).add(h.status)
    return Episodes(rows, phases, wemwbs, handoffs)


def _reached(ep: EpisodeRow, found: Episodes) -> list[bool]:
    """Which of ``FUNNEL_STEPS`` the episode reached; a later step implies the earlier
    ones (a plan implies an assessment), since a dormant episode keeps no earlier stage."""
    key = (ep.referral_id, ep.number)
    phases, handoffs = found.phases.get(key, set()), found.handoffs.get(key, set())
    reviewed, followed = "review" in phases, "followup" in phases
    accepted = bool(handoffs & _ACCEPTED) or ep.attended_sessions > 0
    planned = ep.stage in _PLANNED or bool(handoffs) or reviewed
    assessed = ep.stage in _ASSESSED or "baseline" in phases or planned
    contacted = ep.stage in _CONTACTED or assessed
    attended = ep.attended_sessions > 0
    return [True, contacted, assessed, planned, accepted, attended, reviewed, followed]


def funnel(deps: Deps, caller: Caller) -> Panel:
    with Session(deps.engine) as session:
        found = _episodes(session, caller)
    counts = [0] * len(FUNNEL_STEPS)
    for ep in found.rows:
        for i, hit in enumerate(_reached(ep, found)):
            counts[i] += hit
    return panel_of(
        "funnel",
        labels=list(FUNNEL_STEPS),
        series=[Series(name="episodes", values=[float(c) for c in counts])],
    )


def trajectory(deps: Deps, caller: Caller) -> Panel:
    with Session(deps.engine) as session:
        found = _episodes(session, caller)
    months = Counter(ep.opened_at.strftime("%Y-%m") for ep in found.rows)
    labels = sorted(months)
    return panel_of(
        "trajectory",
        labels=labels,
        series=[Series(name="received", values=[float(months[m]) for m in labels])],
        notes=["The pathway profile sets no monthly trajectory yet: actual referrals only."],
    )


def time_to_contact(deps: Deps, caller: Caller) -> Panel:
    return panel_of(
        "time_to_contact",
        available=False,
        reason=(
            "needs the reporting read models: the referral read model keeps the first-"
            "contact deadline, not when contact was made"
        ),
    )


def wemwbs_change(deps: Deps, caller: Caller) -> Panel:
    with Session(deps.engine) as session:
        found = _episodes(session, caller)
    changes = [
        found.wemwbs[(r, e, "review")] - baseline
        for (r, e, phase), baseline in found.wemwbs.items()
        if phase == "baseline" and (r, e, "review") in found.wemwbs
    ]
    counts = [sum(1 for c in changes if low <= c <= high) for _, low, high in _BANDS]
    values, hidden = suppress(counts)
    return panel_of(
        "wemwbs_change",
        labels=[label for label, _, _ in _BANDS],
        series=[Series(name="people", values=values)],
        suppressed=hidden,
        notes=[f"{len(changes)} episodes with a baseline and a review WEMWBS."],
    )


def payments(deps: Deps, caller: Caller) -> Panel:
    partner = None if caller.role == "contract_manager" else caller.partner_id
    statements = deps.payments.statements(partner_id=partner)
    several = len({s.partner_id for s in statements}) > 1
    labels = [f"{s.period} {s.partner_id}" if several else s.period for s in statements]

    def pounds(values: list[int | None]) -> list[float | None]:
        return [None if v is None else v / 100 for v in values]

    shares = [s.total.claimed_pence / s.cap_pence for s in statements if s.cap_pence]
    notes = [f"The fullest month claimed {max(shares):.1%} of its cap."] if shares else []

    return panel_of(
        "payments",
        labels=labels,
        series=[
            Series(name="claimed", values=pounds([s.total.claimed_pence for s in statements])),
            Series(name="approved", values=pounds([s.total.approved_pence for s in statements])),
            Series(name="paid", values=pounds([s.total.paid_pence for s in statements])),
            Series(name="cap", kind="limit", values=pounds([s.cap_pence for s in statements])),
        ],
        notes=notes,
    )


@dataclass(frozen=True)
class Source:
    loader: Callable[[Deps, Caller], Panel]
    title: str
    unit: Unit
    csv: str | None = None  # its export; None: the dashboard's own /dashboard/panels/<name>.csv
    source: str = "Linkway read models (interim, until the reporting read models)"


SOURCES: dict[PanelName, Source] = {
    "funnel": Source(funnel, "Stage funnel", "episodes"),
    "trajectory": Source(
        trajectory,
        "Referrals received by month, against trajectory",
        "episodes",
    ),
    "time_to_contact": Source(
        time_to_contact,
        "Days to first contact and to assessment",
        "episodes",
    ),
    "wemwbs_change": Source(
        wemwbs_change,
        "WEMWBS change from baseline to review",
        "people",
    ),
    "payments": Source(
        payments,
        "Outcome payments against the monthly cap",
        "pounds",
        csv="/payments/statements.csv",
        source="the payment engine's statements (GET /payments/statements)",
    ),
}


def definition_url(name: PanelName) -> str:
    """Its definition: the heading of docs/reporting.md named as its reporting KPI."""
    return f"{DEFINITIONS}#{reports.KPIS[name][0]}"


def panel_of(name: PanelName, **fields: object) -> Panel:
    source = SOURCES[name]
    available = fields.get("available", True)
    return Panel.model_validate(
        {
            "panel": name,
            "title": source.title,
            "unit": source.unit,
            "definition": definition_url(name),
            "csv": (source.csv or f"/dashboard/panels/{name}.csv") if available else None,
            "source": source.source,
            **fields,
        }
    )


def load(name: PanelName, deps: Deps, caller: Caller) -> Panel:
    """The panel from its reporting KPI when the build has them, else from the fallback."""
    return reports.panel(name, deps, caller, panel_of) or SOURCES[name].loader(deps, caller)
