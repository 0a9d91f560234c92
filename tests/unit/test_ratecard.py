"""Rate cards: loading, validation messages that name the field, and version selection."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from events import topics
from events.catalogue import registry
from events.outcome import OUTCOME_EVENTS, OUTCOME_TYPES, OutcomeEvent
from payments.errors import RateCardError
from payments.ratebook import PACKAGED_DIR, RateCardBook
from payments.ratecard import load_rate_card, parse_rate_card, pounds

CONTRACT = "demo-county-sp-2026"


def packaged_data() -> dict[str, Any]:
    return tomllib.loads((PACKAGED_DIR / "default.toml").read_text(encoding="utf-8"))


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The packaged rate card with one dotted field set (or removed, for ``...``)."""
    data = copy.deepcopy(packaged_data())
    *parents, last = path.split(".")
    table = data
    for part in parents:
        table = table.setdefault(part, {})
    if value is ...:
        del table[last]
    else:
        table[last] = value
    return data


def test_packaged_rate_cards_load_with_the_documented_prices() -> None:
    book = RateCardBook.packaged()
    assert book.contracts() == [CONTRACT]
    first, second = book.versions(CONTRACT)
    assert (first.version, second.version) == ("2026.1", "2027.1")
    assert {m: x.price_pence for m, x in first.metrics.items()} == {
        "M1": 25_000,
        "M2": 30_000,
        "M3": 50_000,
        "M4": 40_000,
        "M5": 15_000,
        "M7": 35_000,
    }
    assert first.caps.total_contract_pence == 846_000_000
    assert first.metrics["M3"].instruments["WEMWBS"].min_change == 3
    assert first.metrics["M3"].instruments["STAR"].min_areas == 2
    assert second.metrics["M1"].price_pence == 25_750


@pytest.mark.parametrize(
    ("moment", "version"),
    [
        (datetime(2026, 4, 1, 9, tzinfo=UTC), "2026.1"),
        (datetime(2027, 3, 31, 22, 59, tzinfo=UTC), "2026.1"),  # 23:59 BST on 31 March
        (datetime(2027, 3, 31, 23, 0, tzinfo=UTC), "2027.1"),  # midnight BST, 1 April
        (datetime(2028, 1, 1, tzinfo=UTC), "2027.1"),
    ],
)
def test_the_version_in_force_is_the_latest_effective_on_the_outcome_date(
    moment: datetime, version: str
) -> None:
    assert RateCardBook.packaged().in_force(CONTRACT, moment).version == version


def test_a_claim_finds_the_version_it_was_priced_with_again() -> None:
    book = RateCardBook.packaged()
    assert book.version(CONTRACT, "2026.1").metrics["M1"].price_pence == 25_000
    with pytest.raises(RateCardError, match=r"no rate card version '2025\.9'"):
        book.version(CONTRACT, "2025.9")


