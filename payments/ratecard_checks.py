"""What field types cannot say about a rate card: the checks that run after it parses,
each naming the field at fault in words a contract manager can act on."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pathway.measures import PER_ITEM_KINDS, Registry, UnknownInstrument
from payments.errors import RateCardError
from payments.ratecard import (
    COMPLETION,
    CONNECTION,
    DISTAL,
    MEASURED,
    InstrumentRule,
    Metric,
    RateCard,
)


def describe(err: Any) -> str:
    loc = [str(part) for part in err["loc"] if part != "[key]"]
    where = ".".join(loc) or "(rate card)"
    kind, ctx = err["type"], err.get("ctx", {})
    messages = {
        "missing": "is required",
        "extra_forbidden": "is not a rate-card field (check the spelling)",
        "greater_than": f"must be > {ctx.get('gt')}",
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "int_type": "must be a whole number (money is in pence)",
        "float_type": "must be a number",
        "bool_type": "must be true or false",
        "too_short": "must not be empty",
        "string_pattern_mismatch": "may only use letters, digits and _ . : -",
        "literal_error": f"must be {ctx.get('expected')}",
    }
    if kind.startswith("date"):
        return f"{where}: must be a date such as 2026-04-01"
    return f"{where}: {messages.get(kind, err['msg'])}"


def check_consistent(card: RateCard, registry: Registry) -> None:
    """What field types cannot say; the first problem is raised, naming its field."""

    def fail(where: str, problem: str) -> None:
        raise RateCardError(f"{where}: {problem}")

    if card.end_date < card.start_date:
        fail("end_date", f"must be on or after start_date ({card.start_date})")
    if not card.within_contract(card.effective_from):
        fail("effective_from", "must fall between start_date and end_date")
    try:
        ZoneInfo(card.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail("timezone", "must be a time zone name such as Europe/London")
    paid_by: dict[tuple[str, str | None], str] = {}
    for mid, metric in card.metrics.items():
        where = f"metrics.{mid}"
        kind = (metric.outcome_type, metric.measure)
        if kind in paid_by:
            field = "measure" if metric.measure else "outcome_type"
            fail(f"{where}.{field}", f"{paid_by[kind]} already pays for it")
        paid_by[kind] = mid
        problem = _kind_problem(metric)
        if problem:
            fail(f"{where}.{problem[0]}", problem[1])
        if metric.max_pence is not None and metric.max_pence < metric.price_pence:
            fail(f"{where}.max_pence", f"must be at least price_pence ({metric.price_pence})")
        if (metric.min_sessions is not None) != (metric.outcome_type == CONNECTION):
            fail(f"{where}.min_sessions", "is required for, and only for, connection metrics")
        measured = metric.outcome_type in MEASURED
        if measured and not metric.instruments:
            fail(f"{where}.instruments", "must name at least one instrument and its rule")
        if metric.instruments and not measured:
            fail(f"{where}.instruments", "only apply to review and follow-up metrics")
        for code, rule in metric.instruments.items():
            problem = _instrument_problem(registry, code, rule)
            if problem:
                fail(f"{where}.instruments.{code}{problem[0]}", problem[1])
        problem = _combine_problem(metric)
        if problem:
            fail(f"{where}.{problem[0]}", problem[1])
        for required in metric.requires:
            if required == mid or required not in card.metrics:
                fail(f"{where}.requires", "must name other metrics of this rate card")
        if _requires_itself(card, mid):
            fail(f"{where}.requires", "must not lead back to this metric")
    if card.payers and sum(p.share_basis_points for p in card.payers.values()) != 10_000:
        fail("payers", "shares must add up to 10000 basis points (100%)")
    if card.caps.per_person_pence is not None:
        cheapest = min(m.price_pence for m in card.metrics.values())
        if card.caps.per_person_pence < cheapest:
            fail("caps.per_person_pence", f"must be at least the cheapest price ({cheapest})")


# Fields that belong to one kind of outcome: (field, the outcome type, what it is called).
_ONLY_FOR = (
    ("min_goals_achieved", COMPLETION, "completion"),
    ("ongoing_plan_required", COMPLETION, "completion"),
    ("measure", DISTAL, "distal"),
    ("window_months", DISTAL, "distal"),
    ("min_reduction", DISTAL, "distal"),
    ("min_reduction_percent", DISTAL, "distal"),
)


def _kind_problem(metric: Metric) -> tuple[str, str] | None:
    """``(field, problem)`` when a metric sets a field its kind of outcome has no use for,
    or a distal metric leaves out what it compares."""
    for field, outcome_type, kind in _ONLY_FOR:
        if getattr(metric, field) is not None and metric.outcome_type != outcome_type:
            return field, f"only applies to {kind} metrics ({outcome_type})"
    if metric.outcome_type == DISTAL and metric.measure is None:
        return "measure", 'is required for distal metrics, e.g. "gp_appointments"'
    return None


def _instrument_problem(
    registry: Registry, code: str, rule: InstrumentRule
) -> tuple[str, str] | None:
    """``(field suffix, problem)``, or None when the rule fits the instrument."""
    try:
        inst = registry.get(code)
    except UnknownInstrument:
        return "", f"unknown instrument; known instruments: {', '.join(registry.codes())}"
    if inst.scoring != "sum" and not rule.min_change.is_integer():
        return ".min_change", f"must be a whole number of bands, steps or levels for {code}"
    low, high = inst.threshold_bounds()  # what the literature supports, from the registry
    if not low <= rule.min_change <= high:
        return ".min_change", f"must be from {low:g} to {high:g} for {code}"
    per_item = inst.scoring in PER_ITEM_KINDS
    if rule.min_areas is not None:
        if not per_item:
            return ".min_areas", f"{code} has one score, so min_areas does not apply"
        if rule.min_areas > len(inst.items):
            return ".min_areas", f"must be at most {len(inst.items)} for {code}"
    if rule.no_item_worse is not None and not per_item:
        return ".no_item_worse", f"{code} has one score, so no_item_worse does not apply"
    return None


def _combine_problem(metric: Metric) -> tuple[str, str] | None:
    """``(field, problem)`` when the metric does not say how its instruments combine."""
    if metric.combine is None and len(metric.instruments) > 1:
        # No default: "any" would let more instruments recorded mean more chances to pay.
        return "combine", 'must be "any", "all" or "primary" when several instruments count'
    if metric.combine is not None and not metric.instruments:
        return "combine", "only applies to metrics with instruments"
    if (metric.primary is not None) != (metric.combine == "primary"):
        return "primary", 'is required for, and only for, combine = "primary"'
    if metric.primary is not None and metric.primary not in metric.instruments:
        return "primary", "must be one of the metric's instruments"
    return None


def _requires_itself(card: RateCard, start: str) -> bool:
    seen: set[str] = set()
    todo = list(card.metrics[start].requires)
    while todo:
        mid = todo.pop()
        if mid == start:
            return True
        if mid not in seen and mid in card.metrics:
            seen.add(mid)
            todo.extend(card.metrics[mid].requires)
    return False
