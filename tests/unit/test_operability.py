"""Operability without servers: the API's probes, the readings behind `linkway status`
and the relay's gauges, and shutdown budgets that let work in flight finish."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities.readmodel import ReferralRow
from api import probes
from infra.settings import Settings
from messaging.outbox import OutboxRow
from ops import health
from tests.unit.test_compose import compose

ROOT = Path(__file__).resolve().parents[2]


class Temporal:
    def __init__(self, healthy: bool) -> None:
        self.service_client = self
        self.healthy = healthy

    async def check_health(self) -> bool:
        if not self.healthy:
            raise ConnectionError("no frontend")
        return True


def probe_app(engine: Engine, healthy: bool) -> TestClient:
    app = FastAPI()
    app.include_router(probes.router)
    app.state.deps = SimpleNamespace(engine=engine, client=Temporal(healthy))
    return TestClient(app)


def test_readiness_is_503_while_temporal_is_away_and_liveness_stays_200(engine: Engine) -> None:
    up, down = probe_app(engine, True), probe_app(engine, False)
    assert up.get("/readyz").json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    answer = down.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["temporal"] == "unavailable (ConnectionError)"
    assert down.get("/livez").status_code == 200


def outbox_row(seq: int, age: timedelta, published: bool = False) -> OutboxRow:
    now = datetime.now(UTC)
    return OutboxRow(
        event_id=f"e-{seq}",
        topic="linkway.referrals",
        key="r-1",
        type="linkway.referral.received.v1",
        payload="{}",
        created_at=now - age,
        published_at=now if published else None,
    )


def test_the_relay_is_stalled_when_the_oldest_unpublished_row_is_old(engine: Engine) -> None:
    assert health.outbox_backlog(engine) == (0, 0.0)
    assert health.check_relay(engine).ok
    with Session(engine) as session:
        session.add(outbox_row(1, timedelta(hours=1), published=True))
        session.add(outbox_row(2, timedelta(seconds=5)))
        session.commit()
    count, age = health.outbox_backlog(engine)
    assert count == 1 and 4 < age < 60
    assert health.check_relay(engine).ok
    with Session(engine) as session:
        session.add(outbox_row(3, timedelta(minutes=5)))
        session.commit()
    stalled = health.check_relay(engine)
    assert not stalled.ok and stalled.detail.startswith("2 unpublished, oldest 30")


def referral(rid: str, stage: str, overdue: list[str]) -> ReferralRow:
    return ReferralRow(
        referral_id=rid,
        partner_id="north-wellbeing",
        locality="oswestry",
        version=1,
        episode=1,
        stage=stage,
        consent_to_share=True,
        opened_at=datetime.now(UTC),
        overdue=json.dumps(overdue),
    )


def test_referrals_by_stage_and_overdue_actions_come_from_the_read_model(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(referral("r-1", "contacting", ["first_contact"]))
        session.add(referral("r-2", "contacting", []))
        session.add(referral("r-3", "supported", ["provider_response", "first_contact"]))
        session.commit()
    assert health.referrals_by_stage(engine) == {"contacting": 2, "supported": 1}
    assert health.overdue_actions(engine) == {"first_contact": 2, "provider_response": 1}


def test_the_platform_waits_longer_than_a_process_takes_to_finish_its_work() -> None:
    period = compose()["x-linkway"]["stop_grace_period"]
    seconds = int(re.fullmatch(r"([0-9]+)s", period).group(1))  # type: ignore[union-attr]
    assert Settings().shutdown_grace_seconds + 5 <= seconds


def test_the_shutdown_budget_reaches_the_worker_and_the_consumers() -> None:
    from messaging.consumer import make_broker

    settings = Settings(shutdown_grace_seconds=7)
    assert make_broker(settings, "test").config.graceful_timeout == 7
    source = (ROOT / "workers" / "worker.py").read_text()
    assert "graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds)" in source
