"""Committed histories must replay against today's workflow code: a change to the command
sequence that is not behind ``workflow.patched`` fails here."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.tracing import CommandTraceInterceptor
from workflows import patches
from workflows.models import HISTORY_BOUND_EVENTS
from workflows.referral import ReferralWorkflow
from workflows.sandbox import RUNNER

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_the_recorded_paths_are_committed():
    names = {p.name.split(".")[0] for p in HISTORIES}
    assert {
        "short_path",
        "long_path_with_reentries",
        "continued_as_new",
        "casework_goals_midpoint_activity",
        "traced_commands",
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


def _trace_ids(event: dict[str, Any]) -> str | None:
    """The trace id in an event's ``_tracer-data`` header (TracingInterceptor's)."""
    attributes = next(v for k, v in event.items() if k.endswith("EventAttributes"))
    if "acceptedRequest" in attributes:
        attributes = attributes["acceptedRequest"]["input"]
    field = attributes.get("header", {}).get("fields", {}).get("_tracer-data")
    if field is None:
        return None
    carrier = json.loads(base64.b64decode(field["data"]))
    return str(carrier["traceparent"].split("-")[1])


def test_the_traced_history_shows_each_activity_in_its_callers_trace():
    """As recorded (workers.tracing): each batch's activity carries the trace of the last
    command or fact that changed the case; a fact that changed nothing (the second
    attendance report, for an unknown handoff) is in no activity's trace."""
    path = next(p for p in HISTORIES if p.name.startswith("traced_commands"))
    events = json.loads(path.read_text())["events"]
    callers = [
        _trace_ids(e)
        for e in events
        if e["eventType"]
        in (
            "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        )
    ]
    activities = [
        _trace_ids(e) for e in events if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    # Started, accept, contact, assess, plan, attended, the unknown handoff's, assign.
    assert len(callers) == 8 and None not in callers and len(set(callers)) == 8
    # The workflow's first task took the start and the accept together: one batch, in the
    # trace of its last command (the API's update-with-start waits for the creation's
    # batch, so there a creation is persisted in its own request's trace).
    assert activities == callers[1:6] + callers[7:]


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    # With the interceptors the worker runs (the client's, then the worker's own).
    replayer = Replayer(
        workflows=[ReferralWorkflow],
        workflow_runner=RUNNER,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor(), CommandTraceInterceptor()],
    )
    await replayer.replay_workflow(history)


async def test_the_traced_history_replays_without_the_tracing_interceptors():
    """The trace headers are not part of the commands: a worker without the interceptors
    (one rolled back past workers.tracing) replays a history recorded with them."""
    path = next(p for p in HISTORIES if p.name.startswith("traced_commands"))
    history = WorkflowHistory.from_json("replay-untraced", path.read_text())
    replayer = Replayer(
        workflows=[ReferralWorkflow], workflow_runner=RUNNER, data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(history)
