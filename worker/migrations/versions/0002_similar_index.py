"""full-text index for similar readings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

from worker.similar import create_schema, rebuild_index

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite: an FTS5 table kept in sync by triggers; PostgreSQL: a generated tsvector with a GIN index.
    bind = op.get_bind()
    if create_schema(bind):
        rebuild_index(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("similar_records_insert", "similar_records_update", "similar_records_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS similar_fts")
        op.execute("DROP VIEW IF EXISTS similar_content")
        op.execute("DROP TABLE IF EXISTS similar_docs")
    else:
        op.execute("DROP INDEX IF EXISTS ix_records_search_vector")
        op.execute("ALTER TABLE records DROP COLUMN IF EXISTS search_vector")
