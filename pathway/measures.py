"""Wellbeing measures: the instrument registry, scoring and meaningful change.

Instruments are data (``instruments.toml``), not code branches, so a commissioner can add
one without a release. Every instrument uses one of five scoring kinds, and a new summed
questionnaire is only a TOML table:

- ``sum``: items added up, optionally converted by a published table (SWEMWBS metric) and
  classified (UCLA-3 ``lonely``); improvement is the total moving the right way.
- ``mean``: items averaged into a profile score, kept beside the items (MYCAW; its
  ``optional_items`` may be left out: the profile is the mean of those answered);
  improvement is the profile moving the right way.
- ``bands_per_item``: items kept apart, each in a band (ONS4); improvement is enough items
  moving a band the right way.
- ``per_area``: each item is a step on one area (Well-being Star); improvement is enough
  areas moving up a step.
- ``external_score_levels``: one score computed by a licensed tool (PAM-13) and put in a
  level; improvement is moving up a level.

Pure: the only I/O is reading instrument files when a Registry is loaded. The definitions
and the errors live in ``pathway.instruments``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pathway.instruments import (
    PACKAGED_FILE,
    PER_ITEM_KINDS,
    Better,
    Instrument,
    InstrumentFileError,
    MeasureError,
    UnknownInstrument,
    band,
    band_index,
    read_file,
)

__all__ = [
    "PER_ITEM_KINDS",
    "Change",
    "Instrument",
    "InstrumentFileError",
    "MeasureError",
    "Registry",
    "Scores",
    "UnknownInstrument",
    "default_registry",
]
# Published scores have two decimals; rounding deltas stops 19.98 - 17.98 falling short of 2.
_PLACES = 6


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
    items_worse: int = 0  # per-item instruments: items or areas that moved the wrong way


class Registry:
    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        self._instruments = dict(instruments)

    @classmethod
    def load(cls, *extra_files: Path) -> Registry:
        """The packaged instruments plus any that a commissioner's files add."""
        found: dict[str, Instrument] = {}
        for path in (PACKAGED_FILE, *map(Path, extra_files)):
            for instrument in read_file(path):
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
                derived[name] = band(bands, total).label
        elif inst.scoring == "mean":
            raw["profile"] = round(sum(values.values()) / len(values), 2)
        elif inst.scoring == "bands_per_item":
            derived = {item: band(inst.bands_for(item), v).label for item, v in values.items()}
        elif inst.scoring == "external_score_levels":
            derived["level"] = band(inst.bands, values[inst.items[0]]).label
        return Scores(inst.code, inst.version, raw, derived)

    def compare(
        self,
        baseline: Scores,
        followup: Scores,
        threshold: float | None = None,
        min_areas: int | None = None,
        no_item_worse: bool = False,
    ) -> Change:
        """Follow-up against baseline; threshold, min_areas and no_item_worse carry a rate
        card's own rule (no_item_worse: one item up does not excuse another going down)."""
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
        raw_keys = (
            {"total"}
            if inst.scoring == "sum"
            else {*inst.items, "profile"}
            if inst.scoring == "mean"
            else set(inst.items)
        )
        optional = set(inst.optional_items)
        for which, scores in (("baseline", baseline), ("follow-up", followup)):
            if not raw_keys - optional <= set(scores.raw) <= raw_keys or not (
                inst.derived_keys() <= set(scores.derived)
            ):
                raise MeasureError(f"the {which} {inst.code} scores are incomplete; score again")
        if set(baseline.raw) - set(followup.raw):
            left = ", ".join(sorted(set(baseline.raw) - set(followup.raw)))
            raise MeasureError(
                f"the follow-up {inst.code} must score what the baseline scored ({left} is "
                "missing): the same concerns are scored again"
            )
        step = _step(inst, threshold)
        if inst.scoring in PER_ITEM_KINDS:
            need = _min_areas(inst, min_areas)
            return _compare_items(inst, baseline, followup, step, need, no_item_worse)
        if min_areas is not None:
            raise MeasureError(f"{inst.code} has one score, so min_areas does not apply to it")
        if inst.scoring == "sum":
            return _compare_total(inst, baseline, followup, step)
        if inst.scoring == "mean":
            return _compare_profile(inst, baseline, followup, step)
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


