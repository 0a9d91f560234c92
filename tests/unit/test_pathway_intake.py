"""Intake rules: a new case, triage, contact, re-entry, consent and rescheduling."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from events import referral as ev
from events.handoff import HandoffStatusChanged
from pathway import commands as cmd
from pathway.rules import Rejected
from tests.unit.pathway_fixtures import (
    T0,
    at_stage,
    config,
    new_case,
    only,
    prescription,
    responded,
    session,
    types,
)

# --- a new case and triage -----------------------------------------------------------------


def test_open_case_starts_episode_one_at_triage_and_announces_the_referral() -> None:
    case, decision = new_case()

    state = case.state
    assert (state.version, state.episode.number, case.stage) == (1, 1, "triage")
    assert state.episode.opened_at == T0
    assert state.past_episodes == []
    received = only(decision, ev.ReferralReceived)
    assert received.model_dump() == {
        "referral_id": "ref-1",
        "episode": 1,
        "partner_id": "north-wellbeing",
        "locality": "oswestry",
        "stage": "triage",
        "occurred_at": T0,
        "source": "gp",
        "referrer_org_id": "gp-1",
        "reason_codes": ["loneliness"],
        "consent_to_share": True,
    }


def test_accept_moves_to_contacting_with_first_contact_due_in_five_working_days() -> None:
    case = at_stage("triage")

    decision = case.do(cmd.AcceptReferral)

    due = datetime(2027, 1, 18, 9, 0, tzinfo=T0.tzinfo)  # Monday 11th + 5 working days
    assert case.stage == "contacting"
    assert case.state.episode.deadlines == {"first_contact": due}
    assert types(decision) == [ev.ReferralAccepted]
    assert only(decision, ev.ReferralAccepted).first_contact_due == due
    assert only(decision, ev.ReferralAccepted).stage == "contacting"
    assert case.state.version == 2


def test_accept_with_a_link_worker_assigns_them_too() -> None:
    case = at_stage("triage")

    decision = case.do(cmd.AcceptReferral, link_worker_id="lw-7")

    assert tuple(types(decision)) == (ev.ReferralAccepted, ev.LinkWorkerAssigned)
    assert only(decision, ev.LinkWorkerAssigned).link_worker_id == "lw-7"
    assert case.state.episode.link_worker_id == "lw-7"


def test_decline_sends_the_episode_dormant_with_the_reason() -> None:
    case = at_stage("triage")

    decision = case.later(hours=2).do(cmd.DeclineReferral, reason_code="out_of_area")

    assert types(decision) == [ev.ReferralDeclined, ev.ReferralDormant]
    assert only(decision, ev.ReferralDeclined).reason_code == "out_of_area"
    assert only(decision, ev.ReferralDormant).reason_code == "declined"
    ep = case.state.episode
    assert (ep.stage, ep.dormant_reason, ep.ended_at) == ("dormant", "declined", case.now)


def test_assign_records_a_new_link_worker() -> None:
    case = at_stage("contacting")

    decision = case.do(cmd.AssignLinkWorker, link_worker_id="lw-2")

    assert case.state.episode.link_worker_id == "lw-2"
    assert only(decision, ev.LinkWorkerAssigned).link_worker_id == "lw-2"


def test_assigning_the_link_worker_already_assigned_is_rejected_without_change() -> None:
    case = at_stage("contacting")  # accepted with lw-1
    before = case.state

    with pytest.raises(Rejected, match="that link worker is already assigned"):
        case.do(cmd.AssignLinkWorker, link_worker_id="lw-1")

    assert case.state is before and before.version == 2


# --- contact -------------------------------------------------------------------------------


def test_a_failed_contact_attempt_is_counted_and_keeps_contacting() -> None:
    case = at_stage("contacting")

    decision = case.do(cmd.RecordContactAttempt, outcome="no_answer", method="text")

    attempted = only(decision, ev.ContactAttempted)
    assert (attempted.attempt, attempted.outcome, attempted.method) == (1, "no_answer", "text")
    assert case.stage == "contacting"
    assert "first_contact" in case.state.episode.deadlines


def test_making_contact_moves_to_assessment_and_clears_first_contact() -> None:
    case = at_stage("contacting")
    case.do(cmd.RecordContactAttempt, outcome="message_left")

    decision = case.do(cmd.RecordContactAttempt, outcome="contacted")

    assert only(decision, ev.ContactAttempted).attempt == 2
    assert only(decision, ev.ContactAttempted).stage == "assessment"
    assert case.stage == "assessment"
    assert case.state.episode.deadlines == {}


def test_exhausting_contact_attempts_is_unable_to_contact_then_dormant() -> None:
    case = at_stage("contacting")
    case.do(cmd.RecordContactAttempt, outcome="no_answer")
    case.do(cmd.RecordContactAttempt, outcome="message_left")
    assert case.stage == "contacting"

    decision = case.do(cmd.RecordContactAttempt, outcome="wrong_details")

    assert types(decision) == [ev.ContactAttempted, ev.UnableToContact, ev.ReferralDormant]
    assert only(decision, ev.UnableToContact).attempts == 3
    assert only(decision, ev.ReferralDormant).reason_code == "unable_to_contact"
    ep = case.state.episode
    assert (ep.stage, ep.dormant_reason) == ("dormant", "unable_to_contact")
    assert ep.deadlines == {} and ep.overdue == []


def test_contact_attempts_before_unable_to_contact_come_from_config() -> None:
    case = at_stage("contacting", cfg=config(contact_attempts=1))

    decision = case.do(cmd.RecordContactAttempt, outcome="no_answer")

    assert ev.UnableToContact in types(decision)
    assert case.stage == "dormant"


def test_contact_on_the_last_allowed_attempt_still_reaches_assessment() -> None:
    case = at_stage("contacting")
    case.do(cmd.RecordContactAttempt, outcome="no_answer")
    case.do(cmd.RecordContactAttempt, outcome="no_answer")

    decision = case.do(cmd.RecordContactAttempt, outcome="contacted")

    assert types(decision) == [ev.ContactAttempted]
    assert case.stage == "assessment"


# --- re-entry ------------------------------------------------------------------------------


def test_reentry_from_dormant_opens_a_new_episode_and_keeps_history() -> None:
    case = at_stage("contacting")
    for _ in range(3):
        case.do(cmd.RecordContactAttempt, outcome="no_answer")
    ended_at = case.now
    case.later(days=200)

    decision = case.do(cmd.ReEnter, source="self", referrer_org_id="self", reason_codes=["debt"])

    state = case.state
    assert (state.episode.number, case.stage) == (2, "triage")
    assert state.episode.opened_at == case.now
    assert (state.episode.source, state.episode.reason_codes) == ("self", ["debt"])
    assert state.episode.contact_attempts == 0
    assert state.episode.link_worker_id == "lw-1"
    [first] = state.past_episodes
    assert (first.number, first.final_stage, first.dormant_reason) == (
        1,
        "dormant",
        "unable_to_contact",
    )
    assert (first.opened_at, first.ended_at, first.source) == (T0, ended_at, "gp")
    reentered = only(decision, ev.ReferralReentered)
    assert (reentered.episode, reentered.previous_episode, reentered.stage) == (2, 1, "triage")
    assert reentered.reason_codes == ["debt"]


def test_a_second_reentry_keeps_every_earlier_episode() -> None:
    case = at_stage("dormant")
    case.do(cmd.ReEnter, source="self", referrer_org_id="self")
    case.do(cmd.DeclineReferral, reason_code="no_capacity")

    case.do(cmd.ReEnter, source="gp", referrer_org_id="gp-2")

    assert case.state.episode.number == 3
    assert [e.number for e in case.state.past_episodes] == [1, 2]
    assert [e.source for e in case.state.past_episodes] == ["gp", "self"]


@pytest.mark.parametrize("stage", ["triage", "contacting", "planning", "supported", "review"])
def test_reentry_during_an_active_episode_joins_it(stage: str) -> None:
    case = at_stage(stage)
    version = case.state.version

    decision = case.do(
        cmd.ReEnter,
        source="social_care",
        referrer_org_id="asc-1",
        reason_codes=["loneliness", "carer_strain"],
    )

    state = case.state
    assert (state.episode.number, case.stage, state.past_episodes) == (1, stage, [])
    assert state.episode.reason_codes == ["loneliness", "carer_strain"]
    assert types(decision) == [ev.ReferralJoined]
    joined = only(decision, ev.ReferralJoined)
    assert (joined.episode, joined.source, joined.reason_codes) == (
        1,
        "social_care",
        ["loneliness", "carer_strain"],
    )
    assert state.version == version + 1


# --- consent -------------------------------------------------------------------------------


def test_withdrawing_consent_cancels_every_open_handoff() -> None:
    case = at_stage("supported", prescriptions=3)
    open_, rejected, started = (case.handoff(i) for i in range(3))
    case.fact(responded(rejected, "reject", "e-1", reason="full"))
    case.fact(session(started, T0.date() + timedelta(days=5)))

    decision = case.do(cmd.WithdrawConsent)

    assert case.state.consent_to_share is False
    withdrawn = decision.events[0][1]
    assert isinstance(withdrawn, ev.ConsentWithdrawn)
    assert withdrawn.cancelled_handoffs == [open_.handoff_id, started.handoff_id]
    changes = [d for _, d in decision.events if isinstance(d, HandoffStatusChanged)]
    assert [(c.handoff_id, c.status, c.reason_code) for c in changes] == [
        (open_.handoff_id, "cancelled", "consent_withdrawn"),
        (started.handoff_id, "cancelled", "consent_withdrawn"),
    ]
    statuses = {h.handoff_id: h.status for h in case.state.episode.handoffs.values()}
    assert statuses == {
        open_.handoff_id: "cancelled",
        rejected.handoff_id: "rejected",
        started.handoff_id: "cancelled",
    }
    assert not [d for d in case.state.episode.deadlines if d.startswith("provider_response")]
    assert case.stage == "supported"


def test_withdrawing_consent_twice_is_rejected() -> None:
    case = at_stage("planning")
    case.do(cmd.WithdrawConsent)

    with pytest.raises(Rejected, match="already withdrawn"):
        case.do(cmd.WithdrawConsent)


def test_giving_consent_again_allows_prescribing() -> None:
    case = at_stage("planning")
    case.do(cmd.WithdrawConsent)
    with pytest.raises(Rejected, match="not consented"):
        case.do(cmd.AgreePlan, goal_count=1, prescriptions=[prescription()])

    decision = case.do(cmd.GiveConsent)
    case.do(cmd.AgreePlan, goal_count=1, prescriptions=[prescription()])

    assert types(decision) == [ev.ConsentGiven]
    assert case.state.consent_to_share is True
    assert len(case.state.episode.handoffs) == 1


def test_giving_consent_already_on_record_is_rejected() -> None:
    case = at_stage("triage")

    with pytest.raises(Rejected, match="already on record"):
        case.do(cmd.GiveConsent)


# --- rescheduling --------------------------------------------------------------------------


def test_rescheduling_moves_an_open_deadline() -> None:
    case = at_stage("contacting")
    new_due = T0 + timedelta(days=20)

    decision = case.do(cmd.RescheduleDeadline, deadline="first_contact", due_at=new_due)

    assert case.state.episode.deadlines == {"first_contact": new_due}
    changed = only(decision, ev.DueDatesChanged)
    assert (changed.deadline, changed.due_at) == ("first_contact", new_due)


def test_rescheduling_an_overdue_action_makes_it_pending_again() -> None:
    case = at_stage("contacting")
    case.at(case.state.episode.deadlines["first_contact"]).deadline("first_contact")
    assert case.state.episode.overdue == ["first_contact"]
    new_due = case.now + timedelta(days=3)

    case.do(cmd.RescheduleDeadline, deadline="first_contact", due_at=new_due)

    assert case.state.episode.overdue == []
    assert case.state.episode.deadlines == {"first_contact": new_due}


def test_rescheduling_a_deadline_that_is_not_open_is_rejected() -> None:
    case = at_stage("contacting")

    with pytest.raises(
        Rejected, match=r"deadline must name an open deadline \(open: first_contact\)"
    ):
        case.do(cmd.RescheduleDeadline, deadline="review", due_at=T0 + timedelta(days=1))


def test_rescheduling_into_the_past_is_rejected() -> None:
    case = at_stage("contacting")

    with pytest.raises(Rejected, match="must be in the future"):
        case.do(cmd.RescheduleDeadline, deadline="first_contact", due_at=case.now)
