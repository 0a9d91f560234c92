"""Versioned workflow state: what a referral carries across continue-as-new for years is
read back at any earlier schema version, through pure upcasters, and a version this code
does not know is refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from pathway import versions
from pathway.state import CaseState
from tests.unit.pathway_fixtures import at_stage
from workflows.models import ReferralInput

STATES = Path(__file__).resolve().parents[1] / "workflow" / "states"
V1_INPUT = STATES / "referral_input.v1.json"


def test_every_earlier_version_has_an_upcaster_to_the_next() -> None:
    assert set(versions.STATE_UPCASTERS) == set(range(1, versions.STATE_VERSION))
    assert set(versions.INPUT_UPCASTERS) == set(range(1, versions.INPUT_VERSION))


def test_a_committed_fixture_exists_for_every_earlier_version() -> None:
    # The upcasters are tested on real stored shapes, not on ones made up today.
    found = {int(p.name.split(".v")[1].split(".")[0]) for p in STATES.glob("referral_input.v*")}
    assert found >= set(range(1, versions.INPUT_VERSION))


def test_a_version_1_input_reads_as_the_current_version_with_nothing_lost() -> None:
    stored = json.loads(V1_INPUT.read_text())
    assert "schema_version" not in stored and "schema_version" not in stored["state"]
    read = ReferralInput.model_validate_json(V1_INPUT.read_text())
    assert read.schema_version == versions.INPUT_VERSION
    assert read.state is not None and read.state.schema_version == versions.STATE_VERSION
    again = read.model_dump(mode="json")
    # Nothing lost: every stored value reads back as it was. Fields added since (with
    # defaults, needing no upcaster) may appear beside them.
    assert _contains(again["state"], {**stored["state"], "schema_version": versions.STATE_VERSION})
    assert {k: v for k, v in again.items() if k not in ("state", "schema_version")} == {
        k: v for k, v in stored.items() if k != "state"
    }


def _contains(read: object, stored: object) -> bool:
    """``read`` holds everything ``stored`` holds, recursively, with the same values."""
    if isinstance(stored, dict):
        return isinstance(read, dict) and all(
            key in read and _contains(read[key], value) for key, value in stored.items()
        )
    if isinstance(stored, list):
        return (
            isinstance(read, list)
            and len(read) == len(stored)
            and all(_contains(r, v) for r, v in zip(read, stored, strict=True))
        )
    return read == stored


def test_the_upcasters_are_pure_and_leave_their_input_alone() -> None:
    stored = json.loads(V1_INPUT.read_text())["state"]
    before = json.dumps(stored, sort_keys=True)
    assert versions.upcast_state(stored) == versions.upcast_state(stored)
    assert json.dumps(stored, sort_keys=True) == before


def test_current_state_round_trips_through_json_unchanged() -> None:
    state = at_stage("supported").state
    assert CaseState.model_validate_json(state.model_dump_json()) == state


def test_a_state_built_in_code_is_current_and_not_upcast() -> None:
    state = at_stage("triage").state
    assert state.schema_version == versions.STATE_VERSION


@pytest.mark.parametrize("version", [versions.STATE_VERSION + 1, 0, "2", True])
def test_a_version_this_worker_cannot_read_is_refused_with_a_clear_message(version) -> None:
    stored = json.loads(V1_INPUT.read_text())["state"] | {"schema_version": version}
    with pytest.raises(ValidationError, match=r"schema.version"):
        CaseState.model_validate_json(json.dumps(stored))


def test_a_newer_version_says_to_run_the_newer_worker() -> None:
    newer = {"schema_version": versions.INPUT_VERSION + 1}
    with pytest.raises(versions.UnknownSchemaVersion, match="run the newer worker"):
        versions.upcast_input(newer)


def test_a_version_2_plan_with_a_goal_count_reads_as_that_many_goals_in_progress() -> None:
    # Version 3 holds structured goals; a plan agreed before them keeps its count, and
    # its goals can be updated at check-in and review like any others.
    read = ReferralInput.model_validate_json((STATES / "referral_input.v2.json").read_text())
    assert read.state is not None
    episode = read.state.episode
    assert episode.goal_count == 2
    assert [(g.number, g.category, g.status) for g in episode.goals] == [
        (1, "unspecified", "in_progress"),
        (2, "unspecified", "in_progress"),
    ]
    assert versions.upcast_state_v2_v3({"episode": {"goals": []}, "schema_version": 2}) == {
        "episode": {"goals": []},
        "schema_version": 3,
    }
