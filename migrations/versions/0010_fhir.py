"""Handoffs in the read model say what the provider delivered once completed, and when
they last changed.

Revision ID: 0010
Revises: 0009

Why: a provider reports a handoff completed with what it delivered (a code) and how many
sessions; the workflow kept it but the read model did not, so neither the link worker's
referral view, the provider's own list nor the FHIR Task could show it. No backfill: the
next transition of each referral writes its handoffs again from the workflow's state,
and a handoff completed before this shows none until then. ``updated_at`` is the time a
handoff's row last changed (a FHIR Task's ``lastModified``, searched by ``_lastUpdated``);
empty for a handoff that has not changed since, which then shows when it was requested.

Plain ADD COLUMNs of nullable columns: no table rebuild, no row rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handoffs", sa.Column("delivered_code", sa.String(length=64), nullable=True))
    op.add_column("handoffs", sa.Column("sessions_delivered", sa.Integer(), nullable=True))
    op.add_column("handoffs", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("sessions_delivered")
        batch.drop_column("delivered_code")
