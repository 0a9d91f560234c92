"""Folding events into the reporting read models (``reporting.tables``).

``apply`` takes one record of a topic the reporting consumer reads and writes its effect
in the caller's session, with the processed-event record, so a redelivered event applies
once. The consumer (``workers.reporting``) and the rebuild (``reporting.rebuild``) both
call it, under the same consumer name, so a rebuild and the live consumer never apply an
event twice between them.

It reads like a tolerant partner: an event type it does not count, or a record it cannot
read on Linkway's own topics, is skipped (the consumers that act on those topics
dead-letter what is wrong; reporting counts their dead letters instead). Times are
compared, never trusted to arrive in order: the earliest wins for "when did this first
happen", so the rows do not depend on the order in which the topics are read.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlmodel import Session

from events import casework, completion, handoff, outcome, payment, referral, topics
from events.catalogue import EventData, EventRejected, parse
from events.envelope import CloudEvent
from messaging.consumer import is_processed, record_processed
from reporting import project_casework, project_deadletters
from reporting.rows import CHECKED, SEEN, earliest, month_of, utc
from reporting.rows import get as _get
from reporting.rows import put as _put
from reporting.tables import (
    ReportAction,
    ReportClaim,
    ReportEpisode,
    ReportHandoff,
    ReportMeasure,
    ReportOutcome,
    ReportReferral,
    ReportSession,
)

log = logging.getLogger("linkway.reporting")

CONSUMER = "reporting"
# The dead-letter topics of everything a Linkway consumer reads.
DEAD_LETTER_TOPICS = tuple(topics.dead_letter_topic(t) for t in topics.CONSUMED)
TOPICS = (topics.REFERRALS, topics.OUTCOMES, topics.PAYMENTS, *DEAD_LETTER_TOPICS)
OUTCOME_NAMES = {
    outcome.EngagementAchieved.TYPE: "engagement",
    outcome.ConnectionAchieved.TYPE: "connection",
    outcome.WellbeingReviewed.TYPE: "wellbeing_reviewed",
    outcome.SustainedReviewed.TYPE: "sustained_reviewed",
}


def apply(session: Session, topic: str, value: bytes, headers: dict[str, bytes]) -> bool:
    """Fold one record into the read models; returns False if it was skipped (already
    applied, or nothing reporting counts)."""
    if topics.is_dead_letter(topic):
        return project_deadletters.fold(session, topic, value, headers)
    try:
        envelope, data = parse(value)
    except EventRejected as rejected:
        log.debug("reporting skips a record on %s: %s", topic, rejected)
        return False
    seen = session.info.setdefault(SEEN, set())
    checked = envelope.id in session.info.get(CHECKED, ())
    if envelope.id in seen or (not checked and is_processed(session, CONSUMER, envelope.id)):
        return False
    fold(session, envelope, data)
    record_processed(session, CONSUMER, envelope.id)
    seen.add(envelope.id)
    return True


def fold(session: Session, envelope: CloudEvent, data: EventData) -> None:
    """Apply one parsed event (its processed-event record is the caller's)."""
    if isinstance(data, referral.ReferralEvent):
        _lifecycle(session, envelope, data)
        if isinstance(data, casework.ActivityFacts | casework.ActivityDeleted):
            project_casework.activity(session, data)
    elif isinstance(data, handoff.HandoffStatusChanged):
        _handoff_status(session, data)
    elif isinstance(data, handoff.HandoffAttendanceRecorded):
        _attendance(session, data)
    elif isinstance(data, outcome.OutcomeEvent):
        _outcome(session, envelope, data)
        if isinstance(data, outcome.DistalChange):
            project_casework.distal(session, data)
    elif isinstance(data, payment.ClaimStatusChanged):
        _claim(session, data)


def _episode(
    session: Session, data: referral.ReferralEvent | outcome.OutcomeEvent
) -> ReportEpisode:
    row = _get(session, ReportEpisode, (data.referral_id, data.episode), data.referral_id)
    if row is None:
        row = ReportEpisode(
            referral_id=data.referral_id,
            episode=data.episode,
            partner_id=data.partner_id,
            locality=data.locality,
        )
        _put(session, ReportEpisode, (data.referral_id, data.episode), row)
    return row


def _lifecycle(session: Session, envelope: CloudEvent, data: referral.ReferralEvent) -> None:
    at = utc(data.occurred_at)
    if isinstance(
        data, referral.ReferralReceived | referral.ReferralReentered | referral.ReferralJoined
    ):
        kind = {
            referral.ReferralReceived: "received",
            referral.ReferralReentered: "reentered",
            referral.ReferralJoined: "joined",
        }[type(data)]
        session.add(
            ReportReferral(
                event_id=envelope.id,
                referral_id=data.referral_id,
                episode=data.episode,
                kind=kind,
                partner_id=data.partner_id,
                locality=data.locality,
                source=data.source,
                referrer_org_id=data.referrer_org_id,
                received_at=at,
                month=month_of(at),
            )
        )
    ep = _episode(session, data)
    # The latest event says where the episode is managed now (a move between partners).
    ep.partner_id, ep.locality = data.partner_id, data.locality
    if isinstance(data, referral.ReferralReceived | referral.ReferralReentered):
        if ep.received_at is None or at < utc(ep.received_at):
            ep.received_at, ep.month = at, month_of(at)
            ep.source, ep.referrer_org_id = data.source, data.referrer_org_id
        ep.reentry = isinstance(data, referral.ReferralReentered)
    elif isinstance(data, referral.ReferralAccepted):
        ep.accepted_at = earliest(ep.accepted_at, at)
        ep.first_contact_due = utc(data.first_contact_due)
    elif isinstance(data, referral.ReferralDeclined):
        ep.declined_at = earliest(ep.declined_at, at)
        ep.decline_reason = data.reason_code
    elif isinstance(data, referral.LinkWorkerAssigned):
        ep.link_worker_id = data.link_worker_id
    elif isinstance(data, referral.ContactAttempted):
        if data.outcome == "contacted":
            ep.first_contact_at = earliest(ep.first_contact_at, at)
    elif isinstance(data, referral.UnableToContact):
        ep.unable_to_contact_at = earliest(ep.unable_to_contact_at, at)
    elif isinstance(data, referral.ReferralAssessed):
        ep.assessed_at = earliest(ep.assessed_at, at)
        ep.support_level = data.support_level
        ep.baseline_count = len(data.baseline)
        if data.consent_purposes is not None:
            _evaluation_consent(ep, "evaluation" in data.consent_purposes)
        _measures(session, data, "baseline", data.baseline)
    elif isinstance(data, referral.PlanAgreed):
        ep.plan_at = earliest(ep.plan_at, at)
        ep.review_due = utc(data.review_due)
        for p in data.prescriptions:
            _plan_handoff(session, data, p, at)
    elif isinstance(data, referral.ReferralReviewed):
        ep.reviewed_at = earliest(ep.reviewed_at, at)
        ep.review_measure_count = len(data.followup)
        ep.followup_due = utc(data.followup_due) if data.followup_due else None
        _measures(session, data, "review", data.followup)
    elif isinstance(data, referral.FollowupRecorded):
        ep.followup_at = earliest(ep.followup_at, at)
        ep.followup_measure_count = len(data.measures)
        _measures(session, data, "followup", data.measures)
    elif isinstance(data, referral.ReferralDormant):
        ep.dormant_at = earliest(ep.dormant_at, at)
        ep.dormant_reason = data.reason_code
    elif isinstance(data, referral.ActionDue):
        session.add(
            ReportAction(
                event_id=envelope.id,
                referral_id=data.referral_id,
                episode=data.episode,
                action=data.action,
                handoff_id=data.handoff_id,
                due_at=utc(data.due_at),
                month=month_of(at),
            )
        )
        if data.action == "provider_response" and data.handoff_id:
            row = _get(session, ReportHandoff, data.handoff_id, data.referral_id)
            if row is not None and row.status == "requested":
                row.response_overdue = True
    elif isinstance(data, completion.CompletionReported):
        pass  # its facts are already counted from the events they came from


def _evaluation_consent(ep: ReportEpisode, given: bool) -> None:
    """Consent to evaluation as stated once more: given only while every statement says
    given (a refusal anywhere wins, whichever topic was read first)."""
    ep.evaluation_consent = (
        given if ep.evaluation_consent is None else (ep.evaluation_consent and given)
    )


def _measures(
    session: Session,
    data: referral.ReferralEvent,
    timepoint: str,
    measures: list[referral.MeasureScores],
) -> None:
    """Record each instrument at a time point; recorded again (a revised review), the
    latest replaces it."""
    for m in measures:
        key = (data.referral_id, data.episode, m.instrument, timepoint)
        row = _get(session, ReportMeasure, key, data.referral_id)
        if row is None:
            row = ReportMeasure(
                referral_id=data.referral_id,
                episode=data.episode,
                instrument=m.instrument,
                timepoint=timepoint,
                version=m.version,
                raw="{}",
                derived="{}",
                administered_at=utc(m.administered_at),
            )
            _put(session, ReportMeasure, key, row)
        row.version = m.version
        row.raw = json.dumps(m.raw, sort_keys=True)
        row.derived = json.dumps(m.derived, sort_keys=True)
        row.administered_at = utc(m.administered_at)


def _plan_handoff(
    session: Session, data: referral.PlanAgreed, p: referral.PrescriptionRef, at: datetime
) -> None:
    row = _get(session, ReportHandoff, p.handoff_id, data.referral_id)
    if row is None:
        row = ReportHandoff(
            handoff_id=p.handoff_id,
            referral_id=data.referral_id,
            episode=data.episode,
            provider_id=p.provider_id,
        )
        _put(session, ReportHandoff, p.handoff_id, row)
    row.service_id = p.service_id
    row.requested_at = earliest(row.requested_at, at)


def _handoff_status(session: Session, data: handoff.HandoffStatusChanged) -> None:
    row = _get(session, ReportHandoff, data.handoff_id, data.referral_id)
    if row is None:  # a plan revised before this consumer saw it: still a handoff
        row = ReportHandoff(
            handoff_id=data.handoff_id,
            referral_id=data.referral_id,
            episode=data.episode,
            provider_id=data.provider_id,
        )
        _put(session, ReportHandoff, data.handoff_id, row)
    row.status = data.status
    if data.status == "accepted":
        row.accepted = True
    elif data.status == "rejected":
        row.rejected_reason = data.reason_code or "unspecified"
    elif data.status == "on-hold" and (data.reason_code or "").startswith("waitlist_"):
        row.waitlist_band = (data.reason_code or "").removeprefix("waitlist_")
    elif data.status in ("in-progress", "completed"):
        row.started = True
    elif data.status == "failed":
        row.failed_reason = data.reason_code or "unspecified"


def _attendance(session: Session, data: handoff.HandoffAttendanceRecorded) -> None:
    row = _get(session, ReportSession, (data.handoff_id, data.session_date), data.referral_id)
    if row is None:
        _put(
            session,
            ReportSession,
            (data.handoff_id, data.session_date),
            ReportSession(
                handoff_id=data.handoff_id,
                session_date=data.session_date,
                referral_id=data.referral_id,
                episode=data.episode,
                provider_id=data.provider_id,
                status=data.status,
            ),
        )
        return
    row.status = data.status  # a correction: the latest report for the session counts
    row.reports += 1


def _outcome(session: Session, envelope: CloudEvent, data: outcome.OutcomeEvent) -> None:
    if data.consent_purposes is not None:
        # The episode's row may not be here yet (the outcomes topic read first): made now,
        # its referral events fill it in.
        _evaluation_consent(_episode(session, data), "evaluation" in data.consent_purposes)
    name = OUTCOME_NAMES.get(envelope.type)
    if name is None:
        return
    key = (data.referral_id, data.episode, name)
    at = utc(data.occurred_at)
    row = _get(session, ReportOutcome, key, data.referral_id)
    if row is None:
        _put(
            session,
            ReportOutcome,
            key,
            ReportOutcome(
                referral_id=data.referral_id,
                episode=data.episode,
                outcome=name,
                partner_id=data.partner_id,
                occurred_at=at,
                month=month_of(at),
            ),
        )
    elif at < utc(row.occurred_at):
        row.occurred_at, row.month = at, month_of(at)


def _claim(session: Session, data: payment.ClaimStatusChanged) -> None:
    at = utc(data.occurred_at)
    row = _get(session, ReportClaim, data.claim_id, data.referral_id)
    if row is None:
        _put(
            session,
            ReportClaim,
            data.claim_id,
            ReportClaim(
                claim_id=data.claim_id,
                contract_id=data.contract_id,
                referral_id=data.referral_id,
                episode=data.episode,
                metric=data.metric,
                partner_id=data.partner_id,
                status=data.status,
                amount_pence=data.amount_pence,
                first_at=at,
                month=month_of(at),
                last_at=at,
            ),
        )
        return
    if at < utc(row.first_at):
        row.first_at, row.month = at, month_of(at)
    if at >= utc(row.last_at):  # the claim's lifecycle in time order; ties: topic order
        row.status, row.amount_pence, row.last_at = data.status, data.amount_pence, at
