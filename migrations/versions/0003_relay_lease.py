"""The publishing lease: several relays run, the one holding the lease publishes.

Revision ID: 0003
Revises: 0002

Why: the outbox relay ran as exactly one replica, so its host was a single point of
failure. A lease row per name (``relay``) with a holder, an expiry on the database's
clock and a fencing token lets any number of relays run: one publishes, the others take
over when its lease lapses, and a deposed relay's token no longer renews (see
messaging/lease.py). A new table, created empty: the first relay to start inserts its
row. Nothing to backfill.

With it, ``rate_buckets``: each API caller's token bucket, shared by every API replica
when ``LINKWAY_API_RATE_SHARED`` is on, so a caller's rate limit holds however many
replicas run. Created empty; a caller's row is made on its first request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("leases")
