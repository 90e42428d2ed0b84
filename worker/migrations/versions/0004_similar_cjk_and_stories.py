"""similar readings: CJK text indexed in two-character pieces; stories

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import json

import sqlalchemy as sa
from alembic import op

from worker.similar import create_schema, drop_schema, rebuild_index, search_columns

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Han and kana, as SQLite GLOB and PostgreSQL regular expressions see them: the rows to backfill.
_SQLITE_CJK = "*[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]*"
_PG_CJK = "[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]"


def upgrade() -> None:
    bind = op.get_bind()
    # The text the index is given where it differs from the record's own (see search_columns).
    op.add_column("records", sa.Column("search_title", sa.Text))
    op.add_column("records", sa.Column("search_body", sa.Text))
    # The story (same event, any outlet) a record belongs to: the id of its first record.
    op.add_column("records", sa.Column("story_id", sa.String(36)))
    op.create_index("ix_records_story_id", "records", ["story_id"])
    if bind.dialect.name == "sqlite":
        where, pattern = "CAST(title AS TEXT) GLOB :p OR CAST(body AS TEXT) GLOB :p", _SQLITE_CJK
    else:
        where, pattern = "title ~ :p OR CAST(body AS text) ~ :p", _PG_CJK
    rows = bind.execute(sa.text(f"SELECT id, title, body FROM records WHERE {where}"), {"p": pattern}).all()
    for row in rows:
        bind.execute(sa.text("UPDATE records SET search_title = :search_title, search_body = :search_body "
                             "WHERE id = :id"), {"id": row.id, **search_columns(row.title or "", _paragraphs(row.body))})
    drop_schema(bind)
    create_schema(bind)
    rebuild_index(bind)


def _paragraphs(value: object) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def downgrade() -> None:
    # The code of revision 0002 makes its own index at start (SimilarIndex.ensure_schema).
    bind = op.get_bind()
    drop_schema(bind)
    op.drop_index("ix_records_story_id", table_name="records")
    for column in ("story_id", "search_body", "search_title"):
        op.drop_column("records", column)
