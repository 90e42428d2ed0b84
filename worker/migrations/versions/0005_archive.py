"""the page archive: where a record's page lies, and its earlier versions

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-05

Written out as it is at this revision (no live code imported): records.archive_file,
archive_offset and archived_at (the WARC file and offset of the page a record was last extracted
from, and when it was fetched), and record_revisions (a record's earlier title and text, kept when
a refetch changed them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: ADD COLUMN on both databases, no table copy; existing records have no page kept.
    op.add_column("records", sa.Column("archive_file", sa.Text))
    op.add_column("records", sa.Column("archive_offset", sa.BigInteger))
    op.add_column("records", sa.Column("archived_at", sa.DateTime(timezone=True)))
    op.create_table(
        "record_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(36), nullable=False, index=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archive_file", sa.Text),
        sa.Column("archive_offset", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("record_revisions")
    op.drop_column("records", "archived_at")
    op.drop_column("records", "archive_offset")
    op.drop_column("records", "archive_file")
