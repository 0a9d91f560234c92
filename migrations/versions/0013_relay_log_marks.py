"""The relay's log marks: per partition, the first offset of the last batch it marked.

Revision ID: 0013
Revises: 0012

Why: the relay checks the broker's log against what it has published before it
publishes (at start, on taking the lease, after a failure), to send a lost history again
first. It compared the log's ends with counts and last offsets, which the embedded broker
(Tansu) reports as one past the first offset of its last record batch: every start and
every takeover sent the whole history again. A partition's end is past the first offset
of the last batch on every broker (messaging/logmarks.py).

Backfill: none. A topic with no marks yet counts as lost only when the broker holds
nothing in it; the relay's next batch to each topic writes its marks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_log_marks",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("first_offset", sa.Integer(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )


def downgrade() -> None:
    op.drop_table("relay_log_marks")
