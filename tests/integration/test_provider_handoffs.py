"""Tier Two providers on both doors, against the real embedded broker and Temporal dev
server: the provider tool (``linkway-provider``, kafka-python) and the provider HTTP API.

A provider receives only its own handoffs, accepts one and reports attendance, and the
referral and its outcome facts change; the same flow over HTTP gives the same result, and
so do duplicate, out-of-order and late reports. A provider reporting on another's handoff
is dead-lettered (Kafka) or answered 404 (HTTP), and nothing changes. A CSV upload with
bad rows applies the good ones and reports each bad one.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from events import topics
from messaging.deadletters import REASON_HEADER
from messaging.outbox import OutboxRow
from messaging.reader import read
from pathway import commands as cmd
from tests.conftest import temporal_address
from tests.integration.provider_harness import (
    Harness,
    eventually,
    json_lines,
    running,
    state_of,
    summary,
    until,
)
from tests.workflow.helpers import command
from workflows.referral import command_update

pytestmark = [pytest.mark.integration, pytest.mark.both_databases]
STATUSES = ("attended", "did_not_attend", "cancelled_by_person", "cancelled_by_provider")


def day(offset: int) -> str:
    """A session date relative to today: attendance is refused when dated before its
    handoff was requested (here: today) or after today, a day's grace either way."""
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


WEEK = [(day(-1), "attended"), (day(0), "attended"), (day(1), "attended")]