def test_no_version_in_force_before_the_first_takes_effect() -> None:
    with pytest.raises(RateCardError, match="the first takes effect on 2026-04-01"):
        RateCardBook.packaged().in_force(CONTRACT, datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(RateCardError, match="no rate card for contract 'nope'"):
        RateCardBook.packaged().in_force("nope", datetime(2026, 5, 1, tzinfo=UTC))


def test_contracts_are_found_by_the_partner_they_pay() -> None:
    book = RateCardBook.packaged()
    assert book.contracts_for("north-wellbeing") == [CONTRACT]
    assert book.contracts_for("walking-group") == []


def test_contract_dates_include_the_end_date() -> None:
    card = RateCardBook.packaged().versions(CONTRACT)[0]
    assert card.within_contract(date(2029, 3, 31))
    assert not card.within_contract(date(2029, 4, 1))
    assert not card.within_contract(date(2026, 3, 31))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "metrics.M3.instruments.WEMWBS.min_change",
            0,
            "metrics.M3.instruments.WEMWBS.min_change: must be > 0",
        ),
        ("metrics.M1.price_pence", 250.0, "metrics.M1.price_pence: must be a whole number"),
        ("metrics.M1.price_pence", -1, "metrics.M1.price_pence: must be > 0"),
        (
            "metrics.M3.instruments.WEMWBS.min_change",
            "3",
            "metrics.M3.instruments.WEMWBS.min_change: must be a number",
        ),
        ("caps.total_contract_pence", ..., "caps.total_contract_pence: is required"),
        ("caps.per_persn_pence", 100, "caps.per_persn_pence: is not a rate-card field"),
        ("currency", "EUR", "currency: must be 'GBP'"),
        ("end_date", date(2026, 1, 1), "end_date: must be on or after start_date"),
        ("effective_from", date(2030, 1, 1), "effective_from: must fall between"),
        ("start_date", "next spring", "start_date: must be a date"),
        ("timezone", "Mars/Olympus", "timezone: must be a time zone name"),
        ("partners", [], "partners: must not be empty"),
        ("re_entry.exclusion_days", -1, "re_entry.exclusion_days: must be >= 0"),
        ("re_entry.can_earn_again", "yes", "re_entry.can_earn_again: must be true or false"),
        ("metrics.M2.min_sessions", ..., "metrics.M2.min_sessions: is required for"),
        ("metrics.M1.min_sessions", 3, "metrics.M1.min_sessions: is required for, and only"),
        ("metrics.M3.instruments", {}, "metrics.M3.instruments: must name at least one"),
        (
            "metrics.M1.instruments",
            {"WEMWBS": {"min_change": 3}},
            "metrics.M1.instruments: only apply",
        ),
        (
            "metrics.M3.instruments.FOO",
            {"min_change": 1},
            "metrics.M3.instruments.FOO: unknown instrument",
        ),
        (
            "metrics.M3.instruments.WEMWBS.min_areas",
            2,
            "metrics.M3.instruments.WEMWBS.min_areas: WEMWBS has one score",
        ),
        (
            "metrics.M3.instruments.STAR.min_areas",
            9,
            "metrics.M3.instruments.STAR.min_areas: must be at most 8",
        ),
        (
            "metrics.M3.instruments.SWEMWBS.min_change",
            5,
            "metrics.M3.instruments.SWEMWBS.min_change: must be from 1 to 3",
        ),
        (
            "metrics.M3.instruments.STAR.min_change",
            1.5,
            "metrics.M3.instruments.STAR.min_change: must be a whole number",
        ),
        ("metrics.M3.max_pence", 100, "metrics.M3.max_pence: must be at least price_pence (50000)"),
        (
            "metrics.M4.outcome_type",
            "linkway.outcome.engagement.v1",
            "metrics.M4.outcome_type: M1 already pays for it",
        ),
        (
            "metrics.M4.outcome_type",
            "linkway.outcome.gp_visits.v1",
            "metrics.M4.outcome_type: must be",
        ),
        ("metrics.M1.max_per_person", 0, "metrics.M1.max_per_person: must be > 0"),
        (
            "metrics.M1.claimable_only_at_end",
            1,
            "metrics.M1.claimable_only_at_end: must be true or false",
        ),
        (
            "caps.per_person_pence",
            1000,
            "caps.per_person_pence: must be at least the cheapest price",
        ),
    ],
)
def test_an_invalid_rate_card_is_refused_naming_the_field(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(RateCardError) as caught:
        parse_rate_card(with_change(path, value))
    assert str(caught.value).startswith(message)


def test_the_outcome_types_table_holds_every_published_outcome_fact() -> None:
    """One table (``events.outcome.OUTCOME_EVENTS``): an outcome model left out of it would
    be dead-lettered by the payment consumer and refused by every rate card."""
    published = {t for t, model in registry().items() if issubclass(model, OutcomeEvent)}
    assert set(OUTCOME_TYPES) == published and len(OUTCOME_TYPES) == len(OUTCOME_EVENTS)
    assert {event.TOPIC for event in OUTCOME_EVENTS} == {topics.OUTCOMES}


@pytest.mark.parametrize("outcome_type", OUTCOME_TYPES)
def test_a_metric_may_pay_for_any_published_outcome_type(outcome_type: str) -> None:
    data = with_change("metrics.M1.outcome_type", outcome_type)
    data["metrics"] = {"M1": data["metrics"]["M1"]}
    if outcome_type in (OUTCOME_TYPES[2], OUTCOME_TYPES[3]):
        data["metrics"]["M1"]["instruments"] = {"WEMWBS": {"min_change": 3}}
    if outcome_type == OUTCOME_TYPES[1]:
        data["metrics"]["M1"]["min_sessions"] = 3
    if outcome_type == "linkway.outcome.distal_change.v1":
        data["metrics"]["M1"]["measure"] = "ae_attendances"
    assert parse_rate_card(data).metrics["M1"].outcome_type == outcome_type


def test_an_unpublished_outcome_type_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(RateCardError) as refused:
        parse_rate_card(with_change("metrics.M1.outcome_type", "linkway.outcome.gp_visits.v1"))
    assert str(refused.value).startswith("metrics.M1.outcome_type: must be ")
    assert all(t in str(refused.value) for t in OUTCOME_TYPES)


def test_the_rate_card_guide_lists_exactly_the_published_outcome_types() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "rate-card.md").read_text(encoding="utf-8")
    rows = {line.split("`")[1] for line in guide.splitlines() if line.startswith("| `linkway.")}
    assert rows == set(OUTCOME_TYPES)


