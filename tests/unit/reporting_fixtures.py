"""Hand-built event sequences for the reporting tests: each helper returns the record a
topic would hold (topic, bytes, headers), made from the published event models."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from events import casework, handoff, outcome, payment, referral, topics
from events.catalogue import EventData, topic_for
from events.envelope import new_event
from messaging import deadletters
from pathway.measures import default_registry

Record = tuple[str, bytes, dict[str, bytes]]
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # a Monday
_ids = itertools.count(1)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def record(data: EventData, subject: str | None = None, event_id: str | None = None) -> Record:
    subject = subject or data.referral_id  # type: ignore[attr-defined]
    event = new_event(
        data.TYPE,
        subject,
        data.model_dump(mode="json"),
        source="urn:linkway:test",
        event_id=event_id or f"evt-{next(_ids)}",
        time=data.occurred_at,  # type: ignore[attr-defined]
    )
    return topic_for(data), event.to_bytes(), {}


class Person:
    """One referral's events, written as a link worker's day would produce them."""

    def __init__(
        self, referral_id: str, partner: str = "north-wellbeing", locality: str = "oswestry"
    ):
        self.id, self.partner, self.locality, self.episode = referral_id, partner, locality, 1
        self.stage = "triage"

    def _common(self, days: float) -> dict[str, Any]:
        return {
            "referral_id": self.id,
            "episode": self.episode,
            "partner_id": self.partner,
            "locality": self.locality,
            "stage": self.stage,
            "occurred_at": at(days),
        }

    def received(self, days: float, source: str = "gp", practice: str = "gp-a") -> Record:
        return record(
            referral.ReferralReceived(
                **self._common(days),
                source=source,
                referrer_org_id=practice,
                consent_to_share=True,
            )
        )

    def reentered(self, days: float, source: str = "gp", practice: str = "gp-a") -> Record:
        self.episode += 1
        self.stage = "triage"
        return record(
            referral.ReferralReentered(
                **self._common(days),
                previous_episode=self.episode - 1,
                source=source,
                referrer_org_id=practice,
            )
        )

    def joined(self, days: float, source: str = "self", practice: str = "self") -> Record:
        return record(
            referral.ReferralJoined(**self._common(days), source=source, referrer_org_id=practice)
        )

    def accepted(self, days: float, due_days: float = 7) -> Record:
        self.stage = "contacting"
        return record(
            referral.ReferralAccepted(**self._common(days), first_contact_due=at(due_days))
        )

    def declined(self, days: float, reason: str = "not_eligible") -> Record:
        self.stage = "dormant"
        return record(referral.ReferralDeclined(**self._common(days), reason_code=reason))

    def contact(self, days: float, result: str = "contacted", attempt: int = 1) -> Record:
        return record(
            referral.ContactAttempted(
                **self._common(days),
                attempt=attempt,
                outcome=result,
                method="phone",  # type: ignore[arg-type]
            )
        )

    def assessed(
        self,
        days: float,
        wemwbs: int | None = 40,
        level: str = "2",
        consent: list[referral.ConsentPurpose] | None = None,
    ) -> Record:
        """Assessed; ``consent`` the purposes consented to (default: payment evidence and
        evaluation; ``[]`` refused both)."""
        self.stage = "assessment"
        baseline = [wemwbs_scores(wemwbs, days)] if wemwbs is not None else []
        purposes = ["payment_evidence", "evaluation"] if consent is None else consent
        return record(
            referral.ReferralAssessed(
                **self._common(days),
                support_level=level,
                baseline=baseline,
                consent_purposes=purposes,
            )
        )

    def plan(self, days: float, *handoffs: tuple[str, str, str]) -> Record:
        self.stage = "supported"
        return record(
            referral.PlanAgreed(
                **self._common(days),
                plan_version=1,
                goal_count=1,
                prescriptions=[
                    referral.PrescriptionRef(handoff_id=h, provider_id=p, service_id=s)
                    for h, p, s in handoffs
                ],
                midpoint_due=None,
                review_due=at(days + 90),
            )
        )

    def reviewed(self, days: float, wemwbs: int | None = 45) -> Record:
        self.stage = "review"
        followup = [wemwbs_scores(wemwbs, days)] if wemwbs is not None else []
        return record(
            referral.ReferralReviewed(
                **self._common(days),
                decision="dormant",
                followup=followup,
                improved_instruments=[],
                followup_due=None,
            )
        )

    def dormant(self, days: float, reason: str = "declined") -> Record:
        self.stage = "dormant"
        return record(referral.ReferralDormant(**self._common(days), reason_code=reason))  # type: ignore[arg-type]

    def action_due(self, days: float, action: str, handoff_id: str | None = None) -> Record:
        return record(
            referral.ActionDue(
                **self._common(days),
                action=action,
                due_at=at(days),
                handoff_id=handoff_id,  # type: ignore[arg-type]
            )
        )

    def handoff(
        self, days: float, handoff_id: str, provider: str, status: str, reason: str | None = None
    ) -> Record:
        return record(
            handoff.HandoffStatusChanged(
                handoff_id=handoff_id,
                referral_id=self.id,
                episode=self.episode,
                provider_id=provider,
                status=status,
                reason_code=reason,  # type: ignore[arg-type]
                occurred_at=at(days),
            )
        )

    def attendance(
        self, days: float, handoff_id: str, provider: str, session: date, status: str
    ) -> Record:
        return record(
            handoff.HandoffAttendanceRecorded(
                handoff_id=handoff_id,
                referral_id=self.id,
                episode=self.episode,
                provider_id=provider,
                session_date=session,
                status=status,  # type: ignore[arg-type]
                occurred_at=at(days),
            )
        )

    def engagement(self, days: float) -> Record:
        return record(
            outcome.EngagementAchieved(
                referral_id=self.id,
                episode=self.episode,
                partner_id=self.partner,
                locality=self.locality,
                occurred_at=at(days),
                evidence_event_ids=[],
                consent_recorded=True,
                baseline=[wemwbs_scores(40, days)],
            )
        )

    def assign(self, days: float, link_worker: str) -> Record:
        return record(referral.LinkWorkerAssigned(**self._common(days), link_worker_id=link_worker))

    def activity(
        self,
        days: float,
        activity_id: str,
        link_worker: str,
        kind: casework.ActivityType = "one_to_one",
        minutes: int = 30,
        direct: bool = True,
        corrected: bool = False,
        started: float | None = None,
    ) -> Record:
        """An activity logged (or, ``corrected``, a correction with every field again)."""
        event = casework.ActivityCorrected if corrected else casework.ActivityLogged
        return record(
            event(
                **self._common(days),
                activity_id=activity_id,
                link_worker_id=link_worker,
                activity_type=kind,
                direct=direct,
                started_at=at(days if started is None else started),
                minutes=minutes,
                note_recorded=False,
            )
        )

    def delete_activity(self, days: float, activity_id: str) -> Record:
        return record(
            casework.ActivityDeleted(
                **self._common(days), activity_id=activity_id, reason_code="logged_in_error"
            )
        )

    def distal(
        self, days: float, measure: outcome.DistalMeasure, before: int, after: int
    ) -> Record:
        return record(
            outcome.DistalChange(
                referral_id=self.id,
                episode=self.episode,
                partner_id=self.partner,
                locality=self.locality,
                occurred_at=at(days),
                evidence_event_ids=[],
                consent_recorded=True,
                measure=measure,
                window_months=6,
                before_from=date(2025, 11, 1),
                before_to=date(2026, 4, 30),
                after_from=date(2026, 6, 1),
                after_to=date(2026, 11, 30),
                before_count=before,
                after_count=after,
            )
        )

    def claim(
        self, days: float, claim_id: str, status: str, pence: int, metric: str = "M1"
    ) -> Record:
        return record(
            payment.ClaimStatusChanged(
                claim_id=claim_id,
                contract_id="demo-county-sp-2026",
                referral_id=self.id,
                episode=self.episode,
                metric=metric,
                partner_id=self.partner,
                status=status,
                amount_pence=pence,
                rate_card_version="2026.1",  # type: ignore[arg-type]
                ledger_entry_hash="0" * 64,
                occurred_at=at(days),
            )
        )


def wemwbs_scores(total: int, days: float) -> referral.MeasureScores:
    """WEMWBS answers adding up to ``total`` (14 items, 1..5 each)."""
    answers, left = {}, total
    for i in range(14):
        item = max(1, min(5, left - (13 - i)))
        answers[str(i + 1)] = item
        left -= item
    scores = default_registry().score("WEMWBS", answers)
    return referral.MeasureScores(
        measurement_id=f"m-{next(_ids)}",
        instrument="WEMWBS",
        version=scores.version,
        raw=scores.raw,
        derived=scores.derived,
        administered_at=at(days),
    )


def dead_letter(provider: str, reason: str, offset: int, when: datetime = T0) -> Record:
    value = new_event(
        "linkway.provider.attendance.v1",
        "r-x",
        {"provider_id": provider},
        source=f"urn:linkway:provider:{provider}",
        event_id=f"dl-{offset}",
        time=when,
    ).to_bytes()
    headers = {
        deadletters.REASON_HEADER: reason.encode(),
        deadletters.TOPIC_HEADER: topics.PROVIDER_ATTENDANCE.encode(),
        deadletters.PARTITION_HEADER: b"0",
        deadletters.OFFSET_HEADER: str(offset).encode(),
        deadletters.CONSUMER_HEADER: b"providers",
        deadletters.TIME_HEADER: when.isoformat().encode(),
    }
    return topics.dead_letter_topic(topics.PROVIDER_ATTENDANCE), value, headers
