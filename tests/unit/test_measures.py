"""The wellbeing instrument registry: scoring, validation and meaningful change."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

from pathway.measures import (
    Change,
    InstrumentFileError,
    MeasureError,
    Registry,
    Scores,
    UnknownInstrument,
    default_registry,
)

STAR_AREAS = (
    "lifestyle",
    "looking_after_yourself",
    "managing_symptoms",
    "work_volunteering",
    "money",
    "where_you_live",
    "family_friends",
    "feeling_positive",
)


@pytest.fixture
def registry() -> Registry:
    return default_registry()


def numbered(count: int, answer: int = 3, **changed: int) -> dict[str, int | float]:
    """Answers "1".."count", all the same except those given as _3=5 style keywords."""
    answers: dict[str, int | float] = {str(n): answer for n in range(1, count + 1)}
    answers.update({key.lstrip("_"): value for key, value in changed.items()})
    return answers


def wemwbs(total: int) -> dict[str, int | float]:
    """Fourteen answers adding up to total (14-70)."""
    extra = total - 14
    return {str(n): 1 + min(4, max(0, extra - 4 * (n - 1))) for n in range(1, 15)}


def swemwbs(total: int) -> dict[str, int | float]:
    extra = total - 7
    return {str(n): 1 + min(4, max(0, extra - 4 * (n - 1))) for n in range(1, 8)}


def ons4(
    life_satisfaction: int = 5, worthwhile: int = 5, happiness: int = 5, anxiety: int = 5
) -> dict[str, int | float]:
    return {
        "life_satisfaction": life_satisfaction,
        "worthwhile": worthwhile,
        "happiness": happiness,
        "anxiety": anxiety,
    }


def star(step: int = 2, **areas: int) -> dict[str, int | float]:
    return {area: areas.get(area, step) for area in STAR_AREAS}


def change(
    registry: Registry,
    code: str,
    before: Mapping[str, int | float],
    after: Mapping[str, int | float],
    threshold: float | None = None,
    min_areas: int | None = None,
) -> Change:
    baseline, followup = registry.score(code, before), registry.score(code, after)
    return registry.compare(baseline, followup, threshold=threshold, min_areas=min_areas)


# --- the registry ------------------------------------------------------------------------


def test_packaged_registry_holds_the_six_design_instruments(registry: Registry) -> None:
    assert registry.codes() == ["MYCAW", "ONS4", "PAM13", "STAR", "SWEMWBS", "UCLA3", "WEMWBS"]


@pytest.mark.parametrize("code", ["MYCAW", "ONS4", "PAM13", "STAR", "SWEMWBS", "UCLA3", "WEMWBS"])
def test_every_instrument_has_a_name_version_and_licence_note(
    registry: Registry, code: str
) -> None:
    instrument = registry.get(code)
    assert instrument.code == code
    assert instrument.name and instrument.version and instrument.licence


def test_licensed_instruments_say_so(registry: Registry) -> None:
    assert "Licensed" in registry.get("PAM13").licence
    assert "Licensed" in registry.get("STAR").licence


def test_default_registry_is_loaded_once() -> None:
    assert default_registry() is default_registry()


def test_unknown_instrument_is_rejected_naming_the_known_ones(registry: Registry) -> None:
    with pytest.raises(
        UnknownInstrument, match="instrument must be a known instrument: MYCAW, ONS4"
    ):
        registry.get("GAD7")
    with pytest.raises(UnknownInstrument):
        registry.score("GAD7", {"1": 1})


def test_unknown_instrument_is_a_measure_error_and_a_value_error() -> None:
    assert issubclass(UnknownInstrument, MeasureError)
    assert issubclass(MeasureError, ValueError)


# --- scoring -----------------------------------------------------------------------------


def test_wemwbs_adds_up_fourteen_items(registry: Registry) -> None:
    scores = registry.score("WEMWBS", numbered(14, 3, _1=5, _14=1))
    assert scores == Scores("WEMWBS", "1.0", {"total": 42}, {})


@pytest.mark.parametrize("total", [14, 45, 70])
def test_wemwbs_total_covers_14_to_70(registry: Registry, total: int) -> None:
    assert registry.score("WEMWBS", wemwbs(total)).raw == {"total": total}


@pytest.mark.parametrize(
    ("raw", "metric"), [(7, 7.00), (8, 9.51), (21, 19.25), (26, 23.21), (34, 32.55), (35, 35.00)]
)
def test_swemwbs_converts_the_raw_total_by_the_published_table(
    registry: Registry, raw: int, metric: float
) -> None:
    scores = registry.score("SWEMWBS", swemwbs(raw))
    assert scores.raw == {"total": raw}
    assert scores.derived == {"metric": metric}


def test_swemwbs_conversion_table_covers_every_total_and_rises(registry: Registry) -> None:
    table = registry.get("SWEMWBS").conversion
    assert sorted(table) == list(range(7, 36))
    metrics = [table[raw] for raw in range(7, 36)]
    assert metrics == sorted(metrics)


def test_ons4_items_are_kept_apart_never_summed(registry: Registry) -> None:
    scores = registry.score("ONS4", ons4(7, 9, 3, 2))
    assert scores.raw == {"life_satisfaction": 7, "worthwhile": 9, "happiness": 3, "anxiety": 2}
    assert scores.derived == {
        "life_satisfaction": "high",
        "worthwhile": "very_high",
        "happiness": "low",
        "anxiety": "low",
    }


@pytest.mark.parametrize(
    ("answer", "band"),
    [
        (0, "low"),
        (4, "low"),
        (5, "medium"),
        (6, "medium"),
        (7, "high"),
        (8, "high"),
        (9, "very_high"),
        (10, "very_high"),
    ],
)
def test_ons4_positive_items_band_at_4_6_8(registry: Registry, answer: int, band: str) -> None:
    scores = registry.score("ONS4", ons4(answer, answer, answer))
    assert [scores.derived[i] for i in ("life_satisfaction", "worthwhile", "happiness")] == [
        band
    ] * 3


@pytest.mark.parametrize(
    ("answer", "band"),
    [
        (0, "very_low"),
        (1, "very_low"),
        (2, "low"),
        (3, "low"),
        (4, "medium"),
        (5, "medium"),
        (6, "high"),
        (10, "high"),
    ],
)
def test_ons4_anxiety_bands_are_reversed(registry: Registry, answer: int, band: str) -> None:
    assert registry.score("ONS4", ons4(anxiety=answer)).derived["anxiety"] == band


def test_star_keeps_each_area_step(registry: Registry) -> None:
    scores = registry.score("STAR", star(2, money=5, lifestyle=1))
    assert scores.raw == {**dict.fromkeys(STAR_AREAS, 2), "money": 5, "lifestyle": 1}
    assert scores.derived == {}


@pytest.mark.parametrize(
    ("score", "level"),
    [(0, 1), (47.0, 1), (47.1, 2), (55.1, 2), (55.2, 3), (72.4, 3), (72.5, 4), (100, 4)],
)
def test_pam_level_follows_the_published_cut_points(
    registry: Registry, score: float, level: int
) -> None:
    scores = registry.score("PAM13", {"score": score})
    assert scores.raw == {"score": score}
    assert scores.derived == {"level": level}


@pytest.mark.parametrize(
    ("answers", "total", "lonely"),
    [((1, 1, 1), 3, "no"), ((2, 2, 1), 5, "no"), ((2, 2, 2), 6, "yes"), ((3, 3, 3), 9, "yes")],
)
def test_ucla3_is_lonely_from_six(
    registry: Registry, answers: tuple[int, int, int], total: int, lonely: str
) -> None:
    scores = registry.score("UCLA3", dict(zip(("1", "2", "3"), answers, strict=True)))
    assert scores.raw == {"total": total}
    assert scores.derived == {"lonely": lonely}


def test_a_whole_number_sent_as_a_decimal_is_accepted_and_stored_whole(
    registry: Registry,
) -> None:
    scores = registry.score("UCLA3", {"1": 2.0, "2": 2, "3": 2})
    assert scores.raw == {"total": 6}
    assert isinstance(scores.raw["total"], int)


# --- rejecting bad answers ---------------------------------------------------------------


def test_a_missing_item_is_named(registry: Registry) -> None:
    answers = numbered(14)
    del answers["3"]
    with pytest.raises(MeasureError, match=r"^WEMWBS item 3 is missing; every item must be"):
        registry.score("WEMWBS", answers)


def test_several_missing_items_are_all_named(registry: Registry) -> None:
    with pytest.raises(MeasureError, match=r"^ONS4 items worthwhile, anxiety are missing"):
        registry.score("ONS4", {"life_satisfaction": 5, "happiness": 5})


def test_an_unknown_item_is_rejected_listing_the_real_ones(registry: Registry) -> None:
    with pytest.raises(
        MeasureError, match=r"^STAR answers name an item it does not have; its items are lifestyle"
    ):
        registry.score("STAR", {**star(), "housing": 3})


def test_item_names_must_be_text(registry: Registry) -> None:
    with pytest.raises(MeasureError, match="item names are text such as '1', got the number 1"):
        registry.score("UCLA3", {1: 2, "2": 2, "3": 2})  # type: ignore[dict-item]


@pytest.mark.parametrize("answer", [0, 6, -1])
def test_an_answer_out_of_range_is_rejected(registry: Registry, answer: int) -> None:
    message = f"^WEMWBS item 3 must be a whole number from 1 to 5, got {answer}$"
    with pytest.raises(MeasureError, match=message):
        registry.score("WEMWBS", numbered(14, _3=answer))


def test_the_message_matches_what_a_link_worker_sees(registry: Registry) -> None:
    with pytest.raises(MeasureError) as caught:
        registry.score("WEMWBS", numbered(14, _3=7))
    assert str(caught.value) == "WEMWBS item 3 must be a whole number from 1 to 5, got 7"


def test_a_fractional_answer_is_rejected_where_whole_numbers_are_required(
    registry: Registry,
) -> None:
    with pytest.raises(
        MeasureError, match=r"^ONS4 item happiness must be a whole number from 0 to"
    ):
        registry.score("ONS4", ons4(happiness=6.5))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "described"), [("Jane Smith, 4", "text"), (None, "no answer"), (True, "true/false")]
)
def test_a_non_number_is_rejected_without_echoing_it(
    registry: Registry, answer: object, described: str
) -> None:
    with pytest.raises(MeasureError) as caught:
        registry.score("UCLA3", {"1": answer, "2": 2, "3": 2})  # type: ignore[dict-item]
    assert str(caught.value) == f"UCLA3 item 1 must be a whole number from 1 to 3, got {described}"
    assert "Jane" not in str(caught.value)


@pytest.mark.parametrize("score", [-0.1, 100.1, float("nan"), float("inf")])
def test_a_pam_score_outside_0_to_100_is_rejected(registry: Registry, score: float) -> None:
    with pytest.raises(MeasureError, match=r"^PAM13 score must be a number from 0 to 100, got"):
        registry.score("PAM13", {"score": score})


def test_a_pam_score_may_have_decimals(registry: Registry) -> None:
    assert registry.score("PAM13", {"score": 61.2}).derived == {"level": 3}


def test_answers_must_be_a_mapping(registry: Registry) -> None:
    with pytest.raises(MeasureError, match="answers must map each item to its answer"):
        registry.score("UCLA3", [2, 2, 2])  # type: ignore[arg-type]


# --- meaningful change -------------------------------------------------------------------


@pytest.mark.parametrize(("gain", "improved"), [(-3, False), (0, False), (2, False), (3, True)])
def test_wemwbs_needs_three_points(registry: Registry, gain: int, improved: bool) -> None:
    result = change(registry, "WEMWBS", wemwbs(40), wemwbs(40 + gain))
    assert result.improved is improved
    assert result.deltas == {"total": gain}
    assert result.areas_improved == 0


def test_wemwbs_change_is_explained(registry: Registry) -> None:
    result = change(registry, "WEMWBS", wemwbs(40), wemwbs(45))
    assert result.detail == "WEMWBS +5 (meaningful change is +3)"


@pytest.mark.parametrize(("gain", "improved"), [(3, False), (7, False), (8, True)])
def test_a_rate_card_can_ask_for_the_stricter_eight_points(
    registry: Registry, gain: int, improved: bool
) -> None:
    result = change(registry, "WEMWBS", wemwbs(40), wemwbs(40 + gain), threshold=8)
    assert result.improved is improved
    assert result.detail.endswith("(meaningful change is +8)")


def test_swemwbs_change_is_judged_on_the_metric_score(registry: Registry) -> None:
    # Raw 19 -> 22 is 17.98 -> 19.98: exactly +2 once rounding noise is removed.
    result = change(registry, "SWEMWBS", swemwbs(19), swemwbs(22))
    assert result.improved
    assert result.deltas == {"total": 3, "metric": 2.0}
    assert result.detail == "SWEMWBS metric +2 (meaningful change is +2)"


def test_swemwbs_below_two_metric_points_is_not_meaningful_by_default(
    registry: Registry,
) -> None:
    # Raw 19 -> 21 is 17.98 -> 19.25, +1.27.
    assert not change(registry, "SWEMWBS", swemwbs(19), swemwbs(21)).improved
    assert change(registry, "SWEMWBS", swemwbs(19), swemwbs(21), threshold=1).improved


@pytest.mark.parametrize("threshold", [0.5, 3.5])
def test_swemwbs_threshold_must_stay_in_the_published_range(
    registry: Registry, threshold: float
) -> None:
    with pytest.raises(MeasureError, match="meaningful change must be from \\+1 to \\+3"):
        change(registry, "SWEMWBS", swemwbs(19), swemwbs(22), threshold=threshold)


def test_ons4_moving_up_a_band_is_meaningful(registry: Registry) -> None:
    result = change(registry, "ONS4", ons4(life_satisfaction=6), ons4(life_satisfaction=7))
    assert result.improved
    assert result.areas_improved == 1
    assert result.deltas == {"life_satisfaction": 1, "worthwhile": 0, "happiness": 0, "anxiety": 0}


def test_ons4_moving_within_a_band_is_not(registry: Registry) -> None:
    result = change(registry, "ONS4", ons4(7, 7, 7, 5), ons4(8, 8, 8, 4))
    assert not result.improved
    assert result.areas_improved == 0
    assert result.deltas == {"life_satisfaction": 1, "worthwhile": 1, "happiness": 1, "anxiety": -1}


def test_ons4_anxiety_improves_by_moving_down_a_band(registry: Registry) -> None:
    down = change(registry, "ONS4", ons4(anxiety=6), ons4(anxiety=5))
    up = change(registry, "ONS4", ons4(anxiety=5), ons4(anxiety=6))
    assert (down.improved, down.areas_improved) == (True, 1)
    assert (up.improved, up.areas_improved) == (False, 0)


def test_ons4_min_areas_asks_for_more_items_to_move(registry: Registry) -> None:
    before, after = ons4(6, 6, 6, 6), ons4(7, 7, 6, 5)
    assert change(registry, "ONS4", before, after, min_areas=3).improved
    assert not change(registry, "ONS4", before, after, min_areas=4).improved
    result = change(registry, "ONS4", before, after, min_areas=4)
    assert result.areas_improved == 3
    assert result.detail == "ONS4: 3 of 4 items improved by 1+ band (meaningful change needs 4)"


def test_ons4_threshold_counts_bands(registry: Registry) -> None:
    one_band, two_bands = ons4(happiness=7), ons4(happiness=9)
    assert not change(registry, "ONS4", ons4(happiness=5), one_band, threshold=2).improved
    assert change(registry, "ONS4", ons4(happiness=5), two_bands, threshold=2).improved


def test_ons4_threshold_must_be_whole_bands(registry: Registry) -> None:
    with pytest.raises(MeasureError, match="must be a whole number of bands, steps or levels"):
        change(registry, "ONS4", ons4(), ons4(), threshold=1.5)


def test_star_one_area_up_a_step_is_meaningful_by_default(registry: Registry) -> None:
    result = change(registry, "STAR", star(), star(money=3))
    assert result.improved
    assert result.areas_improved == 1
    assert result.deltas["money"] == 1
    assert result.detail == "STAR: 1 of 8 areas improved by 1+ step (meaningful change needs 1)"


def test_star_min_areas_counts_areas_improved(registry: Registry) -> None:
    before, after = star(), star(money=3, lifestyle=4, feeling_positive=1)
    assert change(registry, "STAR", before, after, min_areas=2).improved
    result = change(registry, "STAR", before, after, min_areas=3)
    assert (result.improved, result.areas_improved) == (False, 2)


def test_star_no_change_is_not_meaningful(registry: Registry) -> None:
    assert not change(registry, "STAR", star(), star()).improved


@pytest.mark.parametrize("min_areas", [0, 9])
def test_min_areas_must_fit_the_instrument(registry: Registry, min_areas: int) -> None:
    with pytest.raises(MeasureError, match="STAR min_areas must be from 1 to 8"):
        change(registry, "STAR", star(), star(), min_areas=min_areas)


def test_min_areas_does_not_apply_to_a_single_score(registry: Registry) -> None:
    with pytest.raises(MeasureError, match="WEMWBS has one score, so min_areas does not apply"):
        change(registry, "WEMWBS", wemwbs(40), wemwbs(45), min_areas=2)


@pytest.mark.parametrize(
    ("before", "after", "improved"),
    [
        (47.0, 47.1, True),  # level 1 -> 2
        (47.1, 55.1, False),  # both level 2
        (55.1, 55.2, True),  # level 2 -> 3
        (72.4, 72.5, True),  # level 3 -> 4
        (72.5, 100, False),  # both level 4
        (60, 50, False),  # level 3 -> 2
    ],
)
def test_pam_improves_by_moving_up_a_level(
    registry: Registry, before: float, after: float, improved: bool
) -> None:
    assert change(registry, "PAM13", {"score": before}, {"score": after}).improved is improved


def test_pam_change_reports_score_and_level_deltas(registry: Registry) -> None:
    result = change(registry, "PAM13", {"score": 50.0}, {"score": 73.5})
    assert result.deltas == {"score": 23.5, "level": 2}
    assert result.detail == "PAM13 level 2 -> 4 (meaningful change is 1 level the right way)"
    assert not change(registry, "PAM13", {"score": 50}, {"score": 60}, threshold=2).improved


@pytest.mark.parametrize(
    ("after", "improved"),
    [((2, 3, 2), True), ((2, 2, 2), True), ((2, 3, 3), False), ((3, 3, 3), False)],
)
def test_ucla3_improves_by_going_down_one_or_more(
    registry: Registry, after: tuple[int, int, int], improved: bool
) -> None:
    before = {"1": 2, "2": 3, "3": 3}
    result = change(registry, "UCLA3", before, dict(zip(("1", "2", "3"), after, strict=True)))
    assert result.improved is improved
    assert result.deltas == {"total": sum(after) - 8}


def test_ucla3_change_is_explained_as_a_fall(registry: Registry) -> None:
    result = change(registry, "UCLA3", {"1": 3, "2": 3, "3": 3}, {"1": 3, "2": 3, "3": 2})
    assert result.detail == "UCLA3 -1 (meaningful change is -1)"


def test_comparing_different_instruments_is_refused(registry: Registry) -> None:
    baseline = registry.score("WEMWBS", wemwbs(40))
    followup = registry.score("SWEMWBS", swemwbs(20))
    with pytest.raises(MeasureError, match="must use the same instrument"):
        registry.compare(baseline, followup)


def test_comparing_different_versions_is_refused(registry: Registry) -> None:
    baseline = registry.score("WEMWBS", wemwbs(40))
    followup = dataclasses.replace(registry.score("WEMWBS", wemwbs(45)), version="2.0")
    with pytest.raises(MeasureError, match="from different versions are not comparable"):
        registry.compare(baseline, followup)


def test_comparing_incomplete_scores_is_refused(registry: Registry) -> None:
    baseline = registry.score("ONS4", ons4())
    followup = Scores("ONS4", "1.0", {"happiness": 7}, {"happiness": "high"})
    with pytest.raises(MeasureError, match="follow-up ONS4 scores are incomplete"):
        registry.compare(baseline, followup)


@pytest.mark.parametrize("threshold", [0, -3, float("nan")])
def test_a_threshold_must_be_positive(registry: Registry, threshold: float) -> None:
    with pytest.raises(MeasureError, match="meaningful change must be positive"):
        change(registry, "WEMWBS", wemwbs(40), wemwbs(45), threshold=threshold)


# --- commissioners' instrument files -----------------------------------------------------

K10 = """
[K10]
name = "Kessler Psychological Distress Scale"
version = "1.0"
licence = "Free to use."
scoring = "sum"
items = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
item_range = [1, 5]
better = "lower"
meaningful_change = 4

