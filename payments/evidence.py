"""Does an outcome's evidence meet a metric's rule on the rate card?

The pathway already judged each measure by the instrument's published change; the rate
card may be stricter (WEMWBS +8 instead of +3, Star up a step in three areas), so the
payment engine judges again from the scores themselves, with the instrument registry
(``pathway.measures``) doing the comparing: one implementation of "improved".
"""

from __future__ import annotations

from dataclasses import dataclass

from events.outcome import (
    CompletionAchieved,
    ConnectionAchieved,
    DistalChange,
    EngagementAchieved,
    MeasurePair,
    OutcomeEvent,
    SustainedReviewed,
    WellbeingReviewed,
)
from events.referral import MeasureScores
from pathway.measures import PER_ITEM_KINDS, MeasureError, Registry, Scores
from payments.ratecard import InstrumentRule, Metric


@dataclass(frozen=True)
class Evidence:
    met: bool
    detail: str  # what met the rule, or why nothing did; codes and numbers, no free text
    measurement_ids: tuple[str, ...] = ()


def assess(outcome: OutcomeEvent, metric: Metric, registry: Registry) -> Evidence:
    if isinstance(outcome, EngagementAchieved):
        codes = ", ".join(sorted({m.instrument for m in outcome.baseline}))
        ids = tuple(m.measurement_id for m in outcome.baseline)
        if not ids:
            return Evidence(False, "engagement needs at least one baseline measure")
        return Evidence(True, f"assessment with baseline {codes} and an agreed plan", ids)
    if isinstance(outcome, ConnectionAchieved):
        need = metric.min_sessions or 1
        detail = f"{outcome.attended_sessions} attended sessions (the rate card needs {need})"
        return Evidence(outcome.attended_sessions >= need, detail)
    if isinstance(outcome, WellbeingReviewed | SustainedReviewed):
        sustained = isinstance(outcome, SustainedReviewed)
        return _improvement(outcome.pairs, metric, registry, sustained)
    if isinstance(outcome, CompletionAchieved):
        return _completion(outcome, metric)
    if isinstance(outcome, DistalChange):
        return _distal(outcome, metric)
    return Evidence(False, f"{type(outcome).__name__} is not an outcome a metric can pay for")


def _completion(outcome: CompletionAchieved, metric: Metric) -> Evidence:
    need_goals = metric.min_goals_achieved or 0
    detail = (
        f"completion report {outcome.report_version}: {outcome.goals_achieved} of "
        f"{outcome.goal_count} goals achieved (the rate card needs {need_goals}), "
        f"ongoing plan {', '.join(outcome.ongoing_plan) or 'none'}"
    )
    if outcome.goals_achieved < need_goals:
        return Evidence(False, detail)
    if metric.ongoing_plan_required is not False and not outcome.ongoing_plan:
        return Evidence(False, detail + " (the rate card needs an ongoing plan)")
    return Evidence(True, detail)


def _distal(outcome: DistalChange, metric: Metric) -> Evidence:
    """A fall in the count from the before-window to the after-window: at least
    ``min_reduction`` (default 1), and at least ``min_reduction_percent`` of the before
    count when set. Nothing before means nothing can fall: not met."""
    before, after = outcome.before_count, outcome.after_count
    detail = (
        f"{outcome.measure}: {before} in {outcome.before_from:%Y-%m} to "
        f"{outcome.before_to:%Y-%m}, {after} in {outcome.after_from:%Y-%m} to "
        f"{outcome.after_to:%Y-%m}"
    )
    if outcome.window_months != metric.window_months:
        return Evidence(
            False,
            f"{detail}: compared {outcome.window_months}-month windows; the rate card pays on "
            f"{metric.window_months}",
        )
    need = metric.min_reduction or 1
    fell = before - after
    if fell < need:
        return Evidence(False, f"{detail}: fell by {fell}, the rate card needs {need}")
    pct = metric.min_reduction_percent
    if pct is not None and fell * 100 < pct * before:
        return Evidence(False, f"{detail}: fell by {fell}, less than {pct}% of {before}")
    return Evidence(True, f"{detail}: fell by {fell}")


def _improvement(
    pairs: list[MeasurePair], metric: Metric, registry: Registry, sustained: bool
) -> Evidence:
    """The metric's counted instruments, each judged by its own rule, combined as the rate
    card says (``any``, ``all`` or ``primary``). Instruments recorded but not counted
    change nothing, so recording more of them cannot raise the chance of payment."""
    if not pairs:
        return Evidence(False, "no follow-up measure was compared with a baseline")
    by_code = {pair.baseline.instrument: pair for pair in pairs}
    counted = metric.counted()
    met: list[str] = []
    # (instruments on the card but not counted, under "primary", are evaluation only)
    unmet = [
        f"{code} is not on the rate card" for code in by_code if code not in metric.instruments
    ]
    ids: list[str] = []
    for code in counted:
        pair = by_code.get(code)
        if pair is None:
            unmet.append(f"{code} was not measured at both points")
            continue
        ok, detail = _judge(pair, metric.instruments[code], registry, sustained)
        (met if ok else unmet).append(detail)
        if ok:
            ids += [pair.baseline.measurement_id, pair.followup.measurement_id]
            ids += [pair.review.measurement_id] if sustained and pair.review else []
    needed = 1 if (metric.combine or "any") == "any" else len(counted)
    if len(met) >= needed:
        return Evidence(True, "; ".join(met), tuple(ids))
    if metric.combine == "all" and met:
        return Evidence(False, "every counted instrument must meet its rule: " + "; ".join(unmet))
    return Evidence(False, "no instrument met its rule: " + "; ".join(unmet))


def _judge(
    pair: MeasurePair, rule: InstrumentRule, registry: Registry, sustained: bool
) -> tuple[bool, str]:
    """One instrument against its rule. Sustained means the improvement the review showed
    is still there at the follow-up: both, against the same baseline, meet the rule."""
    code = pair.baseline.instrument
    stages = [("", pair.followup)]
    if sustained:
        if pair.review is None:
            return False, f"{code} was not measured at the review, so nothing is sustained"
        stages = [("review: ", pair.review), ("follow-up: ", pair.followup)]
    details: list[str] = []
    for label, later in stages:
        try:
            change = registry.compare(
                _scores(pair.baseline),
                _scores(later),
                threshold=rule.min_change,
                min_areas=rule.min_areas,
                no_item_worse=rule.forbids_worse and _per_item(registry, code),
            )
        except MeasureError as exc:
            return False, f"{label}{exc}"
        details.append(label + change.detail)
        if not change.improved:
            return False, "; ".join(details)
    return True, "; ".join(details)


def _per_item(registry: Registry, code: str) -> bool:
    return registry.get(code).scoring in PER_ITEM_KINDS


def _scores(m: MeasureScores) -> Scores:
    return Scores(instrument=m.instrument, version=m.version, raw=m.raw, derived=m.derived)
