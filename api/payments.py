"""The contract manager's surface of the payment engine, under ``/payments``.

Claims (filtered, paged by cursor), a claim's evidence trail, the lifecycle commands
(validate, approve, dispute, resolve, paid), statements as JSON or CSV for finance,
ledger verification and checkpoints, and reconciliation. Every route needs the
``contract_manager`` role; responses carry pseudonymous ids and codes, never personal
data. Errors are problem+json: 401 no identity, 403 wrong role or a separation-of-duties
conflict, 404 unknown claim, 409 a lifecycle move or validation the claim does not pass,
422 bad input.

The routes are plain functions (FastAPI runs them in its thread pool) because the engine
uses the synchronous database session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.problems import Problem
from api.strict import check_strictly
from events.payment import ClaimStatus
from payments.engine import PaymentEngine
from payments.errors import (
    ClaimInvalid,
    DutyConflict,
    IllegalTransition,
    LedgerBroken,
    UnknownClaim,
)
from payments.ledger import Checkpoint, VerifyResult
from payments.ratecard import pounds
from payments.statements import Statement, Totals
from payments.views import ClaimPage, ClaimView, EvidenceTrail, Reconciliation, SignedCheckpoint

router = APIRouter(prefix="/payments", tags=["payments"])

ACTOR_HEADER = "X-Linkway-Actor"
CONTRACT_MANAGER = "contract_manager"
Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
Period = Query(default=None, pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")


class Actor(BaseModel):
    actor_id: str = Code
    role: str = Code
    partner_id: str = Code


def current_actor(request: Request) -> Actor:
    """Who is calling: the ``Actor`` that authentication put on ``request.state.actor``.

    Until bearer tokens are verified in front of this router, the embedded default's
    stand-in is the ``X-Linkway-Actor`` header, ``<actor id>; role=<role>;
    partner=<partner id>``; the signed JWT's subject, role and tenant claims replace it,
    and the header is then ignored.
    """
    actor = getattr(request.state, "actor", None)
    if isinstance(actor, Actor):
        return actor
    raw = request.headers.get(ACTOR_HEADER, "")
    first, *rest = [part.strip() for part in raw.split(";")]
    claims = dict(part.partition("=")[::2] for part in rest)
    try:
        return Actor(actor_id=first, role=claims.get("role", ""), partner_id=claims["partner"])
    except (KeyError, ValueError):
        raise Problem(
            401,
            "Unauthenticated",
            f"send {ACTOR_HEADER}: <actor id>; role=<role>; partner=<partner id>",
        ) from None


def contract_manager(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    if actor.role != CONTRACT_MANAGER:
        raise Problem(403, "Forbidden", "the payment engine is for the contract_manager role")
    return actor


def payments(request: Request) -> PaymentEngine:
    return request.app.state.payments


Manager = Annotated[Actor, Depends(contract_manager)]
Payments = Annotated[PaymentEngine, Depends(payments)]


def strict_body(model: type[BaseModel]) -> Callable[..., Awaitable[None]]:
    """Parse the body strictly, after the role check (so a wrong role answers 403 first)."""

    async def check(request: Request, _: Manager) -> None:
        await check_strictly(request, model)

    return check


@contextmanager
def _problems() -> Iterator[None]:
    """The engine's errors as problem+json (their messages hold ids and codes only)."""
    try:
        yield
    except UnknownClaim:
        raise Problem(404, "Claim not found", "no claim has this id") from None
    except DutyConflict as exc:
        raise Problem(403, "Separation of duties", str(exc)) from None
    except ClaimInvalid as exc:
        raise Problem(409, "Claim fails validation", "; ".join(exc.problems)) from None
    except IllegalTransition as exc:
        raise Problem(409, "Not allowed in this status", str(exc)) from None
    except LedgerBroken as exc:
        raise Problem(409, "Ledger does not verify", str(exc)) from None


# --- claims -------------------------------------------------------------------------------


