"""Committed histories must replay against today's workflow code: a change to the command
sequence that is not behind ``workflow.patched`` fails here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import patches
from workflows.models import HISTORY_BOUND_EVENTS
from workflows.referral import ReferralWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_the_recorded_paths_are_committed():
    names = {p.name.split(".")[0] for p in HISTORIES}
    assert {
        "short_path",
        "long_path_with_reentries",
        "continued_as_new",
        "casework_goals_midpoint_activity",
    } <= names


def test_the_casework_history_exercises_goals_mid_point_measures_and_the_activity_log():
    path = next(p for p in HISTORIES if p.name.startswith("casework_goals_midpoint_activity"))
    text = path.read_text()
    for update in ("log_activity", "correct_activity", "delete_activity", "record_checkin"):
        assert f'"{update}"' in text, update


def test_continue_as_new_history_ends_by_handing_over():
    path = next(p for p in HISTORIES if p.name.startswith("continued_as_new"))
    events = json.loads(path.read_text())["events"]
    assert events[-1]["eventType"] in (
        "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
        "WorkflowExecutionContinuedAsNew",
    )


def test_a_run_since_the_history_bound_records_its_patch_and_hands_over_at_the_bound():
    path = next(p for p in HISTORIES if p.name.startswith("history_bound"))
    events = json.loads(path.read_text())["events"]
    markers = [
        json.loads(base64.b64decode(payload["data"]))["id"]
        for event in events
        if "markerRecordedEventAttributes" in event
        for payload in event["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"]
    ]
    assert markers == [patches.HISTORY_BOUND]
    assert HISTORY_BOUND_EVENTS <= len(events) < HISTORY_BOUND_EVENTS + 20
    assert events[-1]["eventType"] in (
        "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
        "WorkflowExecutionContinuedAsNew",
    )


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[ReferralWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
