"""A synthetic year of referrals for the reporting benchmark and for trying the KPIs
(``linkway synthetic --referrals 100000``).

Each referral is driven through the pathway's real rules (``pathway.rules``: the same
pure functions the workflow runs, without Temporal), with seeded random choices for what
people and partners do: triage declines some, contact fails for some, assessments with
and without a baseline, plans with one or two Tier Two handoffs that providers accept,
reject, waitlist or never answer, sessions attended or missed (some reports corrected),
reviews with and without measures, and some people declined and re-referred; the link
worker's time log (some entries corrected or deleted), and for about half the engaged
episodes the distal changes the commissioner's feed would let Linkway state. The events
the rules raise are folded into the reporting read models by the consumer's own code
(``reporting.project``), never written as rows. Pseudonymous ids only: nothing here is
anybody.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from events import outcome
from events import referral as referral_events
from events.catalogue import EventData, topic_for
from events.envelope import CloudEvent, new_event
from pathway import commands as cmd
from pathway import distal, rules
from pathway.config import PathwayConfig
from pathway.rules import intake
from pathway.state import CaseState
from reporting import project
from reporting.rows import LOADED
from reporting.tables import TABLES

Record = tuple[str, bytes, dict[str, bytes]]
SOURCE = "urn:linkway:synthetic"
START = datetime(2026, 4, 1, 9, tzinfo=UTC)
PARTNERS = {"north-wellbeing": ("oswestry", "shrewsbury"), "south-wellbeing": ("ludlow",)}
SERVICES = (("walking-group", "health-walks"), ("befriending", "weekly-calls"))
SOURCES = ("gp", "gp", "gp", "gp", "social_care", "hospital", "self", "community", "unknown")


class Referral:
    """One person's case, stepped through the rules at advancing times."""

    def __init__(self, referral_id: str, state: CaseState, now: datetime, out: list[Any]):
        self.id, self.state, self.now, self.out = referral_id, state, now, out
        self.ids = itertools.count(1)

    def ctx(self) -> rules.Context:
        return rules.Context(now=self.now, new_id=lambda: f"{self.id}-{next(self.ids)}")

    def take(self, decision: rules.Decision) -> None:
        self.state = decision.state
        self.out.extend(decision.events)

    def do(self, command: type[cmd.Command], **fields: Any) -> None:
        made = command(request_id=f"{self.id}-r{next(self.ids)}", actor_id="lw-synthetic", **fields)
        self.take(rules.decide(self.state, made, self.ctx()))

    def fact(self, fact: cmd.PartnerFact) -> None:
        self.take(rules.apply_fact(self.state, fact, self.ctx()))

    def deadline(self, name: str) -> None:
        due = self.state.episode.deadlines.get(name)
        if due is not None:
            self.now = max(self.now, due)
            self.take(rules.deadline(self.state, name, self.ctx()))

    def later(self, rng: random.Random, low: float, high: float) -> None:
        self.now += timedelta(days=rng.uniform(low, high))


def wemwbs(rng: random.Random, centre: int) -> cmd.MeasureInput:
    total = max(14, min(70, centre))
    answers, left = {}, total
    for i in range(14):
        item = max(1, min(5, left - (13 - i), rng.randint(1, 5)))
        if i == 13:
            item = max(1, min(5, left))
        answers[str(i + 1)] = item
        left -= item
    return cmd.MeasureInput(instrument="WEMWBS", answers=answers, consent_ref="synthetic")


