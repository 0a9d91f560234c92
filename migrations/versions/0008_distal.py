"""The distal-activity feed: one count per referral, measure and month.

Revision ID: 0008
Revises: 0007

Why: distal outcomes (fewer GP appointments, A&E attendances, admissions) are compared
from a commissioner's feed of monthly counts, matched to cases by NHS number through the
personal-data store. The table holds only the pseudonymous referral id, never the NHS
number. A new table: nothing to backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "distal_activity",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "measure", "month"),
    )


def downgrade() -> None:
    op.drop_table("distal_activity")
