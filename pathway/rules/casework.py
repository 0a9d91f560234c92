"""Casework rules: assessment, the personal plan, check-in, review and follow-up, and
the level 1 short path (signposting, then a signpost check instead of a review)."""

from __future__ import annotations

from events import referral as ev
from events.casework import SignpostChecked, Signposted, SignpostRef
from events.handoff import HandoffRequested
from pathway import commands as cmd
from pathway import stages
from pathway.measures import MeasureError, default_registry
from pathway.rules import goals, handoffs, outcomes
from pathway.rules.base import (
    Conflict,
    Context,
    Decision,
    Rejected,
    due,
    lifecycle,
    require_stage,
    scores,
)
from pathway.rules.intake import go_dormant
from pathway.state import CaseState, Handoff, Measurement, clear, is_open


def assessment(state: CaseState, c: cmd.RecordAssessment, ctx: Context) -> Decision:
    require_stage(state, "record the assessment", "assessment")
    if c.support_level not in state.config.support_levels:
        levels = ", ".join(state.config.support_levels)
        raise Rejected(f"support_level must be one of: {levels}")
    ep = state.episode
    decision = Decision(state)
    event_id = ctx.new_id()
    ep.baseline = _measure(c.measures, c.actor_id, ctx, event_id)
    ep.support_level = c.support_level
    ep.stage = "planning"
    if c.consent is not None:
        asked = {"payment_evidence": c.consent.payment_evidence, "evaluation": c.consent.evaluation}
        ep.consent_purposes = [purpose for purpose, given in asked.items() if given]
    decision.events.append(
        (
            event_id,
            lifecycle(
                state,
                ctx,
                ev.ReferralAssessed,
                support_level=c.support_level,
                baseline=[scores(m) for m in ep.baseline.values()],
                consent_purposes=ep.consent_purposes,
            ),
        )
    )
    ep.evidence["assessment"] = [event_id]
    return decision


def agree_plan(state: CaseState, c: cmd.AgreePlan, ctx: Context) -> Decision:
    # Not at "review": the review is recorded first, and its decision opens a new cycle.
    require_stage(state, "agree a plan", *stages.PLANNABLE)
    if c.prescriptions and not state.consent_to_share:
        raise Conflict(
            "the person has not consented to share with providers; record consent "
            "before prescribing, or agree a plan without prescriptions"
        )
    ep = state.episode
    if len(ep.handoffs) + len(c.prescriptions) > 100:
        raise Rejected("an episode can hold at most 100 handoffs; start a new episode")
    level = state.config.level(ep.support_level)
    if level.signposting_only:
        if c.prescriptions:
            raise Conflict(
                f"support level {ep.support_level} is information and signposting only: no "
                "provider handoffs; give signposts, or move the person to a fuller level "
                "at the signpost check"
            )
        if not c.signposts:
            raise Rejected(f"a support level {ep.support_level} plan needs at least one signpost")
    for signpost in c.signposts:
        if signpost.service_id is None and signpost.note_id is None:
            raise Rejected(
                "a signpost names a directory service_id, or a note_id (a case note) for "
                "something outside the directory"
            )
    planned_goals = goals.from_plan(state, c)
    # A plan agreed after ongoing support starts a cycle too: that stage has no review
    # date, and "supported" without one would never reach review.
    new_cycle = ep.stage in stages.NEW_PLAN_CYCLE
    ep.plan_version += 1
    ep.goal_count = len(planned_goals)
    ep.goals = planned_goals
    ep.path = "signposting" if level.signposting_only else "full"
    ep.stage = "supported"
    if ep.first_plan_at is None:
        ep.first_plan_at = ctx.now
    if new_cycle and level.signposting_only:
        # The short path: no check-in; the review date is the signpost check.
        ep.deadlines["review"] = due(state, ctx.now, level.check_after)
    elif new_cycle:
        cfg, lvl = state.config, ep.support_level
        ep.deadlines["midpoint_checkin"] = due(
            state, ctx.now, cfg.duration("midpoint_checkin_after", lvl)
        )
        ep.deadlines["review"] = due(state, ctx.now, cfg.duration("review_after", lvl))
    if c.prescriptions and not is_open(ep, "disengagement"):
        # The no-attendance clock starts with the first prescription of the cycle.
        ep.deadlines["disengagement"] = due(state, ctx.now, state.config.disengage_no_attendance)
    decision = Decision(state)
    plan_event_id = ctx.new_id()
    # A revision replaces the prescriptions: the live handoffs it drops are cancelled,
    # the ones it keeps carry on (matched by provider and service).
    live = handoffs.cancel_dropped(
        state, decision, ctx, {(p.provider_id, p.service_id) for p in c.prescriptions}
    )
    refs = []
    for p in c.prescriptions:
        if (p.provider_id, p.service_id) in live:
            live.discard((p.provider_id, p.service_id))
            continue
        handoff = Handoff(
            handoff_id=ctx.new_id(),
            provider_id=p.provider_id,
            service_id=p.service_id,
            requested_at=ctx.now,
        )
        ep.handoffs[handoff.handoff_id] = handoff
        respond_by = due(state, ctx.now, state.config.provider_response_due)
        ep.deadlines[f"provider_response:{handoff.handoff_id}"] = respond_by
        refs.append(
            ev.PrescriptionRef(
                **handoff.model_dump(include={"handoff_id", "provider_id", "service_id"})
            )
        )
        decision.emit(
            ctx,
            HandoffRequested(
                handoff_id=handoff.handoff_id,
                referral_id=state.referral_id,
                episode=ep.number,
                provider_id=p.provider_id,
                service_id=p.service_id,
                support_level=ep.support_level or "",
                respond_by=respond_by,
                occurred_at=ctx.now,
            ),
        )
    decision.events.insert(
        0,
        (
            plan_event_id,
            lifecycle(
                state,
                ctx,
                ev.PlanAgreed,
                plan_version=ep.plan_version,
                goal_count=ep.goal_count,
                prescriptions=refs,
                midpoint_due=ep.deadlines.get("midpoint_checkin"),
                review_due=ep.deadlines["review"],
            ),
        ),
    )
    ep.evidence.setdefault("plan", []).append(plan_event_id)
    if c.goals:
        goals.emit(state, "plan", decision, ctx)
    if c.signposts:
        decision.emit(
            ctx,
            lifecycle(
                state,
                ctx,
                Signposted,
                plan_version=ep.plan_version,
                signposts=[
                    SignpostRef(service_id=s.service_id, category=s.category) for s in c.signposts
                ],
                check_due=ep.deadlines["review"] if ep.path == "signposting" else None,
            ),
        )
    outcomes.engagement(state, decision, ctx)
    return decision


