"""records and jobs

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("category_id", sa.String(200), nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("canonical_url", sa.String(2048), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True)),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("word_count", sa.Integer, nullable=False),
        sa.Column("read_count", sa.Integer, nullable=False),
        sa.Column("similar", sa.JSON, nullable=False),
        sa.Column("duplicate_of", sa.String(36), index=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("language", sa.String(35)),
    )
    op.create_index(
        "uq_records_canonical_hash", "records", ["content_hash"], unique=True,
        sqlite_where=sa.text("duplicate_of IS NULL"), postgresql_where=sa.text("duplicate_of IS NULL"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("category_id", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("stage", sa.String(16)),
        sa.Column("record_id", sa.String(36)),
        sa.Column("duplicate_of", sa.String(36)),
        sa.Column("reason", sa.Text),
        sa.Column("http_status", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_index("uq_records_canonical_hash", table_name="records")
    op.drop_table("records")