def _compare_profile(inst: Instrument, base: Scores, follow: Scores, step: float) -> Change:
    """The change in the profile over the items the baseline scored: a concern first
    named at the follow-up is scored there but not part of the change."""
    items = [item for item in inst.items if item in base.raw]
    later = dict(follow.raw)
    later["profile"] = round(sum(follow.raw[i] for i in items) / len(items), 2)
    deltas = {key: _round(later[key] - base.raw[key]) for key in base.raw}
    delta, sign = deltas["profile"], _sign(inst.better)
    detail = f"{inst.code} profile {delta:+g} (meaningful change is {sign * step:+g})"
    return Change(inst.code, sign * delta >= step, deltas, 0, detail)


def _compare_items(
    inst: Instrument, base: Scores, follow: Scores, step: float, need: int, no_worse: bool
) -> Change:
    banded = inst.scoring == "bands_per_item"
    deltas: dict[str, float] = {}
    moved = worse = 0
    for item in inst.items:
        before, after = base.raw[item], follow.raw[item]
        deltas[item] = _round(after - before)
        if banded:  # the band is the unit of change: 6 -> 7 counts, 7 -> 8 does not
            bands = inst.bands_for(item)
            before, after = band_index(bands, before), band_index(bands, after)
        toward = _sign(inst.better_for(item)) * (after - before)
        moved += toward >= step
        worse += toward < 0  # a whole band or step the wrong way, as moving is counted
    noun, unit = ("items", "band") if banded else ("areas", "step")
    detail = (
        f"{inst.code}: {moved} of {len(inst.items)} {noun} improved by {step:g}+ {unit}"
        f"{_plural(step)} (meaningful change needs {need})"
    )
    if no_worse:
        detail += f", {worse} worse (none may be)"
    improved = moved >= need and not (no_worse and worse)
    return Change(inst.code, improved, deltas, moved, detail, worse)


def _compare_level(inst: Instrument, base: Scores, follow: Scores, step: float) -> Change:
    item = inst.items[0]
    before, after = (band_index(inst.bands, s.raw[item]) for s in (base, follow))
    deltas = {item: _round(follow.raw[item] - base.raw[item]), "level": after - before}
    detail = (
        f"{inst.code} level {inst.bands[before].label} -> {inst.bands[after].label}"
        f" (meaningful change is {step:g} level{_plural(step)} the right way)"
    )
    return Change(inst.code, _sign(inst.better) * (after - before) >= step, deltas, 0, detail)


def _step(inst: Instrument, threshold: float | None) -> float:
    if threshold is None:
        return inst.meaningful_change
    points = inst.scoring in ("sum", "mean")
    unit = "points" if points else "a whole number of bands, steps or levels"
    if not _is_number(threshold) or not math.isfinite(threshold) or threshold <= 0:
        raise MeasureError(f"{inst.code} meaningful change must be positive {unit}")
    if not points and threshold != int(threshold):
        raise MeasureError(f"{inst.code} meaningful change must be {unit}, got {threshold:g}")
    limits = inst.threshold_bounds()
    if not limits[0] <= threshold <= limits[1]:
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
    missing = [i for i in inst.items if i not in answers and i not in inst.optional_items]
    if len(missing) == 1:
        raise MeasureError(f"{_label(inst, missing[0])} is missing; every item must be answered")
    if missing:
        raise MeasureError(
            f"{inst.code} items {', '.join(missing)} are missing; every item must be answered"
        )
    return {item: _check_value(inst, item, answers[item]) for item in inst.items if item in answers}


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
