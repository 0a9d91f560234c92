"""Reading a provider's attendance upload: good rows kept, each bad row reported."""

from __future__ import annotations

from datetime import date

import pytest

from api.attendance_csv import MAX_ROWS, CsvRejected, Row, RowError, parse


def test_good_rows_are_read_and_each_bad_row_is_reported_with_its_line() -> None:
    upload = (
        "\ufeffhandoff_id,session_date,status\r\n"
        "h-1,2026-06-01,attended\r\n"
        "h-1,01/06/2026,attended\r\n"
        "\r\n"
        "h-2,2026-06-02,came\r\n"
        "h 3,2026-06-02,attended\r\n"
        "h-2,2026-06-08,did_not_attend\r\n"
        "h-4,2026-06-08,attended,extra\r\n"
    ).encode()

    rows, errors = parse(upload)

    assert rows == [
        Row(2, "h-1", date(2026, 6, 1), "attended"),
        Row(7, "h-2", date(2026, 6, 8), "did_not_attend"),
    ]
    assert [(e.line, e.handoff_id) for e in errors] == [
        (3, "h-1"),
        (5, "h-2"),
        (6, None),  # not an id: not repeated back
        (8, "h-4"),
    ]
    assert "YYYY-MM-DD" in errors[0].error
    assert "status must be one of attended, did_not_attend" in errors[1].error
    assert "handoff_id must be" in errors[2].error
    assert errors[3].error == "the row has too many fields"


def test_the_same_session_with_two_statuses_is_refused_but_a_repeat_is_kept() -> None:
    upload = (
        b"handoff_id,session_date,status,referral_id\n"
        b"h-1,2026-06-01,attended,r-1\n"
        b"h-1,2026-06-01,attended,r-1\n"
        b"h-1,2026-06-01,did_not_attend,r-1\n"
    )

    rows, errors = parse(upload)

    assert [r.line for r in rows] == [2, 3]
    assert rows[0].referral_id == "r-1"
    assert errors == [
        RowError(
            4, "h-1", "line 2 reports the same session as attended; send one status per session"
        )
    ]


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (b"handoff,date,status\nh-1,2026-06-01,attended\n", "missing: handoff_id, session_date"),
        (b"handoff_id,session_date,status,notes\n", "unknown column(s) notes"),
        (b"\xff\xfe", "UTF-8"),
        (
            b"handoff_id,session_date,status\n" + b"h-1,2026-06-01,attended\n" * (MAX_ROWS + 1),
            "at most 1000 rows",
        ),
    ],
)
def test_an_unreadable_upload_is_refused_whole(upload: bytes, reason: str) -> None:
    with pytest.raises(CsvRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse(upload)