def checkin(state: CaseState, c: cmd.RecordCheckin, ctx: Context) -> Decision:
    require_stage(state, "record the mid-point check-in", *stages.SUPPORTED)
    ep = state.episode
    _check_followup_instruments(state, c.measures, "mid-point check-in")
    decision = Decision(state)
    event_id = ctx.new_id()
    if c.measures:
        # A second check-in with measures replaces the first's: one mid-point per cycle.
        ep.midpoint_measures = _measure(c.measures, c.actor_id, ctx, event_id)
    clear(ep, "midpoint_checkin")
    changes = outcomes.compare(ep.baseline, ep.midpoint_measures) if c.measures else {}
    decision.events.append(
        (
            event_id,
            lifecycle(
                state,
                ctx,
                ev.CheckinRecorded,
                on_track=c.on_track,
                measures=[scores(m) for m in ep.midpoint_measures.values()] if c.measures else [],
                improved_instruments=[code for code, (_, better) in changes.items() if better],
            ),
        )
    )
    goals.update(state, c.goals, "checkin", decision, ctx)
    return decision


def signpost_check(state: CaseState, c: cmd.RecordSignpostCheck, ctx: Context) -> Decision:
    require_stage(state, "record the signpost check", *stages.SUPPORTED)
    ep = state.episode
    if ep.path != "signposting":
        raise Conflict(
            "the signpost check ends a level 1 signposting plan; this plan is on the full "
            "path, so record its review"
        )
    if c.outcome == "needs_more_support":
        level = c.support_level
        if level not in state.config.support_levels or state.config.level(level).signposting_only:
            fuller = [
                lv
                for lv in state.config.support_levels
                if not state.config.level(lv).signposting_only
            ]
            raise Rejected(
                "needs_more_support moves the person to a fuller support level: give "
                f"support_level, one of {', '.join(fuller)}"
            )
    elif c.support_level is not None:
        raise Rejected("support_level is only given with needs_more_support")
    decision = Decision(state)
    for name in ("review", "midpoint_checkin"):
        clear(ep, name)
    if c.outcome == "needs_more_support":
        ep.support_level = c.support_level
        ep.path = "full"
        ep.stage = "planning"
    checked = lifecycle(
        state, ctx, SignpostChecked, outcome=c.outcome, support_level=c.support_level
    )
    decision.emit(ctx, checked)
    ep.evidence.setdefault("review", []).append(decision.events[-1][0])
    if c.outcome != "needs_more_support":
        go_dormant(state, decision, ctx, "review_complete")
    return decision


