"""Intake rules: a new case, triage, contact, re-entry, consent and rescheduling."""

from __future__ import annotations

from events import referral as ev
from pathway import commands as cmd
from pathway import stages
from pathway.config import PathwayConfig
from pathway.rules import handoffs
from pathway.rules.base import (
    Conflict,
    Context,
    Decision,
    Rejected,
    due,
    lifecycle,
    require_stage,
)
from pathway.state import (
    MAX_PAST_EPISODES,
    CaseState,
    Episode,
    clear,
    is_open,
)


def open_case(
    referral_id: str,
    partner_id: str,
    locality: str,
    source: str,
    referrer_org_id: str,
    reason_codes: list[str],
    consent_to_share: bool,
    config: PathwayConfig,
    ctx: Context,
) -> Decision:
    episode = Episode(
        number=1,
        opened_at=ctx.now,
        source=source,
        referrer_org_id=referrer_org_id,
        reason_codes=list(reason_codes),
    )
    state = CaseState(
        referral_id=referral_id,
        partner_id=partner_id,
        locality=locality,
        config=config,
        consent_to_share=consent_to_share,
        version=1,
        episode=episode,
    )
    decision = Decision(state)
    decision.emit(
        ctx,
        lifecycle(
            state,
            ctx,
            ev.ReferralReceived,
            source=source,
            referrer_org_id=referrer_org_id,
            reason_codes=list(reason_codes),
            consent_to_share=consent_to_share,
        ),
    )
    return decision


def accept(state: CaseState, c: cmd.AcceptReferral, ctx: Context) -> Decision:
    require_stage(state, "accept the referral", "triage")
    ep = state.episode
    ep.stage = "contacting"
    if c.link_worker_id:
        ep.link_worker_id = c.link_worker_id
    first_contact = due(state, ctx.now, state.config.first_contact_due)
    ep.deadlines["first_contact"] = first_contact
    decision = Decision(state)
    decision.emit(ctx, lifecycle(state, ctx, ev.ReferralAccepted, first_contact_due=first_contact))
    if c.link_worker_id:
        decision.emit(
            ctx, lifecycle(state, ctx, ev.LinkWorkerAssigned, link_worker_id=c.link_worker_id)
        )
    return decision


def decline(state: CaseState, c: cmd.DeclineReferral, ctx: Context) -> Decision:
    require_stage(state, "decline the referral", "triage")
    decision = Decision(state)
    state.episode.stage = "dormant"
    decision.emit(ctx, lifecycle(state, ctx, ev.ReferralDeclined, reason_code=c.reason_code))
    go_dormant(state, decision, ctx, "declined")
    return decision


def assign(state: CaseState, c: cmd.AssignLinkWorker, ctx: Context) -> Decision:
    if state.episode.link_worker_id == c.link_worker_id:
        raise Rejected("that link worker is already assigned")
    state.episode.link_worker_id = c.link_worker_id
    decision = Decision(state)
    decision.emit(
        ctx, lifecycle(state, ctx, ev.LinkWorkerAssigned, link_worker_id=c.link_worker_id)
    )
    return decision


def contact_attempt(state: CaseState, c: cmd.RecordContactAttempt, ctx: Context) -> Decision:
    require_stage(state, "record a contact attempt", "contacting")
    ep = state.episode
    ep.contact_attempts += 1
    decision = Decision(state)
    if c.outcome == "contacted":
        ep.stage = "assessment"
        clear(ep, "first_contact")
    decision.emit(
        ctx,
        lifecycle(
            state,
            ctx,
            ev.ContactAttempted,
            attempt=ep.contact_attempts,
            outcome=c.outcome,
            method=c.method,
        ),
    )
    if c.outcome != "contacted" and ep.contact_attempts >= state.config.contact_attempts:
        ep.stage = "dormant"
        decision.emit(ctx, lifecycle(state, ctx, ev.UnableToContact, attempts=ep.contact_attempts))
        go_dormant(state, decision, ctx, "unable_to_contact")
    return decision


