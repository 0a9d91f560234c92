"""A fund grant keeps the category of the goal it was asked for.

Revision ID: 0012
Revises: 0011

Why: a grant names its goal by number in the person's plan, and a revised plan numbers
its goals afresh, so after a revision "goal 2" may be another goal. The grant now keeps
the goal's category as it was when asked for, and the completion report shows it.

Backfill: none. Grants asked for before this have no category (null): the report shows
their goal number alone, as it did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fund_grants", sa.Column("goal_category", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("fund_grants", "goal_category")
