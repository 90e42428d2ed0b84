"""full-text index for similar readings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

from worker.similar import drop_schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The index is made by 0003, over the columns it adds (a database already past this revision
    # has 0003 rebuild the index it made here).
    pass


def downgrade() -> None:
    drop_schema(op.get_bind())
