"""The reporting read models (issue 14): the tables ``linkway consume reporting`` folds
the lifecycle, outcome, payment and dead-letter topics into (``reporting/tables.py``).

Revision ID: 0007
Revises: 0006
Created: 2026-12-02

Why: the KPIs and exports (docs/reporting.md) are read from these tables, never from
Temporal or the outbox. New tables only, nothing else changes. No backfill by migration:
the tables fill from the topics, by the consumer or by `linkway rebuild reporting --fresh`
(replay older history onto the topics first if they no longer hold it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reporting_actions",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("handoff_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("reporting_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reporting_actions_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "reporting_claims",
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_pence", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    with op.batch_alter_table("reporting_claims", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reporting_claims_contract_id"), ["contract_id"], unique=False
        )

    op.create_table(
        "reporting_dead_letters",
        sa.Column("topic", sa.String(length=120), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", "offset", "consumer"),
    )
    op.create_table(
        "reporting_episodes",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("referrer_org_id", sa.String(length=64), nullable=True),
        sa.Column("reentry", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_contact_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.String(length=64), nullable=True),
        sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unable_to_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("support_level", sa.String(length=16), nullable=True),
        sa.Column("baseline_count", sa.Integer(), nullable=False),
        sa.Column("plan_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("followup_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_measure_count", sa.Integer(), nullable=False),
        sa.Column("followup_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("followup_measure_count", sa.Integer(), nullable=False),
        sa.Column("dormant_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dormant_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("referral_id", "episode"),
    )
    with op.batch_alter_table("reporting_episodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reporting_episodes_month"), ["month"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reporting_episodes_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "reporting_handoffs",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("rejected_reason", sa.String(length=64), nullable=True),
        sa.Column("waitlist_band", sa.String(length=32), nullable=True),
        sa.Column("started", sa.Boolean(), nullable=False),
        sa.Column("failed_reason", sa.String(length=64), nullable=True),
        sa.Column("response_overdue", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id"),
    )
    with op.batch_alter_table("reporting_handoffs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reporting_handoffs_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "reporting_measures",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=32), nullable=False),
        sa.Column("timepoint", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("raw", sa.String(), nullable=False),
        sa.Column("derived", sa.String(), nullable=False),
        sa.Column("administered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "episode", "instrument", "timepoint"),
    )
    op.create_table(
        "reporting_outcomes",
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "episode", "outcome"),
    )
    op.create_table(
        "reporting_referrals",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("referrer_org_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("reporting_referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reporting_referrals_month"), ["month"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reporting_referrals_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reporting_referrals_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "reporting_sessions",
        sa.Column("handoff_id", sa.String(length=64), nullable=False),
        sa.Column("session_date", sa.Date(), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("handoff_id", "session_date"),
    )
    with op.batch_alter_table("reporting_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reporting_sessions_referral_id"), ["referral_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reporting_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporting_sessions_referral_id"))

    op.drop_table("reporting_sessions")
    with op.batch_alter_table("reporting_referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporting_referrals_referral_id"))
        batch_op.drop_index(batch_op.f("ix_reporting_referrals_partner_id"))
        batch_op.drop_index(batch_op.f("ix_reporting_referrals_month"))

    op.drop_table("reporting_referrals")
    op.drop_table("reporting_outcomes")
    op.drop_table("reporting_measures")
    with op.batch_alter_table("reporting_handoffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporting_handoffs_referral_id"))

    op.drop_table("reporting_handoffs")
    with op.batch_alter_table("reporting_episodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporting_episodes_partner_id"))
        batch_op.drop_index(batch_op.f("ix_reporting_episodes_month"))

    op.drop_table("reporting_episodes")
    op.drop_table("reporting_dead_letters")
    with op.batch_alter_table("reporting_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporting_claims_contract_id"))

    op.drop_table("reporting_claims")
    with op.batch_alter_table("reporting_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporting_actions_referral_id"))

    op.drop_table("reporting_actions")
