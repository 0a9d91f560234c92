"""Builders shared by the pathway rule tests: a fixed clock, counter ids, and a referral
driven through the pure rules to any stage. No servers, no Temporal."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from events.catalogue import EventData
from pathway import commands as cmd
from pathway import rules
from pathway.config import PathwayConfig, load
from pathway.rules import intake
from pathway.state import CaseState, Handoff

T0 = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)  # a Monday with no bank holiday near it
WEMWBS_LOW = {str(i): 2 for i in range(1, 15)}  # total 28
WEMWBS_SAME = {str(i): 2 for i in range(1, 15)} | {"1": 4}  # total 30: +2, not meaningful
WEMWBS_HIGH = {str(i): 3 for i in range(1, 15)}  # total 42: +14 on WEMWBS_LOW
ONS4_LOW = {"life_satisfaction": 4, "worthwhile": 4, "happiness": 4, "anxiety": 6}
ONS4_SAME = {"life_satisfaction": 3, "worthwhile": 4, "happiness": 2, "anxiety": 10}
ONS4_BETTER = {"life_satisfaction": 5, "worthwhile": 4, "happiness": 4, "anxiety": 6}
STAGES = (
    "triage",
    "contacting",
    "assessment",
    "planning",
    "supported",
    "review",
    "ongoing_support",
    "dormant",
)

E = TypeVar("E", bound=EventData)


def context(now: datetime, ids: Iterator[int]) -> rules.Context:
    """A fixed clock and counter ids ("id-1", "id-2", ...), so every run is the same."""
    return rules.Context(now=now, new_id=lambda: f"id-{next(ids)}")


def config(**overrides: Any) -> PathwayConfig:
    """The packaged default profile, with some settings changed."""
    return PathwayConfig.model_validate({**load("default").model_dump(), **overrides})


def measure(
    instrument: str, answers: Mapping[str, float], consent_ref: str = "consent-1"
) -> cmd.MeasureInput:
    return cmd.MeasureInput(instrument=instrument, answers=dict(answers), consent_ref=consent_ref)


def wemwbs(answers: Mapping[str, float] = WEMWBS_LOW) -> cmd.MeasureInput:
    return measure("WEMWBS", answers)


def prescription(provider_id: str = "prov-a", service_id: str = "walks") -> cmd.PrescriptionInput:
    return cmd.PrescriptionInput(provider_id=provider_id, service_id=service_id)


@dataclass
class Case:
    """One referral driven through the rules; every step keeps the new state and the
    events it raised, so a test asserts on ``case.state`` and the returned decision."""

    state: CaseState
    now: datetime = T0
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    events: list[tuple[str, EventData]] = field(default_factory=list)

    def ctx(self) -> rules.Context:
        return context(self.now, self.ids)

    def at(self, when: datetime) -> Case:
        self.now = when
        return self

    def later(self, **delta: float) -> Case:
        return self.at(self.now + timedelta(**delta))

    def command(self, cls: type[cmd.Command], **fields: Any) -> Any:
        fields.setdefault("request_id", f"req-{next(self.ids)}")
        return cls(actor_id="lw-1", **fields)

    def do(self, cls: type[cmd.Command], **fields: Any) -> rules.Decision:
        return self.take(rules.decide(self.state, self.command(cls, **fields), self.ctx()))

    def send(self, command: cmd.Command) -> rules.Decision:
        return self.take(rules.decide(self.state, command, self.ctx()))

    def fact(self, fact: cmd.PartnerFact) -> rules.Decision:
        return self.take(rules.apply_fact(self.state, fact, self.ctx()))

    def deadline(self, name: str) -> rules.Decision:
        return self.take(rules.deadline(self.state, name, self.ctx()))

    def take(self, decision: rules.Decision) -> rules.Decision:
        self.state = decision.state
        self.events.extend(decision.events)
        return decision

    @property
    def stage(self) -> str:
        return self.state.episode.stage

    def handoff(self, index: int = 0) -> Handoff:
        return list(self.state.episode.handoffs.values())[index]


def new_case(
    now: datetime = T0, consent: bool = True, cfg: PathwayConfig | None = None
) -> tuple[Case, rules.Decision]:
    ids = itertools.count(1)
    decision = intake.open_case(
        referral_id="ref-1",
        partner_id="north-wellbeing",
        locality="oswestry",
        source="gp",
        referrer_org_id="gp-1",
        reason_codes=["loneliness"],
        consent_to_share=consent,
        config=cfg or config(),
        ctx=context(now, ids),
    )
    return Case(decision.state, now, ids, list(decision.events)), decision


def at_stage(
    stage: str,
    now: datetime = T0,
    consent: bool = True,
    cfg: PathwayConfig | None = None,
    baseline: list[cmd.MeasureInput] | None = None,
    prescriptions: int = 1,
) -> Case:
    """A referral at ``stage`` the way the pathway gets there. From ``supported`` on it
    has a WEMWBS baseline (unless ``baseline`` says otherwise) and one handoff per
    prescription; ``review`` is reached by the review deadline passing; ``dormant`` by
    triage declining the referral."""
    case, _ = new_case(now, consent, cfg)
    if stage == "triage":
        return case
    if stage == "dormant":
        case.do(cmd.DeclineReferral, reason_code="out_of_area")
        return case
    case.do(cmd.AcceptReferral, link_worker_id="lw-1")
    if stage == "contacting":
        return case
    case.later(days=1).do(cmd.RecordContactAttempt, outcome="contacted")
    if stage == "assessment":
        return case
    measures = [wemwbs()] if baseline is None else baseline
    case.later(days=1).do(cmd.RecordAssessment, support_level="2", measures=measures)
    if stage == "planning":
        return case
    case.do(cmd.AgreePlan, goal_count=2, prescriptions=[prescription()] * prescriptions)
    if stage == "supported":
        return case
    case.at(case.state.episode.deadlines["review"]).deadline("review")
    if stage == "review":
        return case
    case.do(cmd.RecordReview, decision="ongoing_support")
    assert stage == "ongoing_support", f"no builder for stage {stage!r}"
    return case


def types(decision: rules.Decision) -> list[type]:
    return [type(data) for _, data in decision.events]


def only(decision: rules.Decision, cls: type[E]) -> E:
    """The one event of this class in the decision."""
    found = [data for _, data in decision.events if isinstance(data, cls)]
    assert len(found) == 1, f"expected one {cls.__name__}, got {types(decision)}"
    return found[0]


def responded(
    handoff: Handoff,
    decision: str,
    event_id: str,
    *,
    band: str | None = None,
    reason: str | None = None,
    provider_id: str | None = None,
) -> cmd.ProviderResponded:
    return cmd.ProviderResponded(
        event_id=event_id,
        handoff_id=handoff.handoff_id,
        provider_id=provider_id or handoff.provider_id,
        occurred_at=T0,
        decision=decision,
        reason_code=reason,
        waitlist_band=band,
    )


def session(
    handoff: Handoff, day: date, status: str = "attended", event_id: str | None = None
) -> cmd.AttendanceRecorded:
    return cmd.AttendanceRecorded(
        event_id=event_id or f"att-{handoff.handoff_id}-{day.isoformat()}",
        handoff_id=handoff.handoff_id,
        provider_id=handoff.provider_id,
        occurred_at=T0,
        session_date=day,
        status=status,
    )
