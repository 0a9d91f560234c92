"""What each caller may see: the one place the scope rules live.

- ``tier_one``: referrals in its own localities (from the tenancy file);
- ``referrer``: referrals its organisation made (``ReferrerLink``), status only;
- ``contract_manager`` and ``admin``: every referral, pseudonymous fields only;
- ``tier_two``: no referral (providers see their handoffs through the provider API).

An object outside the scope answers exactly as one that does not exist: the same 404.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import false
from sqlmodel import Session, col, select

from activities.readmodel import ReferralRow, ReferrerLink
from api.auth import Caller
from api.problems import Problem

Q = TypeVar("Q")


def not_found() -> Problem:
    return Problem(404, "Not found", "no referral with that id is visible to you")


def scoped(query: Q, caller: Caller) -> Q:
    """Restrict a select over ``ReferralRow`` to what the caller may see."""
    q: Any = query
    if caller.role == "tier_one":
        return q.where(col(ReferralRow.locality).in_(caller.localities))
    if caller.role == "referrer":
        mine = select(ReferrerLink.referral_id).where(ReferrerLink.partner_id == caller.partner_id)
        return q.where(col(ReferralRow.referral_id).in_(mine))
    if caller.role in ("contract_manager", "admin"):
        return query
    return q.where(false())


def visible(session: Session, caller: Caller, referral_id: str) -> ReferralRow:
    """The referral's row if the caller may see it; otherwise the 404 of a missing one."""
    row = session.exec(
        scoped(select(ReferralRow).where(ReferralRow.referral_id == referral_id), caller)
    ).first()
    if row is None:
        raise not_found()
    return row


def check_visible(session: Session, caller: Caller, referral_id: str) -> None:
    """``visible`` for a caller that needs only the answer: one indexed lookup of the id,
    no row loaded; the same 404 for a referral out of scope as for a missing one."""
    found = session.exec(
        scoped(
            select(ReferralRow.referral_id).where(ReferralRow.referral_id == referral_id), caller
        )
    ).first()
    if found is None:
        raise not_found()