[K10.classify]
distress = [
    { up_to = 15, label = "low" },
    { up_to = 21, label = "moderate" },
    { up_to = 29, label = "high" },
    { up_to = 50, label = "very_high" },
]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "commissioner.toml"
    path.write_text(text)
    return path


def test_a_commissioner_adds_a_summed_questionnaire_with_toml_alone(tmp_path: Path) -> None:
    registry = Registry.load(write(tmp_path, K10))
    assert "K10" in registry.codes() and "WEMWBS" in registry.codes()
    before = registry.score("K10", numbered(10, 3))
    after = registry.score("K10", numbered(10, 2, _1=3, _2=3, _3=3, _4=3, _5=3, _6=3))
    assert before.raw == {"total": 30} and before.derived == {"distress": "very_high"}
    result = registry.compare(before, after)
    assert (result.improved, result.deltas) == (True, {"total": -4})


def test_a_commissioner_cannot_redefine_a_packaged_instrument(tmp_path: Path) -> None:
    path = write(tmp_path, K10.replace("[K10", "[WEMWBS"))
    with pytest.raises(InstrumentFileError, match="WEMWBS is already defined"):
        Registry.load(path)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('scoring = "sum"', 'scoring = "average"', "scoring"),
        ("meaningful_change = 4", "meaningful_change = 4\ncolour = 1", "colour"),
        ("item_range = [1, 5]", "item_range = [5, 1]", "item_range must be"),
        ("up_to = 50", "up_to = 40", "the last band must reach 50"),
        ("meaningful_change = 4", 'meaningful_change = 4\nchange_on = "metric"', "conversion"),
        ("meaningful_change = 4", "meaningful_change = 4\nmin_areas = 2", "per-item scoring"),
        ("meaningful_change = 4", "meaningful_change = 0", "meaningful_change"),
        ('"9", "10"]', '"9", "9"]', "items must be distinct"),
        ("[K10.classify]", "[K10.conversion]\n10 = 1.0\n\n[K10.classify]", "every possible total"),
    ],
)
def test_a_bad_definition_is_rejected_naming_file_and_instrument(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    assert old in K10
    with pytest.raises(InstrumentFileError, match=r"^commissioner.toml: K10") as caught:
        Registry.load(write(tmp_path, K10.replace(old, new)))
    assert problem in str(caught.value)


def test_an_unreadable_instruments_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InstrumentFileError, match="cannot read instruments file"):
        Registry.load(write(tmp_path, "[K10\nname = "))
    with pytest.raises(InstrumentFileError, match="cannot read instruments file"):
        Registry.load(tmp_path / "missing.toml")


