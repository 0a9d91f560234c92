"""The per-caller rate limit and the request size cap, without servers."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI

from api import problems
from api.auth import Caller, current_caller, mint_token
from api.limits import BodySizeLimit, RateLimiter
from infra.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5  # one token comes back in half a second
    assert limiter.take("b") == 0.0  # every caller has its own bucket
    clock.now = 0.5
    assert limiter.take("a") == 0.0
    clock.now = 100
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at the burst


def app_with_limits(settings: Settings) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)

    @app.post("/echo")
    async def echo(body: dict, caller: Annotated[Caller, Depends(current_caller)]) -> dict:
        return {"keys": len(body)}

    return app


async def test_over_the_rate_limit_is_429_with_retry_after(settings: Settings) -> None:
    limited = Settings(data_dir=settings.data_dir, api_rate_per_second=0.5, api_rate_burst=2)
    token = mint_token(limited, "north-wellbeing", "tier_one", "lw-1")
    other = mint_token(limited, "south-wellbeing", "tier_one", "lw-1")
    transport = httpx.ASGITransport(app_with_limits(limited))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answers = [
            await client.post("/echo", json={}, headers={"Authorization": f"Bearer {token}"})
            for _ in range(3)
        ]
        elsewhere = await client.post(
            "/echo", json={}, headers={"Authorization": f"Bearer {other}"}
        )
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["content-type"] == "application/problem+json"
    assert answers[2].headers["retry-after"] == "2"
    assert elsewhere.status_code == 200


async def test_a_body_over_the_cap_is_413_declared_or_streamed(settings: Settings) -> None:
    small = Settings(data_dir=settings.data_dir, api_max_body_bytes=1024)
    token = mint_token(small, "north-wellbeing", "tier_one", "lw-1")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    big = b'{"x": "' + b"a" * 2000 + b'"}'

    async def chunks():  # no Content-Length: the middleware counts as it reads
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    transport = httpx.ASGITransport(app_with_limits(small))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        declared = await client.post("/echo", content=big, headers=headers)
        streamed = await client.post("/echo", content=chunks(), headers=headers)
        fine = await client.post("/echo", json={"x": "a"}, headers=headers)
    for answer in (declared, streamed):
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "1024 bytes" in answer.json()["detail"]
    assert fine.status_code == 200


async def test_a_streamed_body_over_the_cap_is_413_on_a_route_that_never_reads_it(
    settings: Settings,
) -> None:
    small = Settings(data_dir=settings.data_dir, api_max_body_bytes=1024)
    app = app_with_limits(small)
    acted: list[str] = []

    @app.post("/act")
    async def act() -> dict:  # reads no body: the middleware alone stands in the way
        acted.append("acted")
        return {}

    async def chunks():  # Transfer-Encoding: chunked, no Content-Length
        for _ in range(100):
            yield b" " * 100

    async def one_chunk():
        yield b"{}"

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        streamed = await client.post("/act", content=chunks())
        small_stream = await client.post("/act", content=one_chunk())
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["instance"] == "/act"
    assert small_stream.status_code == 200
    assert acted == ["acted"]
