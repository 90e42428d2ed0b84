"""full-text index for similar readings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

The statements as they were at this revision, written out: a migration imports no live code, so a
later change to worker/similar.py cannot change what this one does (a new revision does that).
"""

from alembic import op
from sqlalchemy import text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite: an FTS5 index over title and body, its content read through a view, kept in sync by triggers.
SQLITE = [
    'CREATE TABLE IF NOT EXISTS similar_docs (docid INTEGER PRIMARY KEY, record_id VARCHAR(36) NOT '
    'NULL UNIQUE)',
    'CREATE VIEW IF NOT EXISTS similar_content AS SELECT d.docid AS docid, r.title AS title, (CASE '
    "WHEN json_valid(r.body) AND json_type(r.body) = 'array' THEN (SELECT group_concat(value, "
    "char(10)) FROM json_each(r.body) WHERE type = 'text') ELSE '' END) AS body FROM similar_docs d "
    'JOIN records r ON r.id = d.record_id',
    'CREATE VIRTUAL TABLE IF NOT EXISTS similar_fts USING fts5(title, body, '
    "content='similar_content', content_rowid='docid', tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO similar_fts(similar_fts, rank) VALUES ('automerge', 2)",
    'CREATE TRIGGER IF NOT EXISTS similar_records_insert AFTER INSERT ON records BEGIN\nINSERT INTO '
    'similar_docs(record_id) SELECT new.id WHERE new.duplicate_of IS NULL;\nINSERT INTO '
    'similar_fts(rowid, title, body) SELECT docid, new.title, (CASE WHEN json_valid(new.body) AND '
    "json_type(new.body) = 'array' THEN (SELECT group_concat(value, char(10)) FROM "
    "json_each(new.body) WHERE type = 'text') ELSE '' END) FROM similar_docs WHERE record_id = "
    'new.id;\nEND',
    'CREATE TRIGGER IF NOT EXISTS similar_records_update AFTER UPDATE OF title, body, duplicate_of '
    'ON records WHEN old.title IS NOT new.title OR old.body IS NOT new.body OR old.duplicate_of IS '
    'NOT new.duplicate_of OR old.id IS NOT new.id BEGIN\nINSERT INTO similar_fts(similar_fts, rowid, '
    "title, body) SELECT 'delete', docid, old.title, (CASE WHEN json_valid(old.body) AND "
    "json_type(old.body) = 'array' THEN (SELECT group_concat(value, char(10)) FROM "
    "json_each(old.body) WHERE type = 'text') ELSE '' END) FROM similar_docs WHERE record_id = "
    'old.id;\nDELETE FROM similar_docs WHERE record_id = old.id;\nINSERT INTO similar_docs(record_id) '
    'SELECT new.id WHERE new.duplicate_of IS NULL;\nINSERT INTO similar_fts(rowid, title, body) '
    "SELECT docid, new.title, (CASE WHEN json_valid(new.body) AND json_type(new.body) = 'array' THEN "
    "(SELECT group_concat(value, char(10)) FROM json_each(new.body) WHERE type = 'text') ELSE '' "
    'END) FROM similar_docs WHERE record_id = new.id;\nEND',
    'CREATE TRIGGER IF NOT EXISTS similar_records_delete AFTER DELETE ON records BEGIN\nINSERT INTO '
    "similar_fts(similar_fts, rowid, title, body) SELECT 'delete', docid, old.title, (CASE WHEN "
    "json_valid(old.body) AND json_type(old.body) = 'array' THEN (SELECT group_concat(value, "
    "char(10)) FROM json_each(old.body) WHERE type = 'text') ELSE '' END) FROM similar_docs WHERE "
    'record_id = old.id;\nDELETE FROM similar_docs WHERE record_id = old.id;\nEND',
]
# The records stored before the index existed, indexed once when it is made.
SQLITE_FILL = [
    'INSERT INTO similar_docs(record_id) SELECT id FROM records WHERE duplicate_of IS NULL ORDER BY '
    'created_at, id',
    "INSERT INTO similar_fts(rowid, title, body) SELECT docid, title, body FROM similar_content",
    "INSERT INTO similar_fts(similar_fts) VALUES ('optimize')",
]
# PostgreSQL: a generated tsvector column (title weight A, body weight D) with a partial GIN index.
POSTGRESQL = [
    'CREATE OR REPLACE FUNCTION gleaner_body_text(body json) RETURNS text LANGUAGE sql IMMUTABLE '
    "PARALLEL SAFE AS $$ SELECT coalesce(string_agg(p, E'\\n'), '') FROM "
    "json_array_elements_text(CASE WHEN json_typeof(body) = 'array' THEN body ELSE '[]'::json END) "
    'AS p $$',
    'ALTER TABLE records ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS '
    "(setweight(to_tsvector('simple', coalesce(title, '')), 'A') || setweight(to_tsvector('simple', "
    "gleaner_body_text(body)), 'D')) STORED",
    'CREATE INDEX IF NOT EXISTS ix_records_search_vector ON records USING gin (search_vector) WHERE '
    'duplicate_of IS NULL',
]
PG_LOCK_KEY = 0x73696d696c  # one process at a time alters the records table


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        existed = bind.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'similar_fts'")).first() is not None
        for statement in SQLITE + ([] if existed else SQLITE_FILL):
            bind.exec_driver_sql(statement)
        return
    bind.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    existed = bind.execute(text(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'records' "
        "AND column_name = 'search_vector' AND table_schema = current_schema()")).first() is not None
    for statement in POSTGRESQL:
        if not (existed and statement.startswith("CREATE OR REPLACE FUNCTION")):
            bind.exec_driver_sql(statement)
    if not existed:
        bind.exec_driver_sql("ANALYZE records")


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
