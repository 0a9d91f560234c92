"""Wellbeing measures: the instrument registry, scoring and meaningful change.

Instruments are data (``instruments.toml``), not code branches, so a commissioner can add
one without a release. Every instrument uses one of four scoring kinds, and a new summed
questionnaire is only a TOML table:

- ``sum``: items added up, optionally converted by a published table (SWEMWBS metric) and
  classified (UCLA-3 ``lonely``); improvement is the total moving the right way.
- ``bands_per_item``: items kept apart, each in a band (ONS4); improvement is enough items
  moving a band the right way.
- ``per_area``: each item is a step on one area (Well-being Star); improvement is enough
  areas moving up a step.
- ``external_score_levels``: one score computed by a licensed tool (PAM-13) and put in a
  level; improvement is moving up a level.

Pure: the only I/O is reading instrument files when a Registry is loaded.

Errors are all ``ValueError``, so an API boundary can answer them with a 4xx::

    MeasureError              bad answers, or two scores that cannot be compared
    ├── UnknownInstrument     no instrument with that code
    └── InstrumentFileError   an instruments file that does not describe valid instruments
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass as definition

PACKAGED_FILE = Path(__file__).with_name("instruments.toml")
PER_ITEM_KINDS = ("bands_per_item", "per_area")
_BANDED_KINDS = ("bands_per_item", "external_score_levels")
# Published scores have two decimals; rounding deltas stops 19.98 - 17.98 falling short of 2.
_PLACES = 6
_FORBID = ConfigDict(extra="forbid")

Scoring = Literal["sum", "bands_per_item", "per_area", "external_score_levels"]
Better = Literal["higher", "lower"]
Text = Annotated[str, Field(min_length=1)]


class MeasureError(ValueError):
    """Bad answers or an impossible comparison; the message is one a link worker can act
    on and never echoes free text, which could be personal data."""


class UnknownInstrument(MeasureError):
    pass


class InstrumentFileError(MeasureError):
    pass


@dataclass(frozen=True)
class Scores:
    instrument: str
    version: str
    raw: dict[str, float]
    derived: dict[str, str | float]


@dataclass(frozen=True)
class Change:
    instrument: str
    improved: bool
    deltas: dict[str, float]
    areas_improved: int
    detail: str


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


class Registry:
    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self._instruments = dict(instruments)

    @classmethod
    def load(cls, *extra_files: Path) -> Registry:
        """The packaged instruments plus any that a commissioner's files add."""
        found: dict[str, Instrument] = {}
        for path in (PACKAGED_FILE, *map(Path, extra_files)):
            for instrument in _read(path):
                if instrument.code in found:
                    # Refuse rather than replace: scores already recorded were made under the
                    # published definition, and a quiet override would change their meaning.
                    raise InstrumentFileError(
                        f"{path.name}: {instrument.code} is already defined; "
                        "give a new or changed instrument its own code"
                    )
                found[instrument.code] = instrument
        return cls(found)

    def codes(self) -> list[str]:
        return sorted(self._instruments)

    def get(self, code: str) -> Instrument:
        found = self._instruments.get(code) if isinstance(code, str) else None
        if found is None:
            known = ", ".join(self.codes())
            raise UnknownInstrument(f"instrument must be a known instrument: {known}")
        return found

    def score(self, code: str, answers: Mapping[str, int | float]) -> Scores:
        inst = self.get(code)
        values = _check_answers(inst, answers)
        raw: dict[str, float] = dict(values)
        derived: dict[str, str | float] = {}
        if inst.scoring == "sum":
            total = round(sum(values.values()), _PLACES)
            raw = {"total": total}
            if inst.conversion:
                derived["metric"] = inst.conversion[int(total)]
            for name, bands in inst.classify.items():
                derived[name] = _band(bands, total).label
        elif inst.scoring == "bands_per_item":
            derived = {item: _band(inst.bands_for(item), v).label for item, v in values.items()}
        elif inst.scoring == "external_score_levels":
            derived["level"] = _band(inst.bands, values[inst.items[0]]).label
        return Scores(inst.code, inst.version, raw, derived)

    def compare(
        self,
        baseline: Scores,
        followup: Scores,
        threshold: float | None = None,
        min_areas: int | None = None,
    ) -> Change:
        """Follow-up against baseline; threshold and min_areas carry a rate card's own rule."""
        if baseline.instrument != followup.instrument:
            raise MeasureError(
                f"cannot compare {_show(baseline.instrument)} with {_show(followup.instrument)}:"
                " baseline and follow-up must use the same instrument"
            )
        inst = self.get(baseline.instrument)
        if baseline.version != followup.version:
            raise MeasureError(
                f"cannot compare {inst.code} version {_show(baseline.version)} with version "
                f"{_show(followup.version)}: scores from different versions are not comparable"
            )
        raw_keys = {"total"} if inst.scoring == "sum" else set(inst.items)
        for which, scores in (("baseline", baseline), ("follow-up", followup)):
            if set(scores.raw) != raw_keys or not inst.derived_keys() <= set(scores.derived):
                raise MeasureError(f"the {which} {inst.code} scores are incomplete; score again")
        step = _step(inst, threshold)
        if inst.scoring in PER_ITEM_KINDS:
            return _compare_items(inst, baseline, followup, step, _min_areas(inst, min_areas))
        if min_areas is not None:
            raise MeasureError(f"{inst.code} has one score, so min_areas does not apply to it")
        if inst.scoring == "sum":
            return _compare_total(inst, baseline, followup, step)
        return _compare_level(inst, baseline, followup, step)