def reenter(state: CaseState, c: cmd.ReEnter, ctx: Context) -> Decision:
    """The rule for a referral that arrives while an episode is active: it joins that
    episode (its reasons are added and the link worker sees it); only a dormant case
    opens a new episode, so one person never has two episodes running at once."""
    ep = state.episode
    decision = Decision(state)
    if ep.stage != "dormant":
        for code in c.reason_codes:
            if code not in ep.reason_codes:
                ep.reason_codes.append(code)
        decision.emit(
            ctx,
            lifecycle(
                state,
                ctx,
                ev.ReferralJoined,
                source=c.source,
                referrer_org_id=c.referrer_org_id,
                reason_codes=list(c.reason_codes),
            ),
        )
        return decision
    state.past_episodes.append(state.summary())
    del state.past_episodes[:-MAX_PAST_EPISODES]
    previous = ep.number
    state.episode = Episode(
        number=previous + 1,
        opened_at=ctx.now,
        source=c.source,
        referrer_org_id=c.referrer_org_id,
        reason_codes=list(c.reason_codes),
        link_worker_id=ep.link_worker_id,
    )
    decision.emit(
        ctx,
        lifecycle(
            state,
            ctx,
            ev.ReferralReentered,
            previous_episode=previous,
            source=c.source,
            referrer_org_id=c.referrer_org_id,
            reason_codes=list(c.reason_codes),
        ),
    )
    return decision


def end_episode(state: CaseState, c: cmd.EndEpisode, ctx: Context) -> Decision:
    require_stage(state, "end the episode", *stages.OPEN)
    decision = Decision(state)
    go_dormant(state, decision, ctx, c.reason_code)
    return decision


def withdraw_consent(state: CaseState, c: cmd.WithdrawConsent, ctx: Context) -> Decision:
    if not state.consent_to_share:
        raise Conflict("consent to share is already withdrawn")
    state.consent_to_share = False
    decision = Decision(state)
    cancelled = handoffs.close_live(state, decision, ctx, "consent_withdrawn")
    decision.events.insert(
        0,
        (
            ctx.new_id(),
            lifecycle(state, ctx, ev.ConsentWithdrawn, cancelled_handoffs=cancelled),
        ),
    )
    return decision


def give_consent(state: CaseState, c: cmd.GiveConsent, ctx: Context) -> Decision:
    if state.consent_to_share:
        raise Conflict("consent to share is already on record")
    state.consent_to_share = True
    decision = Decision(state)
    decision.emit(ctx, lifecycle(state, ctx, ev.ConsentGiven))
    return decision


def reschedule(state: CaseState, c: cmd.RescheduleDeadline, ctx: Context) -> Decision:
    ep = state.episode
    if not is_open(ep, c.deadline):
        open_ = ", ".join(sorted({*ep.deadlines, *ep.overdue})) or "none"
        raise Conflict(f"deadline must name an open deadline (open: {open_})")
    if c.due_at <= ctx.now:
        raise Rejected("a rescheduled deadline must be in the future")
    clear(ep, c.deadline)
    ep.deadlines[c.deadline] = c.due_at
    decision = Decision(state)
    decision.emit(
        ctx, lifecycle(state, ctx, ev.DueDatesChanged, deadline=c.deadline, due_at=c.due_at)
    )
    return decision


def go_dormant(state: CaseState, decision: Decision, ctx: Context, reason: str) -> None:
    """Dormant, never closed: every live handoff closes (the providers' access to the
    person ends with it), timers that chase the person stop, the follow-up for a
    sustained outcome stays, and the person can come back as a new episode."""
    handoffs.close_live(state, decision, ctx, reason)
    ep = state.episode
    ep.stage = "dormant"
    ep.dormant_reason = reason
    ep.ended_at = ctx.now
    keep = {"followup"} if reason == "review_complete" else set()
    ep.deadlines = {k: v for k, v in ep.deadlines.items() if k in keep}
    ep.overdue = [k for k in ep.overdue if k in keep]
    decision.emit(ctx, lifecycle(state, ctx, ev.ReferralDormant, reason_code=reason))
