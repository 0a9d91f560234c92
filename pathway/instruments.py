"""Instrument definitions: what ``instruments.toml`` (and a commissioner's own files) may
say about a wellbeing instrument, checked when the file is read so a bad definition never
reaches a score. ``pathway.measures`` scores and compares answers with them.

Errors are all ``ValueError``, so an API boundary can answer them with a 4xx::

    MeasureError              bad answers, or two scores that cannot be compared
    ├── UnknownInstrument     no instrument with that code
    └── InstrumentFileError   an instruments file that does not describe valid instruments
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass as definition

PACKAGED_FILE = Path(__file__).with_name("instruments.toml")
PER_ITEM_KINDS = ("bands_per_item", "per_area")
_BANDED_KINDS = ("bands_per_item", "external_score_levels")
_FORBID = ConfigDict(extra="forbid")

Scoring = Literal["sum", "mean", "bands_per_item", "per_area", "external_score_levels"]
Better = Literal["higher", "lower"]
Text = Annotated[str, Field(min_length=1)]


class MeasureError(ValueError):
    """Bad answers or an impossible comparison; the message is one a link worker can act
    on and never echoes free text, which could be personal data."""


class UnknownInstrument(MeasureError):
    pass


class InstrumentFileError(MeasureError):
    pass


@definition(frozen=True, config=_FORBID)
class Band:
    # Inclusive upper bounds (not min/max pairs) so a decimal score between two published
    # cut-points, such as PAM 47.05, still falls in exactly one band.
    up_to: float
    label: str | int


@definition(frozen=True, config=_FORBID)
class ItemRule:
    """Where one item differs from the rest, as ONS4 anxiety does."""

    better: Better | None = None
    bands: tuple[Band, ...] = ()


@definition(frozen=True, config=_FORBID)
class Instrument:
    """One instrument as the TOML describes it; the table name is the code."""

    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")]
    name: Text
    version: Text
    licence: Text
    scoring: Scoring
    items: Annotated[tuple[str, ...], Field(min_length=1)]
    item_range: tuple[float, float]
    meaningful_change: Annotated[float, Field(gt=0)]  # points ("sum"), or bands/steps/levels
    whole_numbers: bool = True
    better: Better = "higher"
    threshold_range: tuple[float, float] | None = None
    # Items a person may leave out (MYCAW: a second concern); "mean" scoring only, where
    # the profile is the mean of the items answered.
    optional_items: tuple[str, ...] = ()

    def threshold_bounds(self) -> tuple[float, float]:
        """What a rate card may ask instead of ``meaningful_change``: the published range,
        or only the published change itself when the literature gives no range."""
        return self.threshold_range or (self.meaningful_change, self.meaningful_change)

    min_areas: int = Field(default=1, ge=1)
    change_on: Literal["total", "metric"] = "total"
    bands: tuple[Band, ...] = ()
    conversion: dict[int, float] = field(default_factory=dict)
    classify: dict[str, tuple[Band, ...]] = field(default_factory=dict)
    per_item: dict[str, ItemRule] = field(default_factory=dict)

    def better_for(self, item: str) -> Better:
        rule = self.per_item.get(item)
        return rule.better if rule and rule.better else self.better

    def bands_for(self, item: str) -> tuple[Band, ...]:
        rule = self.per_item.get(item)
        return rule.bands if rule and rule.bands else self.bands

    def derived_keys(self) -> set[str]:
        if self.scoring == "sum":
            return set(self.classify) | ({"metric"} if self.conversion else set())
        if self.scoring == "bands_per_item":
            return set(self.items)
        return {"level"} if self.scoring == "external_score_levels" else set()

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        _check_definition(self)
        return self


def band_index(bands: tuple[Band, ...], value: float) -> int:
    # Loading checks that the last band reaches the top of the range, so one always matches.
    return next(i for i, band in enumerate(bands) if value <= band.up_to)


def band(bands: tuple[Band, ...], value: float) -> Band:
    return bands[band_index(bands, value)]


# --- loading -----------------------------------------------------------------------------


def read_file(path: Path) -> list[Instrument]:
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InstrumentFileError(f"cannot read instruments file {path.name}: {exc}") from None
    instruments = []
    for code, table in tables.items():
        if not isinstance(table, dict) or "code" in table:
            raise InstrumentFileError(f"{path.name}: {code} must be a table named by its code")
        try:
            instruments.append(Instrument(**{"code": code, **table}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'definition'}: {e['msg']}" for e in exc.errors()
            )
            raise InstrumentFileError(f"{path.name}: {code}: {problems}") from None
    return instruments


def _check_definition(inst: Instrument) -> None:
    """What field types cannot say: the settings must agree with each other."""
    kind, (low, high), items = inst.scoring, inst.item_range, set(inst.items)
    top = high * len(items) if kind == "sum" else high
    banded = {item for item, rule in inst.per_item.items() if rule.bands}
    whole = low.is_integer() and high.is_integer()
    totals = set(range(int(low) * len(items), int(high) * len(items) + 1)) if whole else set()
    every_bands = (inst.bands, *(inst.bands_for(i) for i in items), *inst.classify.values())
    lowest, highest = inst.threshold_bounds()
    checks = {
        "item_range must be [lowest, highest]": low < high,
        "items must be distinct": len(items) == len(inst.items),
        "item_range must be whole numbers when answers are": whole or not inst.whole_numbers,
        "per_item must name the instrument's items": set(inst.per_item) <= items,
        "every item needs bands": kind != "bands_per_item" or inst.bands or banded == items,
        "an external score has one item and level bands": kind != "external_score_levels"
        or (len(items) == 1 and inst.bands),
        f"bands do not apply to {kind} scoring": kind in _BANDED_KINDS or not inst.bands,
        "per_item bands need bands_per_item scoring": kind == "bands_per_item" or not banded,
        "bands must go from lowest to highest": all(
            _rises([band.up_to for band in bands]) for bands in every_bands
        ),
        f"the last band must reach {top:g}": all(b[-1].up_to >= top for b in every_bands if b),
        "classify is for sum scoring, and not named metric": not inst.classify
        or (kind == "sum" and "metric" not in inst.classify),
        "conversion must give a score for every possible total of a whole-number sum": (
            not inst.conversion
            or (kind == "sum" and inst.whole_numbers and set(inst.conversion) == totals)
        ),
        "conversion scores must rise with the total": _rises(
            [inst.conversion[total] for total in sorted(inst.conversion)]
        ),
        "change_on metric needs a conversion": inst.change_on == "total" or inst.conversion,
        "meaningful_change must be whole bands, steps or levels": kind in ("sum", "mean")
        or inst.meaningful_change.is_integer(),
        "threshold_range must be positive and contain meaningful_change": 0
        < lowest
        <= inst.meaningful_change
        <= highest,
        "min_areas cannot exceed the number of items": inst.min_areas <= len(items),
        "optional_items must be some of the items, for mean scoring": set(inst.optional_items)
        < items
        and (kind == "mean" or not inst.optional_items),
        "min_areas is for per-item scoring": kind in PER_ITEM_KINDS or inst.min_areas == 1,
    }
    problems = [problem for problem, ok in checks.items() if not ok]
    if problems:
        # A ValueError here becomes part of the ValidationError that _read reports.
        raise ValueError("; ".join(problems))


def _rises(values: list[float]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))
