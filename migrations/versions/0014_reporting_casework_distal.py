"""Reporting counts link worker activity, caseloads and distal outcomes.

Revision ID: 0014
Revises: 0013

Why: the commissioner's KPIs now include the link worker's logged time (sessions,
minutes, direct and indirect, by activity type), caseloads against the profile's annual
capacity and the distal outcomes (docs/reporting.md). ``reporting_activities`` holds each
logged activity as its latest fact says (a deletion is kept as a tombstone);
``reporting_distal`` each episode's before and after counts per distal measure;
``reporting_episodes.link_worker_id`` the link worker assigned now.

Backfill: none here. The new tables start empty and the new column null; run
``linkway rebuild reporting --fresh`` once after upgrading, so the activity, assignment
and distal events already on the topics are folded in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reporting_episodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_worker_id", sa.String(length=64), nullable=True))
    op.create_table(
        "reporting_activities",
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
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.Column("stated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("activity_id"),
    )
    op.create_index(
        "ix_reporting_activities_episode",
        "reporting_activities",
        ["referral_id", "episode"],
        unique=False,
    )
    op.create_index(
        "ix_reporting_activities_partner",
        "reporting_activities",
        ["partner_id", "referral_id", "episode", "deleted"],
        unique=False,
    )
    summed = ["referral_id", "episode", "deleted", "direct", "minutes", "started_at"]
    op.create_index(
        "ix_reporting_activities_worker",
        "reporting_activities",
        ["partner_id", "link_worker_id", *summed],
        unique=False,
    )
    op.create_index(
        "ix_reporting_activities_type",
        "reporting_activities",
        ["partner_id", "activity_type", *summed],
        unique=False,
    )
    op.create_table(
        "reporting_distal",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("window_months", sa.Integer(), nullable=False),
        sa.Column("before_count", sa.Integer(), nullable=False),
        sa.Column("after_count", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "episode", "measure"),
    )


def downgrade() -> None:
    op.drop_table("reporting_distal")
    op.drop_index("ix_reporting_activities_type", table_name="reporting_activities")
    op.drop_index("ix_reporting_activities_worker", table_name="reporting_activities")
    op.drop_index("ix_reporting_activities_partner", table_name="reporting_activities")
    op.drop_index("ix_reporting_activities_episode", table_name="reporting_activities")
    op.drop_table("reporting_activities")
    with op.batch_alter_table("reporting_episodes", schema=None) as batch_op:
        batch_op.drop_column("link_worker_id")