def review(state: CaseState, c: cmd.RecordReview, ctx: Context) -> Decision:
    require_stage(state, "record the review", *stages.SUPPORTED)
    ep = state.episode
    if ep.path == "signposting":
        raise Conflict(
            "a level 1 signposting plan ends with the signpost check, not a review; "
            "record the signpost check"
        )
    review_due = ep.deadlines.get("review")
    if review_due and ctx.now < review_due and not c.early_reason_code:
        raise Conflict(
            f"the review is not due until {review_due:%d %b %Y %H:%M} UTC; to review early, "
            "give an early_reason_code"
        )
    _check_followup_instruments(state, c.measures, "review")
    decision = Decision(state)
    event_id = ctx.new_id()
    ep.review_measures = _measure(c.measures, c.actor_id, ctx, event_id)
    ep.review_decision = c.decision
    for name in ("review", "midpoint_checkin"):
        clear(ep, name)
    followup_due = None
    if "followup" not in ep.evidence and ep.first_plan_at is not None:
        after = state.config.duration("followup_after", ep.support_level)
        followup_due = max(due(state, ep.first_plan_at, after), ctx.now)
        ep.deadlines["followup"] = followup_due
    ep.stage = (
        "planning"
        if c.decision == "new_plan"
        else "ongoing_support"
        if c.decision == "ongoing_support"
        else "dormant"
    )
    changes = outcomes.compare(ep.baseline, ep.review_measures)
    decision.events.append(
        (
            event_id,
            lifecycle(
                state,
                ctx,
                ev.ReferralReviewed,
                decision=c.decision,
                followup=[scores(m) for m in ep.review_measures.values()],
                improved_instruments=[code for code, (_, better) in changes.items() if better],
                followup_due=followup_due,
            ),
        )
    )
    ep.evidence.setdefault("review", []).append(event_id)
    goals.update(state, c.goals, "review", decision, ctx)
    outcomes.wellbeing_reviewed(state, decision, ctx, changes)
    if c.decision == "dormant":
        go_dormant(state, decision, ctx, "review_complete")
    return decision


def followup(state: CaseState, c: cmd.RecordFollowup, ctx: Context) -> Decision:
    ep = state.episode
    if not is_open(ep, "followup"):
        raise Conflict(
            "no sustained-outcome follow-up is open for this episode: it opens at the review"
        )
    followup_due = ep.deadlines.get("followup")
    if followup_due and ctx.now < followup_due and not c.early_reason_code:
        raise Conflict(
            f"the follow-up is not due until {followup_due:%d %b %Y %H:%M} UTC; to record "
            "it early, give an early_reason_code"
        )
    _check_followup_instruments(state, c.measures, "follow-up")
    decision = Decision(state)
    event_id = ctx.new_id()
    ep.followup_measures = _measure(c.measures, c.actor_id, ctx, event_id)
    clear(ep, "followup")
    ep.evidence["followup"] = [event_id]
    changes = outcomes.compare(ep.baseline, ep.followup_measures)
    decision.events.append(
        (
            event_id,
            lifecycle(
                state,
                ctx,
                ev.FollowupRecorded,
                measures=[scores(m) for m in ep.followup_measures.values()],
                sustained_instruments=[code for code, (_, better) in changes.items() if better],
            ),
        )
    )
    goals.update(state, c.goals, "followup", decision, ctx)
    outcomes.sustained(state, decision, ctx, changes)
    return decision


def _measure(
    inputs: list[cmd.MeasureInput], actor_id: str, ctx: Context, event_id: str
) -> dict[str, Measurement]:
    registry = default_registry()
    measured: dict[str, Measurement] = {}
    for item in inputs:
        if item.instrument in measured:
            raise Rejected("an instrument was given twice; record one of each instrument")
        try:
            result = registry.score(item.instrument, dict(item.answers))
        except MeasureError as exc:
            raise Rejected(str(exc)) from None
        measured[item.instrument] = Measurement(
            measurement_id=ctx.new_id(),
            instrument=result.instrument,
            version=result.version,
            raw=dict(result.raw),
            derived=dict(result.derived),
            administered_at=item.administered_at or ctx.now,
            administered_by=actor_id,
            consent_ref=item.consent_ref,
            event_id=event_id,
        )
    return measured


def _check_followup_instruments(
    state: CaseState, measures: list[cmd.MeasureInput], what: str
) -> None:
    baseline = state.episode.baseline
    for item in measures:
        if item.instrument not in baseline:
            have = ", ".join(sorted(baseline)) or "none"
            raise Rejected(
                f"{item.instrument} has no baseline in this episode, so the {what} cannot "
                f"compare it (baseline measures: {have})"
            )
        # An instrument with items a person may leave out (MYCAW's second concern): what the
        # baseline scored is scored again, so the two can be compared.
        optional = default_registry().get(item.instrument).optional_items
        left = [k for k in optional if k in baseline[item.instrument].raw and k not in item.answers]
        if left:
            raise Rejected(
                f"{item.instrument} {', '.join(left)} was scored at the baseline, so the {what} "
                "scores it again"
            )
