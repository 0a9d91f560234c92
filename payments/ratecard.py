"""A rate card: what one outcomes contract pays for, how much, and up to which caps.

A rate card is a TOML file a contract manager can read (``docs/rate-card.md`` describes
every field); loading one either gives a fully checked ``RateCard`` or raises
``RateCardError`` naming the field, e.g.
``metrics.M3.instruments.WEMWBS.min_change: must be > 0``. Money is in pence, as whole
numbers, so nothing is ever rounded. Versions of one contract are put together by
``payments.ratebook.RateCardBook``.
"""

from __future__ import annotations

import functools
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

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
    CompletionAchieved,
    ConnectionAchieved,
    DistalChange,
    DistalMeasure,
    EngagementAchieved,
    SustainedReviewed,
    WellbeingReviewed,
)
from pathway.measures import Registry, default_registry
from payments.errors import RateCardError

ENGAGEMENT = EngagementAchieved.TYPE
CONNECTION = ConnectionAchieved.TYPE
WELLBEING = WellbeingReviewed.TYPE
SUSTAINED = SustainedReviewed.TYPE
COMPLETION = CompletionAchieved.TYPE
DISTAL = DistalChange.TYPE
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
    # completion metrics only: goals the report must mark achieved, and whether the
    # ongoing plan must name at least one next step (unset means true)
    min_goals_achieved: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    ongoing_plan_required: StrictBool | None = None
    # distal metrics only: which measure, over how many whole months before and after the
    # referral, and the fall that counts (in the count, and optionally as a percentage)
    measure: DistalMeasure | None = None
    window_months: Annotated[StrictInt, Field(ge=1, le=24)] | None = None
    min_reduction: Count | None = None
    min_reduction_percent: Annotated[StrictInt, Field(ge=1, le=100)] | None = None

    def pays_for(self, kind: tuple[str, str | None]) -> bool:
        return (self.outcome_type, self.measure) == kind

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

    def metric_for(self, kind: tuple[str, str | None]) -> tuple[str, Metric] | None:
        """The metric this kind of outcome (``OutcomeEvent.kind()``: its type, and a distal
        outcome's measure) can earn; loading ensures there is at most one."""
        return self._by_kind.get(kind)

    @functools.cached_property
    def _by_kind(self) -> dict[tuple[str, str | None], tuple[str, Metric]]:
        # Looked up for every outcome decided (reconciliation: millions), so built once.
        return {(m.outcome_type, m.measure): (mid, m) for mid, m in self.metrics.items()}

    def local_date(self, moment: datetime) -> date:
        """The contract's calendar date of a moment; a naive time is taken as UTC."""
        return _local_date(self.timezone, moment)

    def period(self, moment: datetime) -> str:
        """The month (``YYYY-MM``) that per-partner caps and statements count a moment in."""
        day = self.local_date(moment)
        return f"{day.year:04d}-{day.month:02d}"  # strftime was a tenth of reconciling

    def within_contract(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date  # the end date itself is inside


@functools.lru_cache(maxsize=4_096)
def _local_date(zone: str, moment: datetime) -> date:
    # Each outcome's date is asked for several times as it is decided (its version, its
    # month, the contract dates); the recent ones are kept.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone)).date()


def parse_rate_card(data: dict[str, Any], registry: Registry | None = None) -> RateCard:
    """Check a rate card given as the mapping a TOML file holds."""
    # Imported here: the checks read this module's models and constants.
    from payments.ratecard_checks import check_consistent, describe

    try:
        card = RateCard.model_validate(data)
    except ValidationError as exc:
        raise RateCardError(describe(exc.errors()[0])) from None
    check_consistent(card, registry or default_registry())
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


def pounds(pence: int) -> str:
    """Pence as pounds with two decimals, by integer arithmetic: ``-25050`` -> ``-250.50``."""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{whole}.{part:02d}"
