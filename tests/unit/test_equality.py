"""Equality monitoring, pure: small-number suppression (primary and secondary), the
report's counts, and the postcode -> IMD decile lookup file and its loader."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from equality import imd
from equality.report import report
from equality.suppression import SUPPRESSED, suppress


def test_a_count_under_five_is_shown_as_under_five_and_so_is_a_second_cell() -> None:
    # Only "male" is under 5: shown with the total, it would be 20 - 12 - 5 = 3. So the
    # smallest cell still shown ("prefer_not_to_say", 5) is hidden too.
    shown, total = suppress({"female": 12, "male": 3, "prefer_not_to_say": 5})
    assert shown == {"female": 12, "male": SUPPRESSED, "prefer_not_to_say": SUPPRESSED}
    assert total == 20


def test_secondary_suppression_goes_on_until_the_hidden_cells_add_up_to_five() -> None:
    # 1 and 0 are hidden; together 1, which the total would give away: hide the 4 too.
    shown, total = suppress({"a": 30, "b": 1, "c": 0, "d": 4, "e": 9})
    assert shown == {"a": 30, "b": SUPPRESSED, "c": SUPPRESSED, "d": SUPPRESSED, "e": 9}
    assert total == 44


def test_no_suppression_when_every_cell_is_five_or_more_and_all_when_the_total_is_small() -> None:
    assert suppress({"a": 5, "b": 7}) == ({"a": 5, "b": 7}, 12)
    assert suppress({"a": 3, "b": 1}) == ({"a": SUPPRESSED, "b": SUPPRESSED}, SUPPRESSED)


def test_the_report_never_shows_a_cell_the_total_gives_away() -> None:
    people = [{"ethnicity": "white_british", "postcode": "SY11 1AA"}] * 9 + [
        {"ethnicity": "asian_bangladeshi"}
    ]
    made = report(people, imd.load())
    ethnicity = next(q for q in made.questions if q.question == "ethnicity")
    assert ethnicity.counts["asian_bangladeshi"] == SUPPRESSED
    assert ethnicity.counts["white_british"] == SUPPRESSED  # else 10 - 9 = 1 shows
    assert ethnicity.total == 10 and made.people == 10
    deciles = next(q for q in made.questions if q.question == "imd_decile")
    assert deciles.counts["4"] == SUPPRESSED  # 9 of them, but "not_answered" holds 1
    for question in made.questions:
        hidden = [k for k, v in question.counts.items() if v == SUPPRESSED]
        assert len(hidden) != 1, question


def test_the_lookup_finds_a_postcode_however_it_is_written() -> None:
    lookup = imd.load()
    assert lookup.is_sample and lookup.date == "2019-09-26"
    assert lookup.decile("sy11 1aa") == lookup.decile("SY111AA") == 4
    assert lookup.decile("SY99 9ZZ") is None and lookup.decile("not a postcode") is None


def test_imd_import_joins_the_published_files_into_a_lookup(tmp_path: Path) -> None:
    file7 = [
        "LSOA code (2011),LSOA name (2011),Index of Multiple Deprivation (IMD) Score,"
        "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived),"
        "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)",
        "E01028700,Shropshire 001A,20.1,12000,4",
        "E01028701,Shropshire 001B,8.2,26000,8",
    ]
    postcodes = [
        "pcd7,pcd8,pcds,dointr,doterm,usertype,oa11cd,lsoa11cd",
        "SY111AA,SY11 1AA,SY11 1AA,198001,,0,E00147000,E01028700",
        "SY101AB,SY10 1AB,SY10 1AB,198001,,0,E00147001,E01028701",
        "LL111AA,LL11 1AA,LL11 1AA,198001,,0,W00000001,W01000001",  # Wales: no IMD 2019
    ]
    out = tmp_path / "imd.csv.gz"
    rows = imd.join(postcodes, imd.deciles_by_lsoa(file7))
    assert imd.write(out, "IoD2019 File 7 + ONS PCD-LSOA", "2019-09-26", rows) == 2
    assert gzip.decompress(out.read_bytes()).startswith(imd.MAGIC.encode())
    lookup = imd.read(out)
    assert (lookup.decile("SY11 1AA"), lookup.decile("SY10 1AB")) == (4, 8)
    assert lookup.decile("LL11 1AA") is None and not lookup.is_sample


def test_a_lookup_without_its_source_or_with_a_bad_line_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{imd.MAGIC}\n# date: 2019-09-26\npostcode,imd_decile\nSY111AA,4\n")
    with pytest.raises(imd.ImdFileError, match="source and date"):
        imd.read(bad)
    bad.write_text(f"{imd.MAGIC}\n# source: x\n# date: y\nSY111AA,11\n")
    with pytest.raises(imd.ImdFileError, match="line 4"):
        imd.read(bad)
