"""The values each report filter can take, as the read models hold them: what the
dashboard's filter form offers (``GET /reports/filters``).

A filter still accepts any well-formed value (a partner with no referrals yet answers
zeros); these are suggestions, so nobody has to know a practice's code by heart. A Tier
One partner is offered its own partner and the localities, sources, practices and
support levels of its own referrals only, and the contracts that pay it. Codes and
pseudonymous organisation ids only: no value here is personal data.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from payments.ratebook import RateCardBook
from reporting.kpis.view import EP, REF

# Values offered per filter, at most; the first in code order (a form offers no more).
LIMIT = 500
FIELDS = ("contract", "partner", "locality", "source", "practice", "support_level")


def choices(session: Session, book: RateCardBook, partner: str | None) -> dict[str, list[str]]:
    """Every filter's values, each list sorted; ``partner`` narrows all of them to one
    Tier One partner's."""
    conn = session.connection()

    def distinct(table: sa.FromClause, column: sa.ColumnElement[Any]) -> list[str]:
        query = sa.select(column).where(column.is_not(None)).distinct()
        if partner is not None:
            query = query.where(table.c.partner_id == partner)
        found = conn.execute(query.order_by(column).limit(LIMIT)).scalars()
        return sorted(str(value) for value in found)

    return {
        "contract": book.contracts_for(partner) if partner else book.contracts()[:LIMIT],
        "partner": distinct(REF, REF.c.partner_id),
        "locality": distinct(REF, REF.c.locality),
        "source": distinct(REF, REF.c.source),
        "practice": distinct(REF, REF.c.referrer_org_id),
        "support_level": distinct(EP, EP.c.support_level),
    }
