"""Does an outcome's evidence meet a metric's rule on the rate card?

The pathway already judged each measure by the instrument's published change; the rate
card may be stricter (WEMWBS +8 instead of +3, Star up a step in three areas), so the
payment engine judges again from the scores themselves, with the instrument registry
(``pathway.measures``) doing the comparing: one implementation of "improved".
"""

from __future__ import annotations

from dataclasses import dataclass

from events.outcome import (
    ConnectionAchieved,
    EngagementAchieved,
    MeasurePair,
    OutcomeEvent,
    SustainedReviewed,
    WellbeingReviewed,
)
from events.referral import MeasureScores
from pathway.measures import MeasureError, Registry, Scores
from payments.ratecard import Metric


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
        return _improvement(outcome.pairs, metric, registry)
    return Evidence(False, f"{type(outcome).__name__} is not an outcome a metric can pay for")


def _improvement(pairs: list[MeasurePair], metric: Metric, registry: Registry) -> Evidence:
    """Any instrument on the rate card meeting its own rule qualifies."""
    met: list[str] = []
    ids: list[str] = []
    unmet: list[str] = []
    for pair in pairs:
        code = pair.baseline.instrument
        rule = metric.instruments.get(code)
        if rule is None:
            unmet.append(f"{code} is not on the rate card")
            continue
        try:
            change = registry.compare(
                _scores(pair.baseline),
                _scores(pair.followup),
                threshold=rule.min_change,
                min_areas=rule.min_areas,
            )
        except MeasureError as exc:
            unmet.append(str(exc))
            continue
        if change.improved:
            met.append(change.detail)
            ids += [pair.baseline.measurement_id, pair.followup.measurement_id]
        else:
            unmet.append(change.detail)
    if met:
        return Evidence(True, "; ".join(met), tuple(ids))
    if not pairs:
        return Evidence(False, "no follow-up measure was compared with a baseline")
    return Evidence(False, "no instrument met its rule: " + "; ".join(unmet))


def _scores(m: MeasureScores) -> Scores:
    return Scores(instrument=m.instrument, version=m.version, raw=m.raw, derived=m.derived)
