"""The referrer's view of a referral, projected from its lifecycle events: a decline
says why (coded, in words, SNOMED CT coded), only the first of each milestone counts, a
draft completion report is not yet "completed", and the summary needs consent."""

from __future__ import annotations

from typing import Any

from pathway.referrer import project, reason_display

T = "2027-01-0{}T09:00:00+00:00"


def ev(kind: str, day: int = 1, episode: int = 1, **data: Any) -> tuple[str, dict[str, Any]]:
    return f"linkway.referral.{kind}.v1", {"episode": episode, "occurred_at": T.format(day), **data}


def test_a_declined_referral_shows_the_reason_coded_and_in_words() -> None:
    view = project(
        [
            ev("received"),
            ev("declined", 2, reason_code="out_of_area"),
            ev("dormant", 2, reason_code="declined"),
        ],
        episode=1,
        consent_to_share=True,
    )
    assert view.status == "declined"
    assert view.reason is not None and view.reason.code == "out_of_area"
    assert view.reason.display == "The person lives outside the area the service covers"
    assert [(m.status, m.snomed) for m in view.milestones] == [
        ("received", None),
        ("declined", ("871711000000103", "Social prescribing declined")),
    ]


def test_an_unlisted_reason_is_shown_as_itself_in_words() -> None:
    assert reason_display("moved_to_care_home") == "Moved to care home"


def test_first_contact_is_the_first_contacted_attempt_and_a_revised_plan_is_not_new() -> None:
    view = project(
        [
            ev("received"),
            ev("accepted"),
            ev("contact_attempted", 2, outcome="no_answer"),
            ev("contact_attempted", 3, outcome="contacted"),
            ev("plan_agreed", 4),
            ev("plan_agreed", 5),
            ev("accepted", 1, episode=2),  # another episode's
        ],
        episode=1,
        consent_to_share=True,
    )
    assert [(m.status, m.at.day) for m in view.milestones] == [
        ("received", 1),
        ("accepted", 1),
        ("first_contact", 3),
        ("plan_agreed", 4),
    ]


def test_a_draft_report_is_not_completion_and_the_summary_needs_consent() -> None:
    ended = [ev("received"), ev("dormant", 2, reason_code="review_complete")]
    report = {
        "goal_count": 2,
        "goals": [{"goal": 1, "achieved": "achieved"}, {"goal": 2, "achieved": "not_achieved"}],
        "attended_sessions": 4,
        "measures": [{"instrument": "WEMWBS", "improved_at_review": True}],
        "ongoing_plan": ["self_managing"],
    }
    drafted = project([*ended, ev("completion_reported", 3, status="draft", **report)], 1, True)
    final = project([*ended, ev("completion_reported", 4, status="final", **report)], 1, True)
    private = project([*ended, ev("completion_reported", 4, **report)], 1, False)

    assert (drafted.status, drafted.summary) == ("ended", None)
    assert final.status == "completed" and final.summary is not None
    assert (final.summary.goals_achieved, final.summary.sessions_attended) == (1, 4)
    assert final.summary.improved_instruments == ["WEMWBS"]
    assert (private.status, private.summary) == ("completed", None)