@router.get("/claims", response_model=ClaimPage)
def list_claims(
    _: Manager,
    engine: Payments,
    contract: str | None = None,
    partner: str | None = None,
    status: ClaimStatus | None = None,
    metric: Annotated[str | None, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")] = None,
    period: str | None = Period,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ClaimPage:
    """Claims in the order they were made; ``next_cursor`` fetches the next page."""
    after = int(cursor) if cursor else None
    return engine.claims(contract, partner, status, metric, period, after, limit)


@router.get("/claims/{claim_id}", response_model=ClaimView)
def get_claim(claim_id: str, _: Manager, engine: Payments) -> ClaimView:
    with _problems():
        return engine.claim(claim_id)


@router.get("/claims/{claim_id}/evidence", response_model=EvidenceTrail)
def get_evidence(claim_id: str, _: Manager, engine: Payments) -> EvidenceTrail:
    """The events and measurements behind the claim, its rate-card terms and entries."""
    with _problems():
        return engine.evidence(claim_id)


class DisputeRequest(BaseModel):
    reason_code: str = Code


class ResolveRequest(BaseModel):
    outcome: Literal["upheld", "reversed"]


class PaidRequest(BaseModel):
    payment_ref: str = Code


@router.post("/claims/{claim_id}/validate", response_model=ClaimView)
def validate_claim(claim_id: str, actor: Manager, engine: Payments) -> ClaimView:
    with _problems():
        return engine.validate(claim_id, actor.actor_id)


@router.post("/claims/{claim_id}/approve", response_model=ClaimView)
def approve_claim(claim_id: str, actor: Manager, engine: Payments) -> ClaimView:
    """Above the second-approval threshold the first approval leaves the claim validated
    (``approver_ids`` shows it); a different approver completes it."""
    with _problems():
        return engine.approve(claim_id, actor.actor_id)


@router.post(
    "/claims/{claim_id}/dispute",
    dependencies=[Depends(strict_body(DisputeRequest))],
    response_model=ClaimView,
)
def dispute_claim(
    claim_id: str, body: DisputeRequest, actor: Manager, engine: Payments
) -> ClaimView:
    with _problems():
        return engine.dispute(claim_id, actor.actor_id, body.reason_code)


@router.post(
    "/claims/{claim_id}/resolve",
    dependencies=[Depends(strict_body(ResolveRequest))],
    response_model=ClaimView,
)
def resolve_claim(
    claim_id: str, body: ResolveRequest, actor: Manager, engine: Payments
) -> ClaimView:
    with _problems():
        return engine.resolve(claim_id, actor.actor_id, body.outcome)


@router.post(
    "/claims/{claim_id}/paid",
    dependencies=[Depends(strict_body(PaidRequest))],
    response_model=ClaimView,
)
def mark_claim_paid(
    claim_id: str, body: PaidRequest, actor: Manager, engine: Payments
) -> ClaimView:
    with _problems():
        return engine.mark_paid(claim_id, actor.actor_id, body.payment_ref)


# --- statements ---------------------------------------------------------------------------


class Amounts(BaseModel):
    claims: int
    capped: int
    claimed_pence: int
    approved_pence: int
    paid_pence: int
    reversed_pence: int
    net_pence: int
    net_gbp: str

    @classmethod
    def of(cls, t: Totals) -> Amounts:
        return cls(
            **{name: getattr(t, name) for name in cls.model_fields if name != "net_gbp"},
            net_gbp=pounds(t.net_pence),
        )


class StatementView(BaseModel):
    contract_id: str
    partner_id: str
    period: str
    cap_pence: int | None  # the partner's monthly cap, from the rate card version
    headroom_pence: int | None
    total: Amounts
    metrics: dict[str, Amounts]

    @classmethod
    def of(cls, s: Statement) -> StatementView:
        return cls(
            contract_id=s.contract_id,
            partner_id=s.partner_id,
            period=s.period,
            cap_pence=s.cap_pence,
            headroom_pence=s.headroom_pence,
            total=Amounts.of(s.total),
            metrics={m: Amounts.of(t) for m, t in sorted(s.metrics.items())},
        )


@router.get("/statements", response_model=list[StatementView])
def get_statements(
    _: Manager,
    engine: Payments,
    period: str | None = Period,
    partner: str | None = None,
    contract: str | None = None,
) -> list[StatementView]:
    """Per contract, partner and month: claimed, approved, paid, reversed and net, in
    pence, against the partner's monthly cap."""
    return [StatementView.of(s) for s in engine.statements(period, partner, contract)]


@router.get(
    "/statements.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Statements for finance"}},
)
def get_statements_csv(
    _: Manager,
    engine: Payments,
    period: str | None = Period,
    partner: str | None = None,
    contract: str | None = None,
) -> Response:
    name = f"linkway-statements-{period or 'all'}.csv"
    return Response(
        engine.statements_csv(period, partner, contract),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the ledger ---------------------------------------------------------------------------


class Verification(BaseModel):
    ok: bool
    first_broken_seq: int | None
    reason: str
    head_seq: int
    head_hash: str | None
    checked_at: datetime


class HeldCheckpoint(BaseModel):
    seq: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")


def _verification(engine: PaymentEngine, result: VerifyResult) -> Verification:
    head = engine.head()
    return Verification(
        ok=result.ok,
        first_broken_seq=result.first_broken_seq,
        reason=result.reason,
        head_seq=head.seq if head else 0,
        head_hash=head.hash if head else None,
        checked_at=datetime.now(UTC),
    )


@router.get("/ledger/verify", response_model=Verification)
def verify_ledger(_: Manager, engine: Payments) -> Verification:
    """Recompute the hash chain; name the first entry that does not fit."""
    return _verification(engine, engine.verify())


@router.get("/ledger/checkpoints", response_model=list[SignedCheckpoint])
def list_checkpoints(_: Manager, engine: Payments) -> list[SignedCheckpoint]:
    return engine.checkpoints()


@router.post("/ledger/checkpoints", status_code=201, response_model=SignedCheckpoint)
def make_checkpoint(actor: Manager, engine: Payments) -> SignedCheckpoint:
    """Sign the current head; keep the answer, and verify the ledger against it later."""
    with _problems():
        return engine.checkpoint(actor.actor_id)


@router.post(
    "/ledger/checkpoints/verify",
    dependencies=[Depends(strict_body(HeldCheckpoint))],
    response_model=Verification,
)
def verify_checkpoint(body: HeldCheckpoint, _: Manager, engine: Payments) -> Verification:
    """The ledger verifies and still holds the head a checkpoint you kept signed."""
    held = Checkpoint(body.seq, body.head_hash, body.signature)
    return _verification(engine, engine.verify_checkpoint(held))


@router.get("/reconciliation", response_model=Reconciliation)
def get_reconciliation(_: Manager, engine: Payments) -> Reconciliation:
    """Claims recomputed from the consumed outcome events, against the ledger: every
    difference, to the penny."""
    return engine.reconcile()