def test_a_metric_id_must_be_a_short_code() -> None:
    data = packaged_data()
    data["metrics"]["M 5"] = data["metrics"].pop("M4")
    with pytest.raises(RateCardError, match=r"^metrics\.M 5: may only use"):
        parse_rate_card(data)


def test_a_file_error_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "county.toml"
    broken.write_text('contract_id = "x"\nname = ', encoding="utf-8")
    with pytest.raises(RateCardError, match=r"cannot read rate card county\.toml"):
        load_rate_card(broken)
    wrong = tmp_path / "wrong.toml"
    text = (PACKAGED_DIR / "default.toml").read_text(encoding="utf-8")
    wrong.write_text(text.replace("price_pence = 25_000", "price_pence = 0"), encoding="utf-8")
    with pytest.raises(RateCardError, match=r"^wrong.toml: metrics.M1.price_pence: must be > 0"):
        load_rate_card(wrong)


def test_two_versions_of_a_contract_cannot_share_an_effective_date_or_a_name() -> None:
    first = parse_rate_card(packaged_data())
    same_day = parse_rate_card(with_change("version", "2026.2"))
    with pytest.raises(RateCardError, match="both take effect on 2026-04-01"):
        RateCardBook([first, same_day])
    later = parse_rate_card(with_change("effective_from", date(2027, 1, 1)))
    with pytest.raises(RateCardError, match=r"version 2026\.1 appears twice"):
        RateCardBook([first, later])


def test_a_book_loads_files_and_directories(tmp_path: Path) -> None:
    extra = tmp_path / "other.toml"
    text = (PACKAGED_DIR / "default.toml").read_text(encoding="utf-8")
    extra.write_text(text.replace(CONTRACT, "other-county-2026"), encoding="utf-8")
    book = RateCardBook.load(PACKAGED_DIR, extra)
    assert book.contracts() == [CONTRACT, "other-county-2026"]


@pytest.mark.parametrize(
    ("pence", "text"), [(0, "0.00"), (5, "0.05"), (25_050, "250.50"), (-25_000, "-250.00")]
)
def test_pounds_are_formatted_without_floating_point(pence: int, text: str) -> None:
    assert pounds(pence) == text
