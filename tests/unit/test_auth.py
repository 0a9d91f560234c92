"""Bearer-token verification and role checks, on a small app with no servers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI

from api import problems
from api.auth import KEY_FILE, Caller, current_caller, demo_tokens, mint_token, require
from infra.settings import Settings
from tests.conftest import free_port

PROBLEM = "application/problem+json"


def make_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.state.settings = settings

    @app.get("/me")
    async def me(caller: Annotated[Caller, Depends(current_caller)]) -> dict[str, Any]:
        return {**caller.__dict__, "localities": list(caller.localities)}

    @app.get("/audit")
    async def audit(caller: Annotated[Caller, Depends(require("admin"))]) -> dict[str, str]:
        return {"ok": caller.actor_id}

    return app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(make_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


def claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "lw-17",
        "role": "tier_one",
        "partner": "north-wellbeing",
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_401(client: httpx.AsyncClient, token: str | None, detail: str) -> None:
    answer = await client.get("/me", headers=bearer(token) if token is not None else {})
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert detail in answer.json()["detail"]


async def test_a_minted_token_names_the_caller_and_its_localities(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token = mint_token(settings, "north-wellbeing", "tier_one", "lw-17")
    answer = await client.get("/me", headers=bearer(token))
    assert answer.json() == {
        "actor_id": "lw-17",
        "role": "tier_one",
        "partner_id": "north-wellbeing",
        "localities": ["oswestry", "shrewsbury"],
        "manager": False,  # no manager claim: a plain link worker
    }
    assert (Path(settings.data_dir) / KEY_FILE).stat().st_mode & 0o777 == 0o600


async def test_demo_tokens_cover_every_partner_of_the_demo_tenancy(settings: Settings) -> None:
    tokens = demo_tokens(settings)
    assert {
        "tier_one:north-wellbeing",
        "tier_one:south-wellbeing",
        "tier_two:walking-group",
        "tier_two:befriending",
        "contract_manager:commissioner",
        "referrer:gp-oswestry",
        "referrer:gp-ludlow",
        "admin:linkway-admin",
        "link_worker:north-wellbeing",
        "link_worker:south-wellbeing",
    } == set(tokens)
    manager = jwt.decode(tokens["tier_one:north-wellbeing"], options={"verify_signature": False})
    worker = jwt.decode(tokens["link_worker:north-wellbeing"], options={"verify_signature": False})
    assert (manager["role"], manager["manager"]) == ("tier_one", True)
    assert (worker["role"], "manager" in worker) == ("tier_one", False)
    decoded = jwt.decode(tokens["referrer:gp-ludlow"], options={"verify_signature": False})
    assert (decoded["role"], decoded["partner"]) == ("referrer", "gp-ludlow")


async def test_the_manager_claim_makes_a_tier_one_manager_and_nothing_else(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    async def manager(partner: str, role: Any, **extra: Any) -> bool:
        token = mint_token(settings, partner, role, "someone-1", **extra)
        return bool((await client.get("/me", headers=bearer(token))).json()["manager"])

    assert await manager("north-wellbeing", "tier_one", manager=True)
    assert not await manager("north-wellbeing", "tier_one")
    assert not await manager("commissioner", "contract_manager", manager=True)  # Tier One only


async def test_missing_or_malformed_bearer_is_401(client: httpx.AsyncClient) -> None:
    await assert_401(client, None, "send Authorization: Bearer")
    await assert_401(client, "not-a-jwt", "not a JWT")
    answer = await client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert answer.status_code == 401


async def test_expired_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    token = mint_token(settings, "north-wellbeing", "tier_one", "lw-17", ttl_seconds=-120)
    await assert_401(client, token, "expired")


async def test_unsigned_token_is_401(client: httpx.AsyncClient, settings: Settings) -> None:
    token = jwt.encode(claims(settings), key=None, algorithm="none")
    await assert_401(client, token, "algorithm is not accepted")


async def test_hs256_token_signed_with_the_public_key_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    mint_token(settings, "north-wellbeing", "tier_one", "lw-17")  # makes the key
    private = serialization.load_pem_private_key(
        (Path(settings.data_dir) / KEY_FILE).read_bytes(), password=None
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The algorithm-confusion attack: an HMAC keyed with the (public) verification key.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims(settings)).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    ).rstrip(b"=")
    await assert_401(client, b".".join([header, payload, signature]).decode(), "not accepted")


async def test_token_signed_with_another_key_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    mint_token(settings, "north-wellbeing", "tier_one", "lw-17")
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(settings), stranger, algorithm="ES256")
    await assert_401(client, token, "not valid")


async def test_wrong_audience_or_issuer_is_401(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    other = Settings(data_dir=settings.data_dir, jwt_audience="someone-else")
    await assert_401(client, mint_token(other, "north-wellbeing", "tier_one", "x"), "audience")
    other = Settings(data_dir=settings.data_dir, jwt_issuer="urn:elsewhere")
    await assert_401(client, mint_token(other, "north-wellbeing", "tier_one", "x"), "issuer")


async def test_unknown_partner_or_a_role_it_does_not_hold_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await assert_401(client, mint_token(settings, "acme", "admin", "x"), "partner is not known")
    held = mint_token(settings, "walking-group", "tier_one", "x")
    await assert_401(client, held, "role is not one its partner holds")


async def test_a_subject_that_is_not_a_pseudonymous_id_is_401(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await assert_401(client, mint_token(settings, "gp-ludlow", "referrer", "Jane Smith"), "subject")


async def test_wrong_role_is_403(client: httpx.AsyncClient, settings: Settings) -> None:
    token = mint_token(settings, "commissioner", "contract_manager", "cm-1")
    answer = await client.get("/audit", headers=bearer(token))
    assert (answer.status_code, answer.headers["content-type"]) == (403, PROBLEM)
    admin = mint_token(settings, "linkway-admin", "admin", "ig-1")
    assert (await client.get("/audit", headers=bearer(admin))).json() == {"ok": "ig-1"}


def test_symmetric_algorithms_cannot_be_configured(settings: Settings) -> None:
    from api.auth import Authenticator

    with pytest.raises(ValueError, match="asymmetric"):
        Authenticator(Settings(data_dir=settings.data_dir, jwt_algorithms="RS256,HS256"))


@pytest.fixture
def identity_provider() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A JWKS endpoint on loopback, as an OIDC identity provider publishes one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()


async def test_production_verifies_identity_provider_tokens_against_its_jwks(
    identity_provider: tuple[str, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    url, key = identity_provider
    settings = Settings(data_dir=tmp_path, jwks_url=url, jwt_issuer="https://idp.example")
    transport = httpx.ASGITransport(make_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        good = jwt.encode(claims(settings), key, algorithm="RS256", headers={"kid": "idp-1"})
        answer = await client.get("/me", headers=bearer(good))
        assert answer.status_code == 200, answer.text
        assert answer.json()["actor_id"] == "lw-17"
        unknown_kid = jwt.encode(claims(settings), key, algorithm="RS256", headers={"kid": "x"})
        await assert_401(client, unknown_kid, "signing key is not known")
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(claims(settings), stranger, algorithm="RS256", headers={"kid": "idp-1"})
        await assert_401(client, forged, "not valid")
    with pytest.raises(RuntimeError, match="identity provider"):
        mint_token(settings, "north-wellbeing", "tier_one", "x")
