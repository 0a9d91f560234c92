"""Ledger entries carry each claim's split between payers (co-funded contracts).

Revision ID: 0002
Revises: 0001

Why: a co-funded contract pays each outcome from several payers, and the split is part
of the ledger entry a contract manager audits. No backfill: an entry made before this
has no split ("[]"), which is what it meant (one payer), and its hash does not cover
the column when it is empty, so existing chains still verify.

A plain ADD COLUMN, never a batch (copy-and-rename) operation: on SQLite a batch would
rebuild ledger_entries without its append-only triggers, and on PostgreSQL a column
with a constant default is added without rewriting (so without updating) any row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ledger_entries",
        sa.Column("shares", sa.String(), nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    # Dropping a column of the append-only ledger is not a downgrade a contract can take:
    # restore the database from its backup instead.
    raise NotImplementedError("the ledger is append-only: restore from a backup")