def referral(n: int, rng: random.Random, config: PathwayConfig, out: list[Any]) -> None:
    """One referral's whole year through the rules; its events appended to ``out``."""
    partner = rng.choice(sorted(PARTNERS))
    received = START + timedelta(days=rng.uniform(0, 365), hours=rng.uniform(0, 8))
    source = rng.choice(SOURCES)
    rid = f"syn-{n:07d}"
    ids = itertools.count(1)
    decision = intake.open_case(
        referral_id=rid,
        partner_id=partner,
        locality=rng.choice(PARTNERS[partner]),
        source=source,
        referrer_org_id=f"practice-{rng.randint(1, 60):02d}" if source == "gp" else source,
        reason_codes=["loneliness"],
        consent_to_share=True,
        config=config,
        ctx=rules.Context(now=received, new_id=lambda: f"{rid}-o{next(ids)}"),
    )
    case = Referral(rid, decision.state, received, out)
    out.extend(decision.events)
    case.later(rng, 0.1, 2)
    if rng.random() < 0.08:
        case.do(cmd.DeclineReferral, reason_code=rng.choice(("out_of_area", "not_eligible")))
        if rng.random() < 0.25:  # re-referred later, by someone else
            case.later(rng, 20, 90)
            case.do(cmd.ReEnter, source="gp", referrer_org_id="practice-01")
        else:
            return
    worker = f"lw-{rng.randint(1, 40)}"
    case.do(cmd.AcceptReferral, link_worker_id=worker)
    # The link worker's time log, from its own seeded stream (the rest of the year is
    # the same with or without it).
    log = Log(case, worker, random.Random(f"activity-{rid}"))
    attempts = rng.choice((1, 1, 1, 2, 2, 3)) if rng.random() > 0.07 else None
    for attempt in range(config.contact_attempts):
        case.later(rng, 0.2, 3)
        reached = attempts is not None and attempt + 1 >= attempts
        case.do(cmd.RecordContactAttempt, outcome="contacted" if reached else "no_answer")
        log("phone", True, 5, 20)
        if reached:
            break
    if case.state.episode.stage != "assessment":
        return  # unable to contact: dormant
    case.later(rng, 1, 14)
    baseline = rng.randint(25, 50)
    measures = [wemwbs(rng, baseline)] if rng.random() > 0.05 else []
    consent = cmd.ConsentPurposes(
        payment_evidence=rng.random() > 0.03, evaluation=rng.random() > 0.1
    )
    case.do(
        cmd.RecordAssessment,
        support_level=rng.choice(config.support_levels),
        measures=measures,
        consent=consent,
    )
    log("home_visit" if log.rng.random() < 0.15 else "one_to_one", True, 40, 90)
    log("admin", False, 10, 30)
    case.later(rng, 0, 7)
    chosen = rng.sample(SERVICES, rng.choice((1, 1, 2)))
    if config.level(case.state.episode.support_level).signposting_only:
        # Information and signposting: no provider handoffs (pathway.rules.casework).
        signposts = [cmd.SignpostInput(category="social", service_id=s) for _, s in chosen]
        case.do(cmd.AgreePlan, goal_count=rng.randint(1, 3), signposts=signposts)
        case.later(rng, 14, 42)
        connected = rng.choice(("connected", "connected", "not_connected"))
        case.do(cmd.RecordSignpostCheck, outcome=connected)
        return
    else:
        case.do(
            cmd.AgreePlan,
            goal_count=rng.randint(1, 3),
            prescriptions=[cmd.PrescriptionInput(provider_id=p, service_id=s) for p, s in chosen],
        )
    for handoff in list(case.state.episode.handoffs.values()):
        provide(case, handoff.handoff_id, handoff.provider_id, rng)
    case.deadline("review")
    if case.state.episode.stage != "review":
        return
    measured = bool(measures) and rng.random() > 0.07  # a few reviews record none
    measures = [wemwbs(rng, baseline + rng.randint(-4, 10))] if measured else []
    log("one_to_one", True, 30, 60)
    case.do(cmd.RecordReview, decision="dormant", measures=measures)


class Log:
    """A link worker logging their time on one case: now and then a correction (a
    different length) or a deletion (logged in error)."""

    def __init__(self, case: Referral, worker: str, rng: random.Random) -> None:
        self.case, self.worker, self.rng = case, worker, rng

    def __call__(self, kind: str, direct: bool, low: int, high: int) -> None:
        fields = {
            "activity_type": kind,
            "direct": direct,
            "started_at": self.case.now,
            "minutes": self.rng.randint(low, high),
            "link_worker_id": self.worker,
        }
        self.case.do(cmd.LogActivity, **fields)
        activity_id = self.case.out[-1][1].activity_id
        chance = self.rng.random()
        if chance < 0.05:
            fields["minutes"] = self.rng.randint(low, high)
            self.case.do(cmd.CorrectActivity, activity_id=activity_id, **fields)
        elif chance < 0.07:
            self.case.do(cmd.DeleteActivity, activity_id=activity_id, reason_code="logged_in_error")


def provide(case: Referral, handoff_id: str, provider_id: str, rng: random.Random) -> None:
    """What the provider does: answer (or not), then report sessions."""
    answer = rng.random()
    case.later(rng, 0.5, 8)
    common = {"handoff_id": handoff_id, "provider_id": provider_id, "occurred_at": case.now}
    if answer < 0.1:
        return  # never answers: the response deadline passes
    if answer < 0.2:
        case.fact(
            cmd.ProviderResponded(
                event_id=f"{handoff_id}-reject",
                decision="reject",
                reason_code="no_capacity",
                **common,
            )
        )
        return
    if answer < 0.3:
        case.fact(
            cmd.ProviderResponded(
                event_id=f"{handoff_id}-wait",
                decision="waitlist",
                waitlist_band=rng.choice(("under_1_month", "1_to_3_months")),
                **common,
            )
        )
    case.fact(cmd.ProviderResponded(event_id=f"{handoff_id}-accept", decision="accept", **common))
    day: date = case.now.date()
    for n in range(rng.randint(0, 6)):
        day += timedelta(days=7)
        status = "attended" if rng.random() < 0.8 else "did_not_attend"
        case.now = max(case.now, datetime(day.year, day.month, day.day, 18, tzinfo=UTC))
        fact = cmd.AttendanceRecorded(
            event_id=f"{handoff_id}-s{n}",
            handoff_id=handoff_id,
            provider_id=provider_id,
            occurred_at=case.now,
            session_date=day,
            status=status,
        )
        case.fact(fact)
        if status == "did_not_attend" and rng.random() < 0.1:  # the provider corrects it
            case.fact(
                fact.model_copy(update={"event_id": f"{fact.event_id}-c", "status": "attended"})
            )