# --- MYCAW (mean scoring) ------------------------------------------------------------------


def test_mycaw_profile_is_the_mean_kept_beside_the_scores(registry: Registry) -> None:
    scores = registry.score("MYCAW", {"concern_1": 5, "concern_2": 4, "wellbeing": 4})
    assert scores.raw == {"concern_1": 5, "concern_2": 4, "wellbeing": 4, "profile": 4.33}


@pytest.mark.parametrize(
    ("after", "improved"),
    [
        ({"concern_1": 4, "concern_2": 3, "wellbeing": 3}, True),  # 4.33 -> 3.33: -1
        ({"concern_1": 5, "concern_2": 3, "wellbeing": 3}, False),  # -0.67: not meaningful
        ({"concern_1": 6, "concern_2": 6, "wellbeing": 6}, False),  # worse
    ],
)
def test_mycaw_improves_when_the_profile_falls_by_a_point(
    registry: Registry, after: dict[str, int], improved: bool
) -> None:
    before = registry.score("MYCAW", {"concern_1": 5, "concern_2": 4, "wellbeing": 4})
    change = registry.compare(before, registry.score("MYCAW", after))
    assert change.improved is improved
    assert "MYCAW profile" in change.detail


def test_mycaw_answers_are_whole_numbers_from_0_to_6(registry: Registry) -> None:
    with pytest.raises(
        MeasureError, match="MYCAW item wellbeing must be a whole number from 0 to 6"
    ):
        registry.score("MYCAW", {"concern_1": 1, "concern_2": 1, "wellbeing": 7})
    with pytest.raises(MeasureError, match="MYCAW item concern_2 must be a whole number"):
        registry.score("MYCAW", {"concern_1": 1, "concern_2": 2.5, "wellbeing": 2})