@cache
def default_registry() -> Registry:
    """The packaged instruments, read once per process."""
    return Registry.load()


# --- comparing ---------------------------------------------------------------------------


def _compare_total(inst: Instrument, base: Scores, follow: Scores, step: float) -> Change:
    deltas = {"total": _round(follow.raw["total"] - base.raw["total"])}
    if inst.conversion:
        deltas["metric"] = _round(float(follow.derived["metric"]) - float(base.derived["metric"]))
    delta, sign = deltas[inst.change_on], _sign(inst.better)
    scale = "" if inst.change_on == "total" else f"{inst.change_on} "
    detail = f"{inst.code} {scale}{delta:+g} (meaningful change is {sign * step:+g})"
    return Change(inst.code, sign * delta >= step, deltas, 0, detail)


def _compare_items(
    inst: Instrument, base: Scores, follow: Scores, step: float, need: int
) -> Change:
    banded = inst.scoring == "bands_per_item"
    deltas: dict[str, float] = {}
    moved = 0
    for item in inst.items:
        before, after = base.raw[item], follow.raw[item]
        deltas[item] = _round(after - before)
        if banded:  # the band is the unit of change: 6 -> 7 counts, 7 -> 8 does not
            bands = inst.bands_for(item)
            before, after = _band_index(bands, before), _band_index(bands, after)
        if _sign(inst.better_for(item)) * (after - before) >= step:
            moved += 1
    noun, unit = ("items", "band") if banded else ("areas", "step")
    detail = (
        f"{inst.code}: {moved} of {len(inst.items)} {noun} improved by {step:g}+ {unit}"
        f"{_plural(step)} (meaningful change needs {need})"
    )
    return Change(inst.code, moved >= need, deltas, moved, detail)


def _compare_level(inst: Instrument, base: Scores, follow: Scores, step: float) -> Change:
    item = inst.items[0]
    before, after = (_band_index(inst.bands, s.raw[item]) for s in (base, follow))
    deltas = {item: _round(follow.raw[item] - base.raw[item]), "level": after - before}
    detail = (
        f"{inst.code} level {inst.bands[before].label} -> {inst.bands[after].label}"
        f" (meaningful change is {step:g} level{_plural(step)} the right way)"
    )
    return Change(inst.code, _sign(inst.better) * (after - before) >= step, deltas, 0, detail)


def _step(inst: Instrument, threshold: float | None) -> float:
    if threshold is None:
        return inst.meaningful_change
    unit = "points" if inst.scoring == "sum" else "a whole number of bands, steps or levels"
    if not _is_number(threshold) or not math.isfinite(threshold) or threshold <= 0:
        raise MeasureError(f"{inst.code} meaningful change must be positive {unit}")
    if inst.scoring != "sum" and threshold != int(threshold):
        raise MeasureError(f"{inst.code} meaningful change must be {unit}, got {threshold:g}")
    limits = inst.threshold_range
    if limits and not limits[0] <= threshold <= limits[1]:
        raise MeasureError(
            f"{inst.code} meaningful change must be from +{limits[0]:g} to +{limits[1]:g},"
            f" got +{threshold:g}"
        )
    return float(threshold)


