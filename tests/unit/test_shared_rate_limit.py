"""The per-caller rate limit holds across API replicas when its buckets are shared in the
database (LINKWAY_API_RATE_SHARED): two replicas spend from one bucket per caller, a
bucket refills with time on the database's clock, and the API uses the shared buckets
when the setting is on."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.auth import Authenticator, mint_token
from api.limits import RateLimiter, SharedRateLimiter
from infra.settings import Settings
from tests.unit.test_limits import app_with_limits

pytestmark = pytest.mark.both_databases


def test_two_replicas_spend_from_one_bucket_per_caller(engine: Engine) -> None:
    first = SharedRateLimiter(engine, per_second=0.5, burst=3)
    second = SharedRateLimiter(engine, per_second=0.5, burst=3)
    assert [first.take("gp/1"), second.take("gp/1"), first.take("gp/1")] == [0.0, 0.0, 0.0]
    wait = second.take("gp/1")  # the fourth request, whichever replica it reaches
    assert 1.0 < wait <= 2.0  # one token at 0.5 a second
    assert first.take("gp/1") > 0
    assert second.take("lw/2") == 0.0  # another caller has its own bucket


def test_a_bucket_refills_with_time_up_to_its_burst(engine: Engine) -> None:
    limiter = SharedRateLimiter(engine, per_second=1, burst=2)
    assert limiter.take("gp/1") == limiter.take("gp/1") == 0.0
    assert limiter.take("gp/1") > 0
    with engine.begin() as conn:  # an hour passes, by the database's clock
        conn.execute(text("UPDATE rate_buckets SET updated_at = updated_at - 3600"))
    assert limiter.take("gp/1") == limiter.take("gp/1") == 0.0
    assert limiter.take("gp/1") > 0  # refilled to the burst, not beyond


def test_the_api_shares_its_buckets_when_the_setting_is_on(settings: Settings) -> None:
    shared = Authenticator(settings.model_copy(update={"api_rate_shared": True}))
    assert isinstance(shared.limiter, SharedRateLimiter)
    assert isinstance(Authenticator(settings).limiter, RateLimiter)


async def test_a_caller_spreading_requests_over_two_api_replicas_meets_one_limit(
    settings: Settings, engine: Engine
) -> None:
    """Two API apps (two replicas) on one database, a load balancer alternating between
    them: the caller's third request is refused whichever replica it reaches."""
    shared = settings.model_copy(
        update={"api_rate_shared": True, "api_rate_per_second": 0.5, "api_rate_burst": 2}
    )
    token = mint_token(shared, "north-wellbeing", "tier_one", "lw-1")
    headers = {"Authorization": f"Bearer {token}"}
    replicas = [app_with_limits(shared), app_with_limits(shared)]
    answers = []
    for n in range(4):
        transport = httpx.ASGITransport(replicas[n % 2])
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            answers.append(await client.post("/echo", json={}, headers=headers))
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert answers[2].headers["retry-after"] == "2"
