"""One case per person and Tier One partner: a unique index on the NHS number's blind index.

Revision ID: 0009
Revises: 0008

Why: two first referrals for the same new person arriving at the same moment could each
find no case and each store the person, opening two cases. With this index the second
write fails and that request joins the first one's case (api.referrals), as a
re-referral would.

Backfill: none is possible without the personal-data keys, and none is needed to build
the index, except where such a race already happened: two records of one partner with
the same blind index. Of each such group the earliest record keeps its index; the others
are un-indexed (their cases stay, but a new referral no longer finds them) and named in
the migration's log by their pseudonymous referral ids. `linkway people check` lists
them afterwards (a record with an NHS number and no index): an operator merges or closes
those cases (docs/production.md, "Two cases for one person").
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    conn = op.get_bind()
    groups = conn.execute(
        sa.text(
            "SELECT partner_id, nhs_index FROM personal_data WHERE nhs_index IS NOT NULL "
            "GROUP BY partner_id, nhs_index HAVING count(*) > 1"
        )
    ).fetchall()
    for partner_id, nhs_index in groups:
        ids = [
            row[0]
            for row in conn.execute(
                sa.text(
                    "SELECT referral_id FROM personal_data "
                    "WHERE partner_id = :partner AND nhs_index = :index "
                    "ORDER BY updated_at, referral_id"
                ),
                {"partner": partner_id, "index": nhs_index},
            )
        ]
        kept, others = ids[0], ids[1:]
        for referral_id in others:
            conn.execute(
                sa.text("UPDATE personal_data SET nhs_index = NULL WHERE referral_id = :id"),
                {"id": referral_id},
            )
            log.warning(
                "personal_data: referral %s is a second case for the person of referral %s "
                "(partner %s); it is no longer found by NHS number: merge or close it",
                referral_id,
                kept,
                partner_id,
            )
    op.create_index(
        "ux_personal_data_partner_nhs", "personal_data", ["partner_id", "nhs_index"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_personal_data_partner_nhs", table_name="personal_data")