DISTAL = ("ae_attendances", "out_of_hours_contacts", "non_elective_admissions")
FEED_TODAY = date(2028, 1, 1)  # every synthetic after-window has closed by then


def distal_changes(raised: list[Any], rng: random.Random, config: PathwayConfig) -> None:
    """What the distal feed's outcome rule (``pathway.distal``) states for the engaged
    episodes of people the commissioner's feed covers (about half): monthly counts drawn
    with a little less use after the referral than before."""
    engaged = [(event_id, d) for event_id, d in raised if isinstance(d, outcome.EngagementAchieved)]
    received = {
        d.episode: d.occurred_at
        for _, d in raised
        if isinstance(d, referral_events.ReferralReceived | referral_events.ReferralReentered)
    }
    months = config.distal_window_months
    for event_id, e in engaged:
        if rng.random() < 0.5 or e.episode not in received:
            continue
        span = distal.windows(received[e.episode].date(), months)
        for measure in DISTAL:
            rate = {"ae_attendances": 0.3, "out_of_hours_contacts": 0.4}.get(measure, 0.05)
            counts = {m: int(rng.random() < rate) for m in span.before}
            counts |= {m: int(rng.random() < rate * 0.8) for m in span.after}
            change = distal.change(counts, received[e.episode].date(), months, FEED_TODAY)
            if change is None:
                continue
            fact = distal.fact(e, event_id, measure, change, months)
            raised.append((f"{event_id}-{measure}", fact))


def events(
    count: int, config: PathwayConfig, seed: int = 1
) -> Iterator[tuple[CloudEvent, EventData]]:
    """The events of ``count`` referrals received over a year, each with its envelope,
    one referral's events in order."""
    rng = random.Random(seed)
    for n in range(count):
        raised: list[tuple[str, EventData]] = []
        referral(n, rng, config, raised)
        distal_changes(raised, random.Random(f"distal-{n}"), config)
        for event_id, data in raised:
            subject = str(getattr(data, "referral_id", ""))
            event = new_event(
                data.TYPE,
                subject,
                data.model_dump(mode="json"),
                SOURCE,
                event_id=event_id,
                time=getattr(data, "occurred_at", None),
            )
            yield event, data


def year(count: int, config: PathwayConfig, seed: int = 1) -> Iterator[Record]:
    """The same events as topic records (what the consumer would read)."""
    for event, data in events(count, config, seed):
        yield topic_for(data), event.to_bytes(), {}


BATCH = 10_000  # events folded per transaction (whole referrals: none spans two)


def fill(
    engine: Engine, count: int, config: PathwayConfig, seed: int = 1, batch_size: int = BATCH
) -> int:
    """Fold a synthetic year straight into the read models; returns how many events.

    The events are folded by the reporting consumer's own ``project.fold`` without the
    round trip through bytes, and without processed-event records (no synthetic event
    is ever delivered twice). Each batch's referrals are all new, so the fold finds its
    rows in the session's cache, and the rows it made are written with one multi-row
    insert per table instead of the session's unit of work."""
    folded = 0
    batch: list[tuple[CloudEvent, EventData]] = []
    last = None
    for event, data in events(count, config, seed):
        if last is not None and event.subject != last and len(batch) >= batch_size:
            _fold(engine, batch)
            folded, batch = folded + len(batch), []
        batch.append((event, data))
        last = event.subject
    _fold(engine, batch)
    return folded + len(batch)


def _fold(engine: Engine, batch: list[tuple[CloudEvent, EventData]]) -> None:
    with Session(engine, autoflush=False) as session:
        session.info[LOADED] = {e.subject for e, _ in batch}  # none in the database
        for event, data in batch:
            project.fold(session, event, data)
        by_table: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row in session.new:
            made: Any = row.__table__
            by_table[made].append({c.name: getattr(row, c.name) for c in made.columns})
        session.expunge_all()
        connection = session.connection()
        for model in TABLES:  # no foreign keys: any order
            table: Any = model.__table__  # type: ignore[union-attr]
            rows = by_table.get(table)
            if rows:
                connection.execute(table.insert(), rows)
        session.commit()
