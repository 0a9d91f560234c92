"""The provider tool speaks Linkway's contract: what it sends parses as Linkway's own
events, and a report has the same event id whichever door (Kafka or HTTP) it uses."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from events import catalogue, provider
from inbound import provider_facts
from providerkit import contract
from providerkit.position import StateError, StateFile


def test_a_response_from_the_tool_is_a_valid_linkway_event_with_the_http_id() -> None:
    sent = contract.response("walking-group", "h-1", "r-1", "reject", reason_code="full")

    envelope, data = catalogue.parse(sent.value, frozenset({provider.ProviderResponse.TYPE}))

    assert isinstance(data, provider.ProviderResponse)
    assert (sent.topic, sent.key) == ("linkway.provider.responses", b"r-1")
    assert envelope.source == "urn:linkway:provider:walking-group"
    assert envelope.subject == data.referral_id == "r-1"
    assert (data.decision, data.reason_code) == ("reject", "full")
    assert envelope.id == provider_facts.response_event_id("walking-group", "h-1", "reject", "full")


def test_a_completion_from_the_tool_is_a_valid_linkway_event_with_the_http_id() -> None:
    sent = contract.response(
        "walking-group",
        "h-1",
        "r-1",
        "complete",
        delivered_code="course_completed",
        sessions_delivered=8,
    )

    _, data = catalogue.parse(sent.value, frozenset({provider.ProviderResponse.TYPE}))

    assert isinstance(data, provider.ProviderResponse)
    assert (data.decision, data.delivered_code, data.sessions_delivered) == (
        "complete",
        "course_completed",
        8,
    )
    assert sent.event_id == provider_facts.response_event_id(
        "walking-group",
        "h-1",
        "complete",
        delivered_code="course_completed",
        sessions_delivered=8,
    )


def test_an_attendance_report_from_the_tool_has_the_same_id_as_over_http() -> None:
    day = date(2026, 6, 1)
    sent = contract.attendance("walking-group", "h-1", "r-1", day, "did_not_attend")
    resent = contract.attendance("walking-group", "h-1", "r-1", day, "did_not_attend")

    envelope, data = catalogue.parse(sent.value, frozenset({provider.AttendanceReported.TYPE}))

    assert isinstance(data, provider.AttendanceReported)
    assert sent.topic == "linkway.provider.attendance"
    assert (data.session_date, data.status) == (day, "did_not_attend")
    assert envelope.id == resent.event_id
    assert envelope.id == provider_facts.attendance_event_id(
        "walking-group", "h-1", day, "did_not_attend"
    )
    assert contract.EVENT_ID_NAMESPACE == provider_facts.EVENT_ID_NAMESPACE


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"decision": "reject"}, "needs a reason code"),
        ({"decision": "reject", "reason_code": "No room!"}, "lower-case letters"),
        ({"decision": "waitlist"}, "needs a waitlist band"),
        ({"decision": "waitlist", "waitlist_band": "soon"}, "must be one of"),
        ({"decision": "maybe"}, "decision must be one of"),
        ({"decision": "complete"}, "needs what was delivered"),
        ({"decision": "accept", "delivered_code": "done"}, "needs what was delivered"),
        ({"decision": "complete", "delivered_code": "Done!"}, "is a code"),
    ],
)
def test_the_tool_refuses_a_response_linkway_would_dead_letter(kwargs, reason) -> None:
    with pytest.raises(contract.ContractError, match=reason):
        contract.response("walking-group", "h-1", "r-1", **kwargs)


def test_the_tool_reads_only_handoff_requests_made_to_it() -> None:
    def event(type_: str, provider_id: str) -> bytes:
        data = {
            "handoff_id": "h-1",
            "referral_id": "r-1",
            "episode": 1,
            "provider_id": provider_id,
            "service_id": "walks",
            "support_level": "2",
            "respond_by": "2026-06-11T10:00:00Z",
            "occurred_at": "2026-06-01T10:00:00Z",
        }
        return json.dumps({"type": type_, "data": data}).encode()

    mine = contract.read_handoff(
        event("linkway.handoff.requested.v1", "walking-group"), "walking-group"
    )

    assert mine is not None and (mine.handoff_id, mine.service_id) == ("h-1", "walks")
    assert (
        contract.read_handoff(
            event("linkway.handoff.requested.v2", "walking-group"), "walking-group"
        )
        is None
    )
    assert (
        contract.read_handoff(event("linkway.handoff.requested.v1", "befriending"), "walking-group")
        is None
    )
    assert contract.read_handoff(b"not json", "walking-group") is None


def test_the_state_file_is_one_providers_own(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.json", "walking-group")
    state.offsets["0"] = 4
    state.remember("h-1", referral_id="r-1")
    state.save()

    again = StateFile(tmp_path / "state.json", "walking-group")
    assert (again.offsets, again.referral_of("h-1")) == ({"0": 4}, "r-1")
    with pytest.raises(StateError, match="belongs to provider 'walking-group'"):
        StateFile(tmp_path / "state.json", "befriending")


def test_the_tool_needs_nothing_from_linkway_but_its_own_package() -> None:
    root = Path(contract.__file__).parent
    imported = set()
    for module in root.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])

    assert imported - set(sys.stdlib_module_names) == {"kafka", "providerkit"}


def test_the_tool_runs_as_a_module_and_explains_itself() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "providerkit", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(contract.__file__).parent.parent,
    )
    assert "receive" in shown.stdout and "report" in shown.stdout


def test_the_tool_reads_the_status_changes_of_its_own_handoffs() -> None:
    from datetime import UTC, datetime

    from events.handoff import HandoffUpdated

    def event(provider_id: str, **changes: object) -> bytes:
        data = HandoffUpdated(
            handoff_id="h-1",
            referral_id="r-1",
            episode=1,
            provider_id=provider_id,
            status="completed",
            delivered_code="course_completed",
            sessions_delivered=6,
            occurred_at=datetime(2026, 7, 1, tzinfo=UTC),
        ).model_dump(mode="json")
        return json.dumps({"type": HandoffUpdated.TYPE, "data": {**data, **changes}}).encode()

    done = contract.read_update(event("walking-group"), "walking-group")
    cancelled = contract.read_update(
        event("walking-group", status="cancelled", reason_code="plan_revised", delivered_code=None),
        "walking-group",
    )

    assert done is not None and (done.status, done.delivered_code, done.sessions_delivered) == (
        "completed",
        "course_completed",
        6,
    )
    assert cancelled is not None and cancelled.finished and cancelled.reason_code == "plan_revised"
    assert contract.read_update(event("befriending"), "walking-group") is None
    assert contract.read_handoff(event("walking-group"), "walking-group") is None
    assert contract.read_update(b"{}", "walking-group") is None
