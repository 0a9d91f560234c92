"""Casework as link workers do it: the activity and time log, structured goals, and the
level 1 signposting path in the read model.

Revision ID: 0005
Revises: 0003

Why: link workers log every contact or session (issue 13), summed per person, link
worker and partner, so each activity gets a row (``referral_activities``); a referral's
read shows its plan's goals (``referrals.goals``), and reporting counts the level 1
short path apart from the full one (``path`` on referrals and their episodes).

No backfill: a referral or episode from before has no goals recorded here until its
next transition ("[]"), and was on the full path (the short path did not exist). Plain
ADD COLUMNs with constant defaults: no table rewrite on PostgreSQL, no batch on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "referrals", sa.Column("path", sa.String(length=16), nullable=False, server_default="full")
    )
    op.add_column("referrals", sa.Column("goals", sa.String(), nullable=False, server_default="[]"))
    op.add_column(
        "referral_episodes",
        sa.Column("path", sa.String(length=16), nullable=False, server_default="full"),
    )
    op.create_table(
        "referral_activities",
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("link_worker_id", sa.String(length=64), nullable=False),
        sa.Column("activity_type", sa.String(length=16), nullable=False),
        sa.Column("direct", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("note_recorded", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("last_event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("activity_id"),
    )
    with op.batch_alter_table("referral_activities", schema=None) as batch_op:
        batch_op.create_index("ix_activities_referral", ["referral_id", "started_at"], unique=False)
        batch_op.create_index(
            "ix_activities_worker", ["link_worker_id", "started_at"], unique=False
        )
        batch_op.create_index("ix_activities_partner", ["partner_id", "started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_activities", schema=None) as batch_op:
        batch_op.drop_index("ix_activities_partner")
        batch_op.drop_index("ix_activities_worker")
        batch_op.drop_index("ix_activities_referral")
    op.drop_table("referral_activities")
    with op.batch_alter_table("referral_episodes", schema=None) as batch_op:
        batch_op.drop_column("path")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_column("goals")
        batch_op.drop_column("path")
