"""A rate card: what one outcomes contract pays for, how much, and up to which caps.

A rate card is a TOML file a contract manager can read (``docs/rate-card.md`` describes
every field); loading one either gives a fully checked ``RateCard`` or raises
``RateCardError`` naming the field, e.g.
``metrics.M3.instruments.WEMWBS.min_change: must be > 0``. Money is in pence, as whole
numbers, so nothing is ever rounded. Versions of one contract are put together by
``payments.ratebook.RateCardBook``.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from events.ids import Id
from events.outcome import (
    OUTCOME_TYPES,
    ConnectionAchieved,
    EngagementAchieved,
    SustainedReviewed,
    WellbeingReviewed,
)
from pathway.measures import PER_ITEM_KINDS, Registry, UnknownInstrument, default_registry
from payments.errors import RateCardError

ENGAGEMENT = EngagementAchieved.TYPE
CONNECTION = ConnectionAchieved.TYPE
WELLBEING = WellbeingReviewed.TYPE
SUSTAINED = SustainedReviewed.TYPE
MEASURED = (WELLBEING, SUSTAINED)


def _published_outcome(value: str) -> str:
    """A metric pays for an outcome type the pathway publishes (``OUTCOME_TYPES``); the
    error is the one a ``Literal`` of them would raise, so its message is unchanged."""
    if value not in OUTCOME_TYPES:
        *first, last = (repr(t) for t in OUTCOME_TYPES)
        expected = f"{', '.join(first)} or {last}"
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )
    return value


OutcomeType = Annotated[StrictStr, AfterValidator(_published_outcome)]
MetricId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Pence = Annotated[StrictInt, Field(gt=0)]
Count = Annotated[StrictInt, Field(gt=0)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class InstrumentRule(BaseModel):
    """When one instrument counts as improved: ``min_change`` points on a summed scale
    (WEMWBS, SWEMWBS, UCLA3) or bands / steps / levels (ONS4, STAR, PAM13), within the
    instrument's published ``threshold_range``; for the per-item instruments how many
    items or areas must move (``min_areas``) and whether any may go the wrong way."""

    model_config = _STRICT
    min_change: Annotated[float, Field(gt=0, strict=True)]
    min_areas: Count | None = None
    # per-item instruments only; unset means true: an item that worsens cancels the rest,
    # so "improved" cannot hide a person who is happier but more anxious
    no_item_worse: StrictBool | None = None

    @property
    def forbids_worse(self) -> bool:
        return self.no_item_worse is not False


# How a metric's instruments combine: any one of them, every one of them, or only the
# primary one (the others are recorded for evaluation and do not pay).
Combine = Literal["any", "all", "primary"]


class Metric(BaseModel):
    model_config = _STRICT
    name: Text
    outcome_type: OutcomeType
    price_pence: Pence
    claimable_only_at_end: StrictBool = False
    max_per_person: Count = 1
    max_claims: Count | None = None  # across the whole contract
    max_pence: Pence | None = None  # across the whole contract
    min_sessions: Count | None = None  # connection metrics only
    instruments: dict[str, InstrumentRule] = Field(default_factory=dict)  # measured only
    combine: Combine | None = None  # required when a metric names more than one instrument
    primary: str | None = None  # the instrument that pays, when combine = "primary"
    # metrics this one builds on: it is earned only in an episode that earned them, and a
    # sustained metric compares its follow-up with the review that earned them
    requires: tuple[MetricId, ...] = ()

    def counted(self) -> tuple[str, ...]:
        """The instruments whose results decide this metric."""
        if self.combine == "primary" and self.primary is not None:
            return (self.primary,)
        return tuple(self.instruments)


class Payer(BaseModel):
    """One co-funder: its share of every claim, and optionally the most it will pay."""

    model_config = _STRICT
    name: Text
    share_basis_points: Annotated[StrictInt, Field(gt=0, le=10_000)]  # 7_000 is 70%
    cap_pence: Pence | None = None  # across the whole contract, its shares only


class Caps(BaseModel):
    model_config = _STRICT
    total_contract_pence: Pence
    per_person_pence: Pence | None = None
    per_partner_per_month_pence: Pence | None = None


class ReEntry(BaseModel):
    model_config = _STRICT
    can_earn_again: StrictBool
    exclusion_days: Annotated[StrictInt, Field(ge=0)] = 0


class RateCard(BaseModel):
    model_config = _STRICT
    contract_id: Id
    name: Text
    version: Id
    effective_from: date
    start_date: date
    end_date: date
    currency: Literal["GBP"]
    timezone: Text = "Europe/London"
    partners: Annotated[tuple[Id, ...], Field(min_length=1)]
    metrics: Annotated[dict[MetricId, Metric], Field(min_length=1)]
    caps: Caps
    re_entry: ReEntry
    # co-funders and their shares; none listed: the commissioner pays every claim whole
    payers: dict[Id, Payer] = Field(default_factory=dict)

    def metric_for(self, outcome_type: str) -> tuple[str, Metric] | None:
        """The metric this kind of outcome can earn; loading ensures there is at most one."""
        return next(
            ((mid, m) for mid, m in self.metrics.items() if m.outcome_type == outcome_type), None
        )

    def local_date(self, moment: datetime) -> date:
        """The contract's calendar date of a moment; a naive time is taken as UTC."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo("UTC"))
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def period(self, moment: datetime) -> str:
        """The month (``YYYY-MM``) that per-partner caps and statements count a moment in."""
        return self.local_date(moment).strftime("%Y-%m")

    def within_contract(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date  # the end date itself is inside


def parse_rate_card(data: dict[str, Any], registry: Registry | None = None) -> RateCard:
    """Check a rate card given as the mapping a TOML file holds."""
    try:
        card = RateCard.model_validate(data)
    except ValidationError as exc:
        raise RateCardError(_describe(exc.errors()[0])) from None
    _check_consistent(card, registry or default_registry())
    return card


def load_rate_card(path: Path, registry: Registry | None = None) -> RateCard:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RateCardError(f"cannot read rate card {Path(path).name}: {exc}") from None
    try:
        return parse_rate_card(data, registry)
    except RateCardError as exc:
        raise RateCardError(f"{Path(path).name}: {exc}") from None


# --- messages a contract manager can act on ------------------------------------------------


def _describe(err: Any) -> str:
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


def _check_consistent(card: RateCard, registry: Registry) -> None:
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
    paid_by: dict[str, str] = {}
    for mid, metric in card.metrics.items():
        where = f"metrics.{mid}"
        if metric.outcome_type in paid_by:
            fail(f"{where}.outcome_type", f"{paid_by[metric.outcome_type]} already pays for it")
        paid_by[metric.outcome_type] = mid
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


def pounds(pence: int) -> str:
    """Pence as pounds with two decimals, by integer arithmetic: ``-25050`` -> ``-250.50``."""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{whole}.{part:02d}"