def test_mycaw_takes_one_or_two_concerns_and_scores_the_mean_of_those_given(
    registry: Registry,
) -> None:
    one = registry.score("MYCAW", {"concern_1": 5, "wellbeing": 4})
    assert one.raw == {"concern_1": 5, "wellbeing": 4, "profile": 4.5}
    two = registry.score("MYCAW", {"concern_1": 5, "concern_2": 5, "wellbeing": 4})
    assert two.raw["profile"] == 4.67
    with pytest.raises(MeasureError, match="concern_1 is missing"):
        registry.score("MYCAW", {"concern_2": 5, "wellbeing": 4})
    with pytest.raises(MeasureError, match="wellbeing is missing"):
        registry.score("MYCAW", {"concern_1": 5})


def test_mycaw_change_is_over_the_baseline_s_concerns(registry: Registry) -> None:
    base = registry.score("MYCAW", {"concern_1": 5, "wellbeing": 4})  # profile 4.5
    later = registry.score("MYCAW", {"concern_1": 3, "wellbeing": 4})  # profile 3.5
    change = registry.compare(base, later)
    assert change.improved and change.deltas == {"concern_1": -2, "wellbeing": 0, "profile": -1}
    # A concern first named at the follow-up is scored there, not counted in the change.
    named_later = registry.score("MYCAW", {"concern_1": 3, "concern_2": 6, "wellbeing": 4})
    assert registry.compare(base, named_later).deltas["profile"] == -1
    # The follow-up scores the baseline's concerns again.
    both = registry.score("MYCAW", {"concern_1": 5, "concern_2": 5, "wellbeing": 4})
    with pytest.raises(MeasureError, match="concern_2 is missing"):
        registry.compare(both, later)
