"""The Well-being Action Fund under ``/funds``: a fund per contract and period with a
budget, grants that link workers request for a person's goal, and the fund statement.

Who does what (``require`` on every route; the caller's pseudonymous subject is the
actor recorded):

- ``contract_manager``: opens a fund and changes its budget; approves, refuses, records
  the spend of and cancels any grant; reads every fund, grant and statement;
- ``tier_one``: requests grants for people in its own localities; approves, refuses,
  records the spend of and cancels its own partner's grants (a colleague's: never one it
  requested, but to withdraw it); reads the funds, the statements and its own grants.
  Another partner's grant answers exactly as a missing one.

Separation of duties (``fund.rules``): the requester never approves, refuses or records
the spend of their own grant: 403. Errors are problem+json: 400 no Idempotency-Key, 401
no identity, 403 wrong role or a duty conflict, 404 unknown fund, grant or referral,
409 a move the grant's status does not allow, an approval the budget cannot hold, a
second fund for the same contract and period, 422 bad input (a purpose the fund does not
fund, an amount over its limit, a spend over the approved amount). Every POST takes an
``Idempotency-Key`` with the casework commands' semantics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlmodel import Session

from api.auth import Caller, require
from api.commands import IdempotencyKey, caller_key
from api.deps import deps
from api.fund_bodies import (
    BudgetRequest,
    GrantRequest,
    OpenFundRequest,
    ReasonRequest,
    SpendRequest,
)
from api.idempotency import once
from api.params import IdPath, IdQuery
from api.problems import Problem, responses
from api.scope import visible
from api.strict import check_strictly
from fund.errors import (
    DutyConflict,
    FundExists,
    IllegalMove,
    InvalidGrant,
    OverBudget,
    UnknownFund,
    UnknownGrant,
)
from fund.service import DEFAULT_PURPOSES, FundService
from fund.views import FundStatement, FundView, GrantPage, GrantView, statement_csv

router = APIRouter(
    prefix="/funds",
    tags=["fund"],
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429),
)

Manager = Annotated[Caller, Depends(require("contract_manager"))]
Member = Annotated[Caller, Depends(require("contract_manager", "tier_one"))]
LinkWorker = Annotated[Caller, Depends(require("tier_one"))]
GrantStatus = Literal["requested", "approved", "refused", "spent", "cancelled"]


def fund_service(request: Request) -> FundService:
    return deps(request).fund


Funds = Annotated[FundService, Depends(fund_service)]


def _partner(caller: Caller) -> str | None:
    """Whose grants the caller may see and act on: a Tier One partner, its own only."""
    return None if caller.role == "contract_manager" else caller.partner_id


@contextmanager
def _problems() -> Iterator[None]:
    """The fund's errors as problem+json (their messages hold ids, codes and amounts)."""
    try:
        yield
    except UnknownFund:
        raise Problem(404, "Fund not found", "no fund has this id") from None
    except UnknownGrant:
        raise Problem(404, "Grant not found", "no grant in this fund with this id") from None
    except DutyConflict as exc:
        raise Problem(403, "Separation of duties", str(exc)) from None
    except FundExists as exc:
        raise Problem(409, "Fund exists", str(exc)) from None
    except OverBudget as exc:
        raise Problem(409, "Over budget", str(exc)) from None
    except IllegalMove as exc:
        raise Problem(409, "Not allowed in this status", str(exc)) from None
    except InvalidGrant as exc:
        raise Problem(422, "Invalid grant", str(exc)) from None


async def _command(
    request: Request,
    caller: Caller,
    key: str | None,
    body: BaseModel | None,
    act: Callable[[str], BaseModel],
    status: int = 200,
) -> JSONResponse:
    """At most once per Idempotency-Key, like the payment commands; ``act`` gets the id
    reserved for the request, so a retry after a crash converges on what it made."""
    if body is not None:
        await check_strictly(request, type(body))

    async def run(reserved_id: str) -> tuple[int, BaseModel]:
        with _problems():
            return status, await asyncio.to_thread(act, reserved_id)

    identity = {"path": request.url.path, "body": body.model_dump(mode="json") if body else None}
    return await once(deps(request).idempotency, caller_key(caller), key, identity, run)


