"""The contract manager's surface of the payment engine, under ``/payments``.

Claims (filtered, paged by cursor), a claim's evidence trail, the lifecycle commands
(validate, approve, dispute, resolve, paid), statements as JSON or CSV for finance,
ledger verification and checkpoints, and reconciliation. Every route needs a bearer
token with the ``contract_manager`` role (``require``, as on every router); the caller's
pseudonymous subject is the actor the ledger records. Responses carry pseudonymous ids
and codes, never personal data. Errors are problem+json: 400 no Idempotency-Key, 401 no
identity, 403 wrong role or a separation-of-duties conflict, 404 unknown claim, 409 a
lifecycle move or validation the claim does not pass (or the same Idempotency-Key still
in progress), 422 bad input (an unknown field, a number out of range, a malformed id) or
an Idempotency-Key reused with a different request.

Every POST is a command with an ``Idempotency-Key``, with the casework commands'
semantics (``api.idempotency.once``): a retry with the same key and body gets the
original answer and changes nothing.

The reads are plain functions (FastAPI runs them in its thread pool) because the engine
uses the synchronous database session; the commands are async for ``once`` and run the
engine in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.auth import Caller, require
from api.commands import IdempotencyKey, caller_key
from api.deps import deps
from api.idempotency import once
from api.payment_bodies import DisputeRequest, HeldCheckpoint, PaidRequest, ResolveRequest
from api.problems import Problem, responses
from api.strict import check_strictly
from events.ids import Id
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
from payments.views import (
    ClaimPage,
    ClaimView,
    EvidenceTrail,
    PayerStatementView,
    Reconciliation,
    SignedCheckpoint,
    StatementView,
    Verification,
)

router = APIRouter(
    prefix="/payments",
    tags=["payments"],
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429),
)

Manager = Annotated[Caller, Depends(require("contract_manager"))]
# Reads a Tier One partner shares with the contract manager, so a dispute starts from the
# same numbers; scoped to the partner's own claims (``_own_partner``).
Reader = Annotated[Caller, Depends(require("contract_manager", "tier_one"))]


def _own_partner(caller: Caller, asked: str | None) -> str | None:
    """The partner filter a caller may use: a contract manager's own choice; a Tier One
    partner always itself (asking for another partner's claims finds none)."""
    if caller.role == "contract_manager":
        return asked
    return caller.partner_id if asked in (None, caller.partner_id) else _NOBODY


# A partner id no partner has (ids cannot contain "/"): another partner's filter matches nothing.
_NOBODY = "/"


def _visible(caller: Caller, view: ClaimView) -> ClaimView:
    """The claim, or the same 404 as an unknown claim when it is another partner's, so
    a partner cannot even learn that another partner's claim exists."""
    if caller.role != "contract_manager" and view.partner_id != caller.partner_id:
        raise UnknownClaim(view.claim_id)
    return view


# A claim id is a pseudonymous id like any other: a NUL byte or an over-long id is a 422
# here and never reaches the database.
ClaimId = Annotated[Id, Path(description="the claim's id, as listed")]
Period = Query(default=None, pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM")


def payment_engine(request: Request) -> PaymentEngine:
    return deps(request).payments


Payments = Annotated[PaymentEngine, Depends(payment_engine)]


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


async def _command(
    request: Request,
    caller: Caller,
    key: str | None,
    body: BaseModel | None,
    act: Callable[[], BaseModel],
    status: int = 200,
) -> JSONResponse:
    """Run one payment command at most once per Idempotency-Key, as casework commands
    are: the body is checked strictly first (so a bad body is a 422 whatever the key),
    then the key; a replay answers what the first request answered."""
    if body is not None:
        await check_strictly(request, type(body))

    async def run(_reserved_id: str) -> tuple[int, BaseModel]:
        with _problems():
            return status, await asyncio.to_thread(act)

    identity = {"path": request.url.path, "body": body.model_dump(mode="json") if body else None}
    return await once(deps(request).idempotency, caller_key(caller), key, identity, run)


# --- claims -------------------------------------------------------------------------------


@router.get("/claims", response_model=ClaimPage)
def list_claims(
    caller: Reader,
    engine: Payments,
    contract: Id | None = None,
    partner: Id | None = None,
    status: ClaimStatus | None = None,
    metric: Annotated[str | None, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")] = None,
    period: str | None = Period,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ClaimPage:
    """Claims in the order they were made; ``next_cursor`` fetches the next page."""
    after = int(cursor) if cursor else None
    partner = _own_partner(caller, partner)
    return engine.claims(contract, partner, status, metric, period, after, limit)


@router.get("/claims/{claim_id}", response_model=ClaimView)
def get_claim(claim_id: ClaimId, caller: Reader, engine: Payments) -> ClaimView:
    with _problems():
        return _visible(caller, engine.claim(claim_id))


@router.get("/claims/{claim_id}/evidence", response_model=EvidenceTrail)
def get_evidence(claim_id: ClaimId, caller: Reader, engine: Payments) -> EvidenceTrail:
    """The events and measurements behind the claim, its rate-card terms and entries."""
    with _problems():
        _visible(caller, engine.claim(claim_id))
        return engine.evidence(claim_id)


# Command bodies refuse unknown fields (a misspelt field would otherwise be ignored).


@router.post("/claims/{claim_id}/validate", response_model=ClaimView)
async def validate_claim(
    claim_id: ClaimId,
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _command(
        request, caller, idempotency_key, None, lambda: engine.validate(claim_id, caller.actor_id)
    )


@router.post("/claims/{claim_id}/approve", response_model=ClaimView)
async def approve_claim(
    claim_id: ClaimId,
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Above the second-approval threshold the first approval leaves the claim validated
    (``approver_ids`` shows it); a different approver completes it."""
    return await _command(
        request, caller, idempotency_key, None, lambda: engine.approve(claim_id, caller.actor_id)
    )


@router.post("/claims/{claim_id}/dispute", response_model=ClaimView)
async def dispute_claim(
    claim_id: ClaimId,
    body: DisputeRequest,
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def act() -> ClaimView:
        return engine.dispute(claim_id, caller.actor_id, body.reason_code)

    return await _command(request, caller, idempotency_key, body, act)


@router.post("/claims/{claim_id}/resolve", response_model=ClaimView)
async def resolve_claim(
    claim_id: ClaimId,
    body: ResolveRequest,
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def act() -> ClaimView:
        return engine.resolve(claim_id, caller.actor_id, body.outcome)

    return await _command(request, caller, idempotency_key, body, act)


@router.post("/claims/{claim_id}/paid", response_model=ClaimView)
async def mark_claim_paid(
    claim_id: ClaimId,
    body: PaidRequest,
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def act() -> ClaimView:
        return engine.mark_paid(claim_id, caller.actor_id, body.payment_ref)

    return await _command(request, caller, idempotency_key, body, act)


# --- statements ---------------------------------------------------------------------------


@router.get("/statements", response_model=list[StatementView])
def get_statements(
    caller: Reader,
    engine: Payments,
    period: str | None = Period,
    partner: Id | None = None,
    contract: Id | None = None,
) -> list[StatementView]:
    """Per contract, partner and month: claimed, approved, paid, reversed and net, in
    pence, against the partner's monthly cap (a Tier One partner: its own only)."""
    partner = _own_partner(caller, partner)
    return [StatementView.of(s) for s in engine.statements(period, partner, contract)]


@router.get(
    "/statements.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Statements for finance"}},
)
def get_statements_csv(
    caller: Reader,
    engine: Payments,
    period: str | None = Period,
    partner: Id | None = None,
    contract: Id | None = None,
) -> Response:
    partner = _own_partner(caller, partner)
    name = f"linkway-statements-{period or 'all'}.csv"
    return Response(
        engine.statements_csv(period, partner, contract),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/payer-statements", response_model=list[PayerStatementView])
def get_payer_statements(
    _: Manager,
    engine: Payments,
    period: str | None = Period,
    contract: Id | None = None,
) -> list[PayerStatementView]:
    """Per contract, payer and month: each co-funder's shares of the claims, which add up
    to the partner statements' totals."""
    return [PayerStatementView.of(s) for s in engine.payer_statements(period, contract)]


@router.get(
    "/payer-statements.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Statements per payer"}},
)
def get_payer_statements_csv(
    _: Manager, engine: Payments, period: str | None = Period, contract: Id | None = None
) -> Response:
    name = f"linkway-payer-statements-{period or 'all'}.csv"
    return Response(
        engine.payer_statements_csv(period, contract),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the ledger ---------------------------------------------------------------------------


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
async def make_checkpoint(
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Sign the current head; keep the answer, and verify the ledger against it later."""
    return await _command(
        request, caller, idempotency_key, None, lambda: engine.checkpoint(caller.actor_id), 201
    )


@router.post("/ledger/checkpoints/verify", response_model=Verification)
async def verify_checkpoint(
    body: HeldCheckpoint,
    request: Request,
    caller: Manager,
    engine: Payments,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The ledger verifies and still holds the head a checkpoint you kept signed."""
    held = Checkpoint(body.seq, body.head_hash, body.signature)
    return await _command(
        request,
        caller,
        idempotency_key,
        body,
        lambda: _verification(engine, engine.verify_checkpoint(held)),
    )


@router.get("/reconciliation", response_model=Reconciliation)
def get_reconciliation(_: Manager, engine: Payments) -> Reconciliation:
    """Claims recomputed from the consumed outcome events, against the ledger: every
    difference, to the penny."""
    return engine.reconcile()