def _min_areas(inst: Instrument, min_areas: int | None) -> int:
    if min_areas is None:
        return inst.min_areas
    if not _is_number(min_areas) or min_areas != int(min_areas):
        raise MeasureError(f"{inst.code} min_areas must be a whole number")
    if not 1 <= min_areas <= len(inst.items):
        raise MeasureError(f"{inst.code} min_areas must be from 1 to {len(inst.items)}")
    return int(min_areas)


# --- answers -----------------------------------------------------------------------------


def _check_answers(inst: Instrument, answers: Mapping[str, int | float]) -> dict[str, float]:
    if not isinstance(answers, Mapping):
        raise MeasureError(f"{inst.code} answers must map each item to its answer")
    for key in answers:
        if not isinstance(key, str):
            got = f"the number {key}" if _is_number(key) else f"a {type(key).__name__}"
            raise MeasureError(
                f"{inst.code} item names are text such as {inst.items[0]!r}, got {got}"
            )
        if key not in inst.items:
            items = ", ".join(inst.items)
            raise MeasureError(
                f"{inst.code} answers name an item it does not have; its items are {items}"
            )
    missing = [item for item in inst.items if item not in answers]
    if len(missing) == 1:
        raise MeasureError(f"{_label(inst, missing[0])} is missing; every item must be answered")
    if missing:
        raise MeasureError(
            f"{inst.code} items {', '.join(missing)} are missing; every item must be answered"
        )
    return {item: _check_value(inst, item, answers[item]) for item in inst.items}


def _check_value(inst: Instrument, item: str, value: object) -> float:
    low, high = inst.item_range
    kind = "a whole number" if inst.whole_numbers else "a number"
    rule = f"{_label(inst, item)} must be {kind} from {low:g} to {high:g}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MeasureError(f"{rule}, got {_describe(value)}")
    if not (math.isfinite(value) and low <= value <= high) or (
        inst.whole_numbers and value != int(value)
    ):
        raise MeasureError(f"{rule}, got {value:g}")
    # 3.0 from a JSON form is a whole number; store it as 3.
    return int(value) if inst.whole_numbers else float(value)


def _label(inst: Instrument, item: str) -> str:
    return f"{inst.code} {item}" if len(inst.items) == 1 else f"{inst.code} item {item}"


def _describe(value: object) -> str:
    if value is None:
        return "no answer"
    if isinstance(value, bool):
        return "true/false"
    # Never echo text: a free-text answer could be personal data.
    return "text" if isinstance(value, str) else f"a {type(value).__name__}"


def _show(value: object) -> str:
    # Codes, item keys and versions are identifiers, echoed short so a typo is easy to spot.
    text = str(value)
    return repr(text if len(text) <= 24 else text[:21] + "...")


# --- small helpers -----------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _round(value: float) -> float:
    return round(value, _PLACES)


def _sign(better: Better) -> int:
    return 1 if better == "higher" else -1


def _plural(count: float) -> str:
    return "" if count == 1 else "s"


def _band_index(bands: tuple[Band, ...], value: float) -> int:
    # Loading checks that the last band reaches the top of the range, so one always matches.
    return next(i for i, band in enumerate(bands) if value <= band.up_to)


def _band(bands: tuple[Band, ...], value: float) -> Band:
    return bands[_band_index(bands, value)]


# --- loading -----------------------------------------------------------------------------


def _read(path: Path) -> list[Instrument]:
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
    lowest, highest = inst.threshold_range or (inst.meaningful_change, inst.meaningful_change)
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
        "meaningful_change must be whole bands, steps or levels": kind == "sum"
        or inst.meaningful_change.is_integer(),
        "threshold_range must be positive and contain meaningful_change": 0
        < lowest
        <= inst.meaningful_change
        <= highest,
        "min_areas cannot exceed the number of items": inst.min_areas <= len(items),
        "min_areas is for per-item scoring": kind in PER_ITEM_KINDS or inst.min_areas == 1,
    }
    problems = [problem for problem, ok in checks.items() if not ok]
    if problems:
        # A ValueError here becomes part of the ValidationError that _read reports.
        raise ValueError("; ".join(problems))


def _rises(values: list[float]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))
