"""Outcome facts for the payment engine, each stated at most once per episode.

The pathway states what happened, with its evidence; the rate card decides what it is
worth. Engagement needs an assessment with a baseline measure and an agreed plan;
connection needs the configured number of attended sessions; the review and the
follow-up compare each instrument with its baseline by the instrument's own rule.
"""

from __future__ import annotations

from events import outcome as oc
from events.completion import CompletionReported
from pathway.measures import Change, MeasureError, Scores, default_registry
from pathway.rules.base import Context, Decision, scores
from pathway.state import CaseState, Measurement

Comparison = dict[str, tuple[Change, bool]]


def _common(state: CaseState, ctx: Context, evidence: list[str]) -> dict[str, object]:
    asked = state.episode.consent_purposes
    sharing = ["provider_sharing"] if state.consent_to_share else []
    return {
        "referral_id": state.referral_id,
        "episode": state.episode.number,
        "partner_id": state.partner_id,
        "locality": state.locality,
        "occurred_at": ctx.now,
        "evidence_event_ids": evidence[:50],
        "consent_recorded": state.consent_to_share
        and all(m.consent_ref for m in state.episode.baseline.values()),
        "consent_purposes": None if asked is None else sharing + asked,
    }


def _once(state: CaseState, name: str) -> bool:
    if name in state.episode.outcomes:
        return False
    state.episode.outcomes.append(name)
    return True


def engagement(state: CaseState, decision: Decision, ctx: Context) -> None:
    ep = state.episode
    if not ep.baseline or not _once(state, "engagement"):
        return
    evidence = ep.evidence.get("assessment", []) + ep.evidence.get("plan", [])[:1]
    decision.emit(
        ctx,
        oc.EngagementAchieved(
            **_common(state, ctx, evidence),
            baseline=[scores(m) for m in ep.baseline.values()],
        ),
    )


def connection(state: CaseState, decision: Decision, ctx: Context) -> None:
    ep = state.episode
    if ep.attended_sessions < state.config.connection_sessions:
        return
    if not _once(state, "connection"):
        return
    decision.emit(
        ctx,
        oc.ConnectionAchieved(
            **_common(state, ctx, ep.evidence.get("attendance", [])),
            attended_sessions=ep.attended_sessions,
        ),
    )


def completion(
    state: CaseState, decision: Decision, ctx: Context, report: CompletionReported, report_id: str
) -> None:
    """Completion is stated with the episode's first completion report; recording the
    report again (a correction) replaces the report, not the fact that it was made."""
    if not _once(state, "completion"):
        return
    decision.emit(
        ctx,
        oc.CompletionAchieved(
            **_common(state, ctx, [report_id]),
            report_version=report.report_version,
            goal_count=report.goal_count,
            goals_achieved=sum(1 for g in report.goals if g.achieved == "achieved"),
            goals_partly_achieved=sum(1 for g in report.goals if g.achieved == "partly_achieved"),
            ongoing_plan=list(report.ongoing_plan),
            attended_sessions=report.attended_sessions,
        ),
    )


def compare(baseline: dict[str, Measurement], followup: dict[str, Measurement]) -> Comparison:
    registry = default_registry()
    result: Comparison = {}
    for code, later in followup.items():
        first = baseline.get(code)
        if first is None or first.version != later.version:
            continue
        try:
            change = registry.compare(_scores(first), _scores(later))
        except MeasureError:
            continue  # not comparable (the commands refuse this; a safety net, never a crash)
        result[code] = (change, change.improved)
    return result


def wellbeing_reviewed(
    state: CaseState, decision: Decision, ctx: Context, changes: Comparison
) -> None:
    _pairs_event(state, decision, ctx, changes, "wellbeing_reviewed", "review")


def sustained(state: CaseState, decision: Decision, ctx: Context, changes: Comparison) -> None:
    _pairs_event(state, decision, ctx, changes, "sustained_reviewed", "followup")


def _pairs_event(
    state: CaseState,
    decision: Decision,
    ctx: Context,
    changes: Comparison,
    name: str,
    stage_measures: str,
) -> None:
    if not changes or not _once(state, name):
        return
    ep = state.episode
    later = ep.review_measures if stage_measures == "review" else ep.followup_measures
    reviewed = ep.review_measures if stage_measures == "followup" else {}
    pairs = [
        oc.MeasurePair(
            baseline=scores(ep.baseline[code]),
            followup=scores(later[code]),
            improved=better,
            review=scores(reviewed[code]) if code in reviewed else None,
        )
        for code, (_, better) in changes.items()
    ]
    evidence = ep.evidence.get("assessment", []) + ep.evidence.get(stage_measures, [])[-1:]
    cls = oc.WellbeingReviewed if name == "wellbeing_reviewed" else oc.SustainedReviewed
    decision.emit(ctx, cls(**_common(state, ctx, evidence), pairs=pairs))


def _scores(m: Measurement) -> Scores:
    return Scores(instrument=m.instrument, version=m.version, raw=m.raw, derived=m.derived)
