"""Who is calling: bearer JWTs carrying a subject, a role and a partner (tenant).

Production verifies tokens against the identity provider's JWKS (``LINKWAY_JWKS_URL``);
the embedded default signs and verifies with an EC key generated once under
``data_dir``, and mints demo tokens for the demo tenancy. Either way a token must be
signed with an asymmetric algorithm (never ``none`` or HS*), unexpired, for our audience
and issuer, and name a partner in the tenancy file holding the token's role; anything
else is a 401 problem with ``WWW-Authenticate: Bearer``. ``require(...)`` turns a role
outside the route's list into a 403.

Tier One callers are link workers or their managers: a token whose ``manager`` claim is
``true`` is a Tier One manager's, who sees their team's (the partner's) caseload capacity
and time summaries; without it, a plain link worker sees only their own. Every other
route treats the two alike. The claim means nothing for other roles. The embedded
default's demo token ``tier_one:<partner>`` is the partner's manager (as the one demo
token per partner always saw the team); ``link_worker:<partner>`` is a plain link worker.

Routes use ``Depends(current_caller)`` or ``Depends(require("tier_one", ...))``; the
caller's per-client rate limit is charged here, once verified.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import tenancy as tenancy_file
from api.limits import RateLimiter, SharedRateLimiter
from api.problems import Problem
from api.tenancy import ROLES, Role, Tenancy
from events.ids import is_id
from infra.keyfile import generated_once
from infra.settings import Settings, get_settings

__all__ = [
    "LINK_WORKER",
    "Caller",
    "Role",
    "current_caller",
    "demo_tokens",
    "mint_token",
    "require",
]

EMBEDDED_ALGORITHM = "ES256"
# Not a role: the demo name of a Tier One token without the manager claim.
LINK_WORKER = "link_worker"
KEY_FILE = "jwt-signing-key.pem"
# Shown in OpenAPI as the bearer security scheme; the header is read in current_caller.
BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="Linkway bearer JWT")
assert set(get_args(Role)) == set(ROLES)


@dataclass(frozen=True)
class Caller:
    actor_id: str  # pseudonymous subject (JWT "sub"), never a name
    role: Role
    partner_id: str  # the caller's organisation (tenant), JWT claim "partner"
    localities: tuple[str, ...] = ()  # for tier_one, from the tenancy file
    manager: bool = False  # a Tier One manager (JWT claim "manager": true): the team's view

    @property
    def own_only(self) -> bool:
        """A plain Tier One link worker: their own capacity and time, not the team's."""
        return self.role == "tier_one" and not self.manager


def _unauthenticated(detail: str, error: str | None = "invalid_token") -> Problem:
    challenge = 'Bearer realm="linkway"' + (f', error="{error}"' if error else "")
    return Problem(401, "Unauthenticated", detail, headers={"WWW-Authenticate": challenge})


