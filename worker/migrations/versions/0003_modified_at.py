"""records.modified_at: the update a page declares, kept apart from its publication

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: ADD COLUMN on both databases, no table copy, existing rows read as "not
    # stated". The type is what UTCDateTime stores, written out (a migration imports no live code).
    op.add_column("records", sa.Column("modified_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # SQLite drops a column in place since 3.35, so the similar index's triggers (0002) stay.
    op.drop_column("records", "modified_at")
