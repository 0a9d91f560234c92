"""Reporting answered in SQL: indexes on the KPIs' filter columns and episode look-ups,
and each episode's consent to evaluation.

Revision ID: 0011
Revises: 0010

Why: the KPIs are now GROUP BY queries whose filters (partner, locality, source, referring
practice, support level, period) are WHERE clauses, and whose facts (handoffs, sessions,
actions, claims) are matched to their episode by (referral id, episode). The evaluation
dataset leaves out episodes whose person refused evaluation (docs/reporting.md, "Consent
to evaluation"): ``reporting_episodes.evaluation_consent`` holds it (null: never asked).

Backfill: none here. Episodes folded before this revision have no consent recorded
(null: treated as never asked, their measures blank in the dataset) until
``linkway rebuild reporting --fresh`` folds the topics again; assessment events from
before this release carry no consent purposes either, so their episodes take the
consent from their outcome events, where there are any.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SINGLE = {
    "reporting_referrals": ("locality", "source", "referrer_org_id", "received_at"),
    "reporting_episodes": (
        "locality",
        "source",
        "referrer_org_id",
        "received_at",
        "support_level",
    ),
}
EPISODE = ("reporting_handoffs", "reporting_sessions", "reporting_actions", "reporting_claims")


def upgrade() -> None:
    with op.batch_alter_table("reporting_episodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evaluation_consent", sa.Boolean(), nullable=True))
    for table, columns in SINGLE.items():
        for column in columns:
            op.create_index(f"ix_{table}_{column}", table, [column], unique=False)
    for table in EPISODE:
        op.create_index(f"ix_{table}_episode", table, ["referral_id", "episode"], unique=False)


def downgrade() -> None:
    for table in EPISODE:
        op.drop_index(f"ix_{table}_episode", table_name=table)
    for table, columns in SINGLE.items():
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)
    with op.batch_alter_table("reporting_episodes", schema=None) as batch_op:
        batch_op.drop_column("evaluation_consent")