def _signing_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """The embedded default's key: generated on first use, kept beside the data."""
    path = Path(settings.data_dir) / KEY_FILE

    def generate() -> bytes:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    loaded = serialization.load_pem_private_key(generated_once(path, generate), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    return loaded


def _key_id(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def mint_token(
    settings: Settings,
    partner_id: str,
    role: Role,
    subject: str,
    ttl_seconds: int = 8 * 3600,
    *,
    manager: bool = False,
) -> str:
    """A token signed with the embedded default's local key (never used with a JWKS)."""
    if settings.jwks_url:
        raise RuntimeError("with LINKWAY_JWKS_URL set, tokens come from the identity provider")
    key = _signing_key(settings)
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role,
        "partner": partner_id,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if manager:
        claims["manager"] = True
    return jwt.encode(claims, key, algorithm=EMBEDDED_ALGORITHM, headers={"kid": _key_id(key)})


def demo_tokens(settings: Settings) -> dict[str, str]:
    """One token per partner in the tenancy file, keyed ``"<role>:<partner id>"`` (a Tier
    One partner's is its manager's), and for each Tier One partner a plain link worker's,
    keyed ``"link_worker:<partner id>"``."""
    tenants = tenancy_file.load(settings.tenancy_file)
    tokens = {
        f"{p.role}:{p.id}": mint_token(
            settings, p.id, p.role, f"demo-{p.role}.{p.id}", manager=p.role == "tier_one"
        )
        for p in tenants.partners
    }
    for p in tenants.partners:
        if p.role == "tier_one":
            tokens[f"{LINK_WORKER}:{p.id}"] = mint_token(
                settings, p.id, p.role, f"demo-{LINK_WORKER}.{p.id}"
            )
    return tokens


class Authenticator:
    """Verifies tokens for one app: the keys, the tenancy and the rate limiter."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tenancy: Tenancy = tenancy_file.load(settings.tenancy_file)
        self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        if any(a.lower() == "none" or a.upper().startswith("HS") for a in self.algorithms):
            raise ValueError("LINKWAY_JWT_ALGORITHMS must list asymmetric algorithms only")
        self.limiter: RateLimiter | SharedRateLimiter
        if settings.api_rate_shared:
            from infra.db import get_engine

            self.limiter = SharedRateLimiter(
                get_engine(settings), settings.api_rate_per_second, settings.api_rate_burst
            )
        else:
            self.limiter = RateLimiter(settings.api_rate_per_second, settings.api_rate_burst)
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None
        self._local: Any = None

    async def _key_for(self, token: str, algorithm: str) -> Any:
        if self._jwks is not None:
            try:
                # PyJWKClient fetches (and caches) with blocking I/O: off the event loop.
                found = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientConnectionError:
                raise Problem(503, "Identity provider unavailable", "retry later") from None
            except jwt.PyJWKClientError:
                raise _unauthenticated("the token's signing key is not known") from None
            return found.key
        if algorithm != EMBEDDED_ALGORITHM:
            raise _unauthenticated(f"the token must be signed with {EMBEDDED_ALGORITHM}")
        if self._local is None:
            self._local = _signing_key(self.settings).public_key()
        return self._local

    async def verify(self, token: str) -> Caller:
        try:
            algorithm = str(jwt.get_unverified_header(token).get("alg", ""))
        except jwt.PyJWTError:
            raise _unauthenticated("the bearer token is not a JWT") from None
        if algorithm not in self.algorithms:
            raise _unauthenticated("the token's signature algorithm is not accepted")
        key = await self._key_for(token, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthenticated("the bearer token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise _unauthenticated("the bearer token is from another issuer") from None
        except jwt.PyJWTError:
            raise _unauthenticated("the bearer token is not valid") from None
        return self._caller(claims)

    def _caller(self, claims: dict[str, Any]) -> Caller:
        subject, role, partner_id = claims.get("sub"), claims.get("role"), claims.get("partner")
        if not isinstance(subject, str) or not is_id(subject):
            raise _unauthenticated("the token's subject must be a pseudonymous id")
        partner = self.tenancy.partner(partner_id) if isinstance(partner_id, str) else None
        if partner is None:
            raise _unauthenticated("the token's partner is not known to Linkway")
        if role != partner.role:
            raise _unauthenticated("the token's role is not one its partner holds")
        manager = partner.role == "tier_one" and claims.get("manager") is True
        return Caller(subject, partner.role, partner.id, partner.localities, manager)


def authenticator(request: Request) -> Authenticator:
    """The app's authenticator, made on first use (so any app including a router works)."""
    state = request.app.state
    found = getattr(state, "authenticator", None)
    if found is None:
        found = Authenticator(getattr(state, "settings", None) or get_settings())
        state.authenticator = found
    return found


async def current_caller(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Caller:
    """FastAPI dependency: the verified caller, or a 401 problem. (``_declared`` only puts
    the bearer scheme in OpenAPI; the header is read here, so a direct call works too.)"""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("send Authorization: Bearer <token>", error=None)
    auth = authenticator(request)
    caller = await auth.verify(token.strip())
    key = f"{caller.partner_id}/{caller.actor_id}"
    if isinstance(auth.limiter, SharedRateLimiter):
        wait = await asyncio.to_thread(auth.limiter.take, key)  # a database round trip
    else:
        wait = auth.limiter.take(key)
    if wait > 0:
        raise Problem(
            429,
            "Too many requests",
            "this caller's request rate is over its limit; retry later",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    return caller


def require(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """Dependency factory: the caller, if its role is one of ``roles``; otherwise 403."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles)

    async def allowed_caller(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if caller.role not in allowed:
            raise Problem(403, "Forbidden", f"this operation is not open to the {caller.role} role")
        return caller

    allowed_caller.__name__ = "require_" + "_or_".join(sorted(allowed))
    return allowed_caller