# --- funds --------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=FundView)
async def open_fund(
    body: OpenFundRequest,
    request: Request,
    caller: Manager,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Open the fund of a contract and period with its budget (one per contract and
    period), the purposes it pays for and, optionally, the largest grant it makes."""

    def act(fund_id: str) -> FundView:
        return funds.open(
            fund_id,
            body.contract_id,
            body.period,
            body.budget_pence,
            caller.actor_id,
            purposes=body.purposes or DEFAULT_PURPOSES,
            max_grant_pence=body.max_grant_pence,
        )

    return await _command(request, caller, idempotency_key, body, act, 201)


@router.get("", response_model=list[FundView])
def list_funds(
    _: Member, funds: Funds, contract: IdQuery = None, period: IdQuery = None
) -> list[FundView]:
    return funds.funds(contract, period)


@router.get("/{fund_id}", response_model=FundView)
def get_fund(fund_id: IdPath, _: Member, funds: Funds) -> FundView:
    with _problems():
        return funds.fund(fund_id)


@router.post("/{fund_id}/budget", response_model=FundView)
async def change_budget(
    fund_id: IdPath,
    body: BudgetRequest,
    request: Request,
    caller: Manager,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Raise or lower the budget; never below what the fund has committed and spent."""

    def act(change_id: str) -> FundView:
        return funds.change_budget(
            fund_id, body.budget_pence, body.reason_code, caller.actor_id, change_id
        )

    return await _command(request, caller, idempotency_key, body, act)


@router.get("/{fund_id}/statement", response_model=FundStatement)
def get_statement(fund_id: IdPath, _: Member, funds: Funds) -> FundStatement:
    """Budget, committed, spent, available and requested, by purpose and by partner, in
    pence: committed + spent + available = budget, and each breakdown adds up."""
    with _problems():
        return funds.statement(fund_id)


@router.get(
    "/{fund_id}/statement.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The statement for finance"}},
)
def get_statement_csv(fund_id: IdPath, _: Member, funds: Funds) -> Response:
    """The statement as CSV: a ``total`` line (budget, committed, spent, available,
    requested, grants approved), then a line per purpose and per partner, in pence."""
    with _problems():
        statement = funds.statement(fund_id)
    name = f"linkway-fund-{statement.contract_id}-{statement.period}.csv"
    return Response(
        statement_csv(statement),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- grants -------------------------------------------------------------------------------


@router.post(
    "/{fund_id}/grants",
    status_code=201,
    response_model=GrantView,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429),
)
async def request_grant(
    fund_id: IdPath,
    body: GrantRequest,
    request: Request,
    caller: LinkWorker,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Ask for a grant for a person on your caseload, for one of their goals: ``goal_id``
    is the goal's number in the current plan, as the referral's ``goals[].number`` shows
    it (``"1"``); a goal not in the plan, or dropped, is a 422. It commits nothing until
    someone else approves it."""
    await check_strictly(request, GrantRequest)
    engine = deps(request).engine
    with Session(engine) as session:
        visible(session, caller, body.referral_id)  # 404, as for a missing referral

    def act(grant_id: str) -> GrantView:
        # The goal is checked on the read model's record of the plan as it is now, by the
        # fund once it knows this is not a retry of a grant already made.
        with Session(engine) as session:
            goals = json.loads(visible(session, caller, body.referral_id).goals)
        return funds.request(
            fund_id,
            grant_id,
            referral_id=body.referral_id,
            goal_id=body.goal_id,
            partner_id=caller.partner_id,
            purpose=body.purpose,
            supplier=body.supplier,
            amount_pence=body.amount_pence,
            actor_id=caller.actor_id,
            goals=goals,
        )

    return await _command(request, caller, idempotency_key, body, act, 201)


@router.get("/{fund_id}/grants", response_model=GrantPage)
def list_grants(
    fund_id: IdPath,
    caller: Member,
    funds: Funds,
    status: GrantStatus | None = None,
    referral: IdQuery = None,
    partner: IdQuery = None,
) -> GrantPage:
    """The fund's grants, oldest first (a Tier One partner's: its own only)."""
    own = _partner(caller)
    if own is not None and partner not in (None, own):
        return GrantPage(items=[])
    with _problems():
        return GrantPage(items=funds.grants(fund_id, own or partner, status, referral))


@router.get("/{fund_id}/grants/{grant_id}", response_model=GrantView)
def get_grant(fund_id: IdPath, grant_id: IdPath, caller: Member, funds: Funds) -> GrantView:
    with _problems():
        return funds.grant(fund_id, grant_id, _partner(caller))


@router.post("/{fund_id}/grants/{grant_id}/approve", response_model=GrantView)
async def approve_grant(
    fund_id: IdPath,
    grant_id: IdPath,
    request: Request,
    caller: Member,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Commit the grant's amount against the budget: 409 if the budget no longer holds
    it, 403 for the person who requested it."""
    return await _command(
        request,
        caller,
        idempotency_key,
        None,
        lambda _: funds.approve(fund_id, grant_id, caller.actor_id, _partner(caller)),
    )


@router.post("/{fund_id}/grants/{grant_id}/refuse", response_model=GrantView)
async def refuse_grant(
    fund_id: IdPath,
    grant_id: IdPath,
    body: ReasonRequest,
    request: Request,
    caller: Member,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def act(_: str) -> GrantView:
        return funds.refuse(fund_id, grant_id, caller.actor_id, body.reason_code, _partner(caller))

    return await _command(request, caller, idempotency_key, body, act)


@router.post("/{fund_id}/grants/{grant_id}/spend", response_model=GrantView)
async def record_spend(
    fund_id: IdPath,
    grant_id: IdPath,
    body: SpendRequest,
    request: Request,
    caller: Member,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record what was paid to the supplier (at most the approved amount; the rest goes
    back to the budget)."""

    def act(_: str) -> GrantView:
        return funds.spend(fund_id, grant_id, caller.actor_id, body.spent_pence, _partner(caller))

    return await _command(request, caller, idempotency_key, body, act)


@router.post("/{fund_id}/grants/{grant_id}/cancel", response_model=GrantView)
async def cancel_grant(
    fund_id: IdPath,
    grant_id: IdPath,
    body: ReasonRequest,
    request: Request,
    caller: Member,
    funds: Funds,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Withdraw a request (the requester may) or release an approved grant unspent."""

    def act(_: str) -> GrantView:
        return funds.cancel(fund_id, grant_id, caller.actor_id, body.reason_code, _partner(caller))

    return await _command(request, caller, idempotency_key, body, act)