@pytest.fixture(scope="module")
async def harness(
    dev_env: Any,
    broker: str,
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str | None,
) -> AsyncIterator[Harness]:
    workdir = tmp_path_factory.mktemp("providers")
    address = temporal_address(dev_env)
    async with running(dev_env.client, address, broker, workdir, module_database_url) as h:
        yield h


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def upload(rows: Sequence[tuple[str, ...]]) -> bytes:
    lines = ["handoff_id,session_date,status", *(",".join(r) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


async def test_the_tool_over_kafka_and_the_http_api_give_the_same_result(
    harness: Harness,
) -> None:
    walks, friends, walks_http = harness.providers(3)
    kafka_ref, kafka_handoffs = await harness.planned(walks, friends)
    _, friends_only = await harness.planned(friends)
    http_ref, http_handoffs = await harness.planned(walks_http)
    await harness.published(walks, 1)
    await harness.published(friends, 2)

    # Kafka: the tool receives only its own handoff, and only once.
    sheet = harness.workdir / "walks-handoffs.csv"
    status, printed = await harness.tool(walks, "receive", "--json", "--csv", str(sheet))
    assert status == 0
    received = json_lines(printed)
    assert [h["handoff_id"] for h in received] == [kafka_handoffs[walks]]
    assert received[0]["service_id"] == f"{walks}-sessions"
    assert (await harness.tool(walks, "receive"))[1] == ""
    # The other provider keeps its position in a consumer group instead of the file.
    _, theirs = await harness.tool(friends, "receive", "--json", "--group", f"{friends}.tool")
    assert sorted(h["handoff_id"] for h in json_lines(theirs)) == sorted(
        [kafka_handoffs[friends], friends_only[friends]]
    )
    assert (await harness.tool(friends, "receive", "--group", f"{friends}.tool"))[1] == ""

    # It accepts, and reports the week's sessions from a CSV built from what it received.
    assert (await harness.tool(walks, "accept", kafka_handoffs[walks]))[0] == 0
    handoff = next(csv.DictReader(sheet.open()))
    week = write_csv(
        harness.workdir / "walks-week.csv",
        [{"handoff_id": handoff["handoff_id"], "session_date": d, "status": s} for d, s in WEEK],
    )
    status, said = await harness.tool(walks, "report", "--csv", str(week))
    assert (status, said.strip()) == (0, "sent 3 attendance report(s); 0 row(s) refused")

    # HTTP: the same flow for another provider without Kafka.
    headers = harness.token(walks_http)
    mine = (await harness.http.get("/provider/handoffs", headers=headers)).json()
    assert [h["handoff_id"] for h in mine] == [http_handoffs[walks_http]]
    assert mine[0]["status"] == "requested" and mine[0]["respond_by"] is not None
    hid = http_handoffs[walks_http]
    accepted = await harness.http.post(f"/provider/handoffs/{hid}/accept", headers=headers)
    assert accepted.status_code == 202
    report = await harness.http.post(
        "/provider/attendance",
        content=upload([(hid, d, s) for d, s in WEEK]),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert report.json()["applied"] == 3 and report.json()["errors"] == []

    by_kafka = await until(kafka_ref, lambda s: s.episode.attended_sessions == 3)
    by_http = await until(http_ref, lambda s: s.episode.attended_sessions == 3)
    assert summary(by_kafka, kafka_handoffs[walks]) == summary(by_http, hid)
    assert summary(by_http, hid)["handoff"] == ("in-progress", None, None, 3)
    assert summary(by_http, hid)["outcomes"] == ["engagement", "connection"]

    # The outcome fact for the payment engine reaches the outbox for both referrals.
    def connected() -> set[str]:
        with Session(harness.engine) as session:
            keys = session.exec(
                select(OutboxRow.key).where(OutboxRow.type == "linkway.outcome.connection.v1")
            ).all()
        return {f"referral-{key}" for key in keys}

    await eventually(lambda: asyncio.to_thread(lambda: {kafka_ref.id, http_ref.id} <= connected()))
    listed = (await harness.http.get(f"/provider/handoffs/{hid}", headers=headers)).json()
    assert (listed["status"], listed["attended"], listed["respond_by"]) == ("in-progress", 3, None)

    # The tool prints what became of its handoff, each a linkway.handoff.updated.v1 on its
    # topic: in progress (the first attendance), after accepted if the acceptance was
    # applied first (answers and attendance are separate topics, so either may come
    # first); the CSV sheet stays one row per handoff request.
    updates: list[dict[str, Any]] = []

    async def in_progress_printed() -> bool:
        _, changes = await harness.tool(walks, "receive", "--json", "--csv", str(sheet))
        updates.extend(u for u in json_lines(changes) if u.get("update"))
        return any(u["status"] == "in-progress" for u in updates)

    await eventually(in_progress_printed)
    assert {u["handoff_id"] for u in updates} == {kafka_handoffs[walks]}
    assert [u["status"] for u in updates] in (["accepted", "in-progress"], ["in-progress"])
    assert len(list(csv.DictReader(sheet.open()))) == 1


async def test_reporting_on_another_providers_handoff_changes_nothing(
    harness: Harness,
) -> None:
    walks, intruder = harness.providers(2)
    handle, handoffs = await harness.planned(walks)
    theirs = handoffs[walks]
    rid = handle.id.removeprefix("referral-")
    before = summary(await state_of(handle), theirs)
    intruding = harness.token(intruder)

    # HTTP: 404, exactly as for a handoff that does not exist.
    for path in (f"/provider/handoffs/{theirs}", "/provider/handoffs/no-such-handoff"):
        assert (await harness.http.get(path, headers=intruding)).status_code == 404
    accept = await harness.http.post(f"/provider/handoffs/{theirs}/accept", headers=intruding)
    assert accept.status_code == 404
    batch = await harness.http.post(
        "/provider/attendance",
        content=upload([(theirs, day(0), "attended")]),
        headers={**intruding, "Content-Type": "text/csv"},
    )
    assert batch.json()["errors"] == [
        {"line": 2, "handoff_id": theirs, "error": "no handoff with that id is visible to you"}
    ]

    # Kafka: the tool sends it (it cannot know), and Linkway dead-letters it with the reason.
    status, _ = await harness.tool(
        intruder,
        "report",
        theirs,
        "--referral",
        rid,
        "--date",
        day(0),
        "--status",
        "attended",
    )
    assert status == 0
    dlq = topics.dead_letter_topic(topics.PROVIDER_ATTENDANCE)

    def dead_lettered() -> list[str]:
        return [
            headers[REASON_HEADER].decode()
            for _, value, headers in read(harness.settings.kafka_bootstrap, dlq, idle_ms=500)
            if theirs.encode() in value
        ]

    reasons: list[str] = []

    async def arrived() -> bool:
        reasons[:] = await asyncio.to_thread(dead_lettered)
        return bool(reasons)

    await eventually(arrived)
    assert reasons == [f"unauthorised: handoff {theirs} was not made to provider {intruder}"]
    assert summary(await state_of(handle), theirs) == before


async def test_duplicate_out_of_order_and_late_reports_give_the_in_order_state(
    harness: Harness,
) -> None:
    (provider,) = harness.providers(1)
    in_order, a = await harness.planned(provider)
    by_kafka, b = await harness.planned(provider)
    by_http, c = await harness.planned(provider)
    await harness.published(provider, 3)
    await harness.tool(provider, "receive")
    headers = {**harness.token(provider), "Content-Type": "text/csv"}
    sessions = [(day(0), "attended"), (day(1), "did_not_attend")]
    late = (day(-1), "attended")

    async def http_report(hid: str, rows: list[tuple[str, str]]) -> dict[str, Any]:
        response = await harness.http.post(
            "/provider/attendance", content=upload([(hid, *r) for r in rows]), headers=headers
        )
        return dict(response.json())

    # In order over HTTP: accept, then the sessions as they happen, the late one last.
    await harness.http.post(f"/provider/handoffs/{a[provider]}/accept", headers=headers)
    await http_report(a[provider], [*sessions, late])

    # Kafka, out of order and doubled: attendance before acceptance, the late session
    # first, every report sent twice.
    week = write_csv(
        harness.workdir / "shuffled.csv",
        [
            {"handoff_id": b[provider], "session_date": d, "status": s}
            for d, s in [late, *reversed(sessions)]
        ],
    )
    for _ in range(2):
        await harness.tool(provider, "report", "--csv", str(week))
    for _ in range(2):
        await harness.tool(provider, "accept", b[provider])

    # HTTP, out of order and retried: the retried upload is recognised as the same reports.
    first = await http_report(c[provider], [sessions[1], late, sessions[0]])
    retried = await http_report(c[provider], [sessions[1], late, sessions[0]])
    await harness.http.post(f"/provider/handoffs/{c[provider]}/accept", headers=headers)
    assert (first["applied"], retried["applied"], retried["duplicates"]) == (3, 0, 3)

    def done(state: Any) -> bool:
        return (
            len(state.episode.recent_sessions) == 3
            and state.episode.handoffs[next(iter(state.episode.handoffs))].status == "in-progress"
        )

    expected = summary(await until(in_order, done), a[provider])
    assert expected["handoff"] == ("in-progress", None, None, 2)
    assert summary(await until(by_kafka, done), b[provider]) == expected
    assert summary(await until(by_http, done), c[provider]) == expected


async def test_a_csv_upload_applies_the_good_rows_and_reports_each_bad_one(
    harness: Harness,
) -> None:
    mine, other = harness.providers(2)
    handle, handoffs = await harness.planned(mine)
    _, others = await harness.planned(other)
    hid = handoffs[mine]
    rows = [
        (hid, day(-1), "attended"),
        (hid, day(0), "came"),
        (hid, "08/06/2026", "attended"),
        ("no-such-handoff", day(0), "attended"),
        (others[other], day(0), "attended"),
        (hid, day(1), "did_not_attend"),
        (hid, day(1), "attended"),
    ]
    headers = {**harness.token(mine), "Content-Type": "text/csv"}

    report = (
        await harness.http.post("/provider/attendance", content=upload(rows), headers=headers)
    ).json()
    again = (
        await harness.http.post("/provider/attendance", content=upload(rows), headers=headers)
    ).json()

    assert [(r["line"], r["duplicate"]) for r in report["rows"]] == [(2, False), (7, False)]
    assert [(e["line"], e["error"]) for e in report["errors"]] == [
        (3, "status must be one of " + ", ".join(STATUSES)),
        (4, "session_date must be a date written YYYY-MM-DD"),
        (5, "no handoff with that id is visible to you"),
        (6, "no handoff with that id is visible to you"),
        (8, "line 7 reports the same session as did_not_attend; send one status per session"),
    ]
    assert (report["applied"], report["rejected"]) == (2, 5)
    assert (again["applied"], again["duplicates"], again["rejected"]) == (0, 2, 5)
    state = await until(handle, lambda s: len(s.episode.recent_sessions) == 2)
    assert [(str(d), s) for d, s in summary(state, hid)["sessions"]] == [
        (day(-1), "attended"),
        (day(1), "did_not_attend"),
    ]
    unreadable = await harness.http.post(
        "/provider/attendance", content=b"who,when\n", headers=headers
    )
    assert unreadable.status_code == 422
    assert "missing: handoff_id, session_date, status" in unreadable.json()["detail"]


async def test_a_handoff_finishes_by_either_door_and_the_provider_reads_each_move(
    harness: Harness,
) -> None:
    """Completed with what was delivered by the tool (Kafka) and over HTTP; cancelled by
    the link worker with a reason; every move reaches the provider's own topic."""
    by_tool, by_http, cancelled = harness.providers(3)
    tool_ref, tool_handoffs = await harness.planned(by_tool)
    http_ref, http_handoffs = await harness.planned(by_http)
    gone_ref, gone_handoffs = await harness.planned(cancelled)
    await harness.published(by_tool, 1)

    assert (await harness.tool(by_tool, "receive"))[0] == 0
    assert (await harness.tool(by_tool, "accept", tool_handoffs[by_tool]))[0] == 0
    status, said = await harness.tool(
        by_tool, "complete", tool_handoffs[by_tool], "--delivered", "course_completed"
    )
    assert status == 0, said
    hid = http_handoffs[by_http]
    headers = harness.token(by_http)
    assert (
        await harness.http.post(f"/provider/handoffs/{hid}/accept", headers=headers)
    ).status_code == 202
    done = await harness.http.post(
        f"/provider/handoffs/{hid}/complete",
        json={"delivered_code": "course_completed", "sessions_delivered": 8},
        headers=headers,
    )
    assert done.status_code == 202, done.text
    refused = await harness.http.post(
        f"/provider/handoffs/{hid}/complete", json={"delivered_code": "Done!"}, headers=headers
    )
    assert refused.status_code == 422
    assert "delivered_code" in refused.text and "Done!" not in refused.text
    await gone_ref.execute_update(
        command_update(cmd.CancelHandoff),
        command(cmd.CancelHandoff, handoff_id=gone_handoffs[cancelled], reason_code="moved_away"),
    )

    tool_state = await until(
        tool_ref, lambda s: s.episode.handoffs[tool_handoffs[by_tool]].status == "completed"
    )
    http_state = await until(http_ref, lambda s: s.episode.handoffs[hid].status == "completed")
    gone = (await state_of(gone_ref)).episode.handoffs[gone_handoffs[cancelled]]
    assert tool_state.episode.handoffs[tool_handoffs[by_tool]].delivered_code == "course_completed"
    assert (http_state.episode.handoffs[hid].sessions_delivered, gone.status, gone.reason_code) == (
        8,
        "cancelled",
        "moved_away",
    )

    def moves(provider_id: str) -> list[str]:
        with Session(harness.engine) as session:
            rows = session.exec(
                select(OutboxRow)
                .where(OutboxRow.topic == topics.handoffs_topic(provider_id))
                .where(OutboxRow.type == "linkway.handoff.updated.v1")
                .order_by(OutboxRow.seq)
            ).all()
        return [json.loads(r.payload)["data"]["status"] for r in rows]

    both = ["accepted", "completed"]
    # Each provider's topic is published on its own: wait for both, not one then the other.
    await eventually(lambda: asyncio.to_thread(lambda: moves(by_http) == moves(by_tool) == both))
    assert moves(cancelled) == ["cancelled"]
    listed = (await harness.http.get(f"/provider/handoffs/{hid}", headers=headers)).json()
    assert listed["status"] == "completed"
