"""P3 API commands: a casework command over HTTP (``POST /referrals/{id}/link-worker``:
bearer token, body checks, scope check against the read model, Idempotency-Key record,
the workflow update with its validator, the activity's commit) against a bare endpoint
on the same server framework (FastAPI on uvicorn, in the same process) calling one raw
workflow update that commits one row through one activity.

Latency is open-loop at 20 requests/s (a request is sent on schedule whether or not the
earlier ones have answered), so a slow answer cannot hide the ones queued behind it;
saturation is closed-loop at concurrency 10 for a fixed time. Both sides draw from a
pool of targets, one command in flight per referral (as one link worker's screen would).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from sqlmodel import Session

from activities.readmodel import ReferralRow
from bench.core import Result, interleaved, median, percentile
from bench.env import Env
from bench.floor import start_floor

RATE = 20.0
CONCURRENCY = 10
GP, NORTH = "referrer:gp-oswestry", "tier_one:north-wellbeing"
Send = Callable[[httpx.AsyncClient, str, int], Awaitable[int]]


async def _linkway_pool(env: Env, http: httpx.AsyncClient, size: int) -> list[tuple[str, int]]:
    body = {
        "locality": "oswestry",
        "source": "gp",
        "referrer_org_id": "gp-oswestry",
        "consent_to_share": True,
        "person": {"given_name": "Bench", "family_name": "Mark"},
    }
    pool = []
    for _ in range(size):
        made = await http.post("/referrals", json=body, headers=_auth(env, GP))
        made.raise_for_status()
        referral_id = made.json()["referral_id"]
        with Session(env.engine) as session:
            row = session.get(ReferralRow, referral_id)
            assert row is not None, "creating a referral is read-your-writes"
            pool.append((referral_id, row.version))
    return pool


def _auth(env: Env, identity: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[identity]}", "Idempotency-Key": uuid.uuid4().hex}


class Pool:
    """Targets with their last known version; one request in flight per target."""

    def __init__(self, items: list[tuple[str, int]]) -> None:
        self.free: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for item in items:
            self.free.put_nowait(item)

    async def use(self, http: httpx.AsyncClient, send: Send) -> None:
        # Unbounded here: above capacity the open loop queues for a target, and that wait
        # is part of the latency; the caller bounds the whole loop in time.
        target, version = await self.free.get()
        try:
            version = await send(http, target, version)
        finally:
            self.free.put_nowait((target, version))


def linkway_send(env: Env) -> Send:
    async def send(http: httpx.AsyncClient, referral_id: str, version: int) -> int:
        body = {"link_worker_id": f"lw-{version}", "expected_version": version}
        answer = await http.post(
            f"/referrals/{referral_id}/link-worker", json=body, headers=_auth(env, NORTH)
        )
        answer.raise_for_status()
        return int(answer.json()["version"])

    return send


async def floor_send(http: httpx.AsyncClient, workflow_id: str, n: int) -> int:
    answer = await http.post(f"/floor/{workflow_id}/{n}")
    answer.raise_for_status()
    return n + 1


async def open_loop(http: httpx.AsyncClient, pool: Pool, send: Send, count: int) -> list[float]:
    latencies: list[float] = []
    t0 = time.perf_counter()

    async def one(n: int) -> None:
        due = t0 + n / RATE
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await pool.use(http, send)
        latencies.append(time.perf_counter() - due)  # from when it was due: no omission

    await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(count))), count / RATE + 120)
    return latencies


async def closed_loop(http: httpx.AsyncClient, pool: Pool, send: Send, seconds: float) -> float:
    done = 0
    t0 = time.perf_counter()
    stop = t0 + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await pool.use(http, send)
            done += 1

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), seconds + 120)
    return done / (time.perf_counter() - t0)


async def run(env: Env) -> list[Result]:
    rounds, count, seconds, size = (1, 16, 1.0, 4) if env.quick else (2, 200, 10.0, 24)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(base_url=env.api_url, timeout=60, limits=limits) as api,
        httpx.AsyncClient(base_url=env.floor_url, timeout=60, limits=limits) as bare,
    ):
        linkway = Pool(await _linkway_pool(env, api, size))
        floor = Pool([(await start_floor(env.raw), 0) for _ in range(size)])
        send = linkway_send(env)
        for _ in range(2):  # warm both paths (imports, connections, caches)
            await linkway.use(api, send)
            await floor.use(bare, floor_send)
        p50s: dict[str, list[float]] = {"linkway": [], "floor": []}

        def p99(side: str, lat: list[float]) -> float:
            p50s[side].append(percentile(lat, 50))
            return percentile(lat, 99)

        async def lw_lat(_: int) -> float:
            return p99("linkway", await open_loop(api, linkway, send, count))

        async def fl_lat(_: int) -> float:
            return p99("floor", await open_loop(bare, floor, floor_send, count))

        async def lw_sat(_: int) -> float:
            return await closed_loop(api, linkway, send, seconds)

        async def fl_sat(_: int) -> float:
            return await closed_loop(bare, floor, floor_send, seconds)

        latency = await interleaved(rounds, lw_lat, fl_lat)
        saturation = await interleaved(rounds, lw_sat, fl_sat)
    lw99 = median([r["linkway"] for r in latency])
    fl99 = median([r["floor"] for r in latency])
    lat_ratio = median([r["linkway"] / r["floor"] for r in latency])
    lw_rate = median([r["linkway"] for r in saturation])
    fl_rate = median([r["floor"] for r in saturation])
    sat_ratio = median([r["linkway"] / r["floor"] for r in saturation])
    return [
        Result(
            id="P3",
            name=f"API command latency p99 at {RATE:.0f} req/s",
            unit="ms",
            linkway=lw99 * 1000,
            floor=fl99 * 1000,
            ratio=lat_ratio,
            better="lower",
            goal="<= 2x and <= 250 ms",
            met=lat_ratio <= 2.0 and lw99 <= 0.25,
            scale=f"{rounds} rounds x {count} requests, open loop",
            rounds=latency,
            extra={"p50_ms": {k: [v * 1000 for v in vs] for k, vs in p50s.items()}},
        ),
        Result(
            id="P3",
            name="API command saturation",
            unit="cmds/s",
            linkway=lw_rate,
            floor=fl_rate,
            ratio=sat_ratio,
            better="higher",
            goal="(reported)",
            met=None,
            scale=f"{rounds} rounds x {seconds:.0f} s, concurrency {CONCURRENCY}",
            rounds=saturation,
        ),
    ]
