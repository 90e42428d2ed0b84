"""similar readings: records carry their useful words (CJK text in two-character pieces), the index
is given those and only the title and lead; records carry their story

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

The index's statements as they are at this revision, written out (as in 0002): a later change to
worker/similar.py cannot change what this migration does.
"""

import functools
import importlib
import json
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite: FTS5 over each record's useful words of title and lead (records.search_title and
# search_body; a row written without them is indexed from its own title and first 2,000 characters).
SQLITE = [
    'CREATE TABLE IF NOT EXISTS similar_docs (docid INTEGER PRIMARY KEY, record_id VARCHAR(36) NOT '
    'NULL UNIQUE)',
    "CREATE VIEW IF NOT EXISTS similar_content AS SELECT d.docid AS docid, coalesce(r.search_title, "
    "r.title) AS title, substr(coalesce(r.search_body, (CASE WHEN json_valid(r.body) AND "
    "json_type(r.body) = 'array' THEN (SELECT group_concat(value, char(10)) FROM json_each(r.body) "
    "WHERE type = 'text') ELSE '' END)), 1, 2000) AS body FROM similar_docs d JOIN records r ON "
    "r.id = d.record_id",
    "CREATE VIRTUAL TABLE IF NOT EXISTS similar_fts USING fts5(title, body, "
    "content='similar_content', content_rowid='docid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS similar_records_insert AFTER INSERT ON records BEGIN\nINSERT INTO "
    "similar_docs(record_id) SELECT new.id WHERE new.duplicate_of IS NULL;\nINSERT INTO "
    "similar_fts(rowid, title, body) SELECT docid, coalesce(new.search_title, new.title), "
    "substr(coalesce(new.search_body, (CASE WHEN json_valid(new.body) AND json_type(new.body) = "
    "'array' THEN (SELECT group_concat(value, char(10)) FROM json_each(new.body) WHERE type = "
    "'text') ELSE '' END)), 1, 2000) FROM similar_docs WHERE record_id = new.id;\nEND",
    "CREATE TRIGGER IF NOT EXISTS similar_records_update AFTER UPDATE OF title, body, duplicate_of, "
    "search_title, search_body ON records WHEN old.title IS NOT new.title OR old.body IS NOT "
    "new.body OR old.duplicate_of IS NOT new.duplicate_of OR old.search_title IS NOT "
    "new.search_title OR old.search_body IS NOT new.search_body OR old.id IS NOT new.id "
    "BEGIN\nINSERT INTO similar_fts(similar_fts, rowid, title, body) SELECT 'delete', docid, "
    "coalesce(old.search_title, old.title), substr(coalesce(old.search_body, (CASE WHEN "
    "json_valid(old.body) AND json_type(old.body) = 'array' THEN (SELECT group_concat(value, "
    "char(10)) FROM json_each(old.body) WHERE type = 'text') ELSE '' END)), 1, 2000) FROM "
    "similar_docs WHERE record_id = old.id;\nDELETE FROM similar_docs WHERE record_id = "
    "old.id;\nINSERT INTO similar_docs(record_id) SELECT new.id WHERE new.duplicate_of IS "
    "NULL;\nINSERT INTO similar_fts(rowid, title, body) SELECT docid, coalesce(new.search_title, "
    "new.title), substr(coalesce(new.search_body, (CASE WHEN json_valid(new.body) AND "
    "json_type(new.body) = 'array' THEN (SELECT group_concat(value, char(10)) FROM "
    "json_each(new.body) WHERE type = 'text') ELSE '' END)), 1, 2000) FROM similar_docs WHERE "
    "record_id = new.id;\nEND",
    "CREATE TRIGGER IF NOT EXISTS similar_records_delete AFTER DELETE ON records BEGIN\nINSERT INTO "
    "similar_fts(similar_fts, rowid, title, body) SELECT 'delete', docid, "
    "coalesce(old.search_title, old.title), substr(coalesce(old.search_body, (CASE WHEN "
    "json_valid(old.body) AND json_type(old.body) = 'array' THEN (SELECT group_concat(value, "
    "char(10)) FROM json_each(old.body) WHERE type = 'text') ELSE '' END)), 1, 2000) FROM "
    "similar_docs WHERE record_id = old.id;\nDELETE FROM similar_docs WHERE record_id = old.id;\nEND",
    "INSERT INTO similar_fts(similar_fts, rank) VALUES ('automerge', 2)",
]
SQLITE_FILL = [
    "INSERT INTO similar_docs(record_id) SELECT id FROM records WHERE duplicate_of IS NULL ORDER BY "
    "created_at, id",
    "INSERT INTO similar_fts(rowid, title, body) SELECT docid, title, body FROM similar_content",
    "INSERT INTO similar_fts(similar_fts) VALUES ('optimize')",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS similar_records_insert",
    "DROP TRIGGER IF EXISTS similar_records_update",
    "DROP TRIGGER IF EXISTS similar_records_delete",
    "DROP TABLE IF EXISTS similar_fts",
    "DROP VIEW IF EXISTS similar_content",
    "DROP TABLE IF EXISTS similar_docs",
]
# PostgreSQL: the generated tsvector over the same words (gleaner_body_text is 0002's function).
POSTGRESQL = [
    "ALTER TABLE records ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS "
    "(setweight(to_tsvector('simple', coalesce(search_title, title, '')), 'A') || "
    "setweight(to_tsvector('simple', left(coalesce(search_body, gleaner_body_text(body)), 2000)), "
    "'D')) STORED",
    'CREATE INDEX IF NOT EXISTS ix_records_search_vector ON records USING gin (search_vector) WHERE '
    'duplicate_of IS NULL',
]
POSTGRESQL_DROP = [
    "DROP INDEX IF EXISTS ix_records_search_vector",
    "ALTER TABLE records DROP COLUMN IF EXISTS search_vector",
]
PG_LOCK_KEY = 0x73696d696c  # one process at a time alters the records table

# Han and kana, as SQLite GLOB and PostgreSQL regular expressions see them: the rows to backfill.
_SQLITE_CJK = "*[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]*"
_PG_CJK = "[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]"


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if not sqlite:
        bind.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    # The old index goes first: the backfill then fires no trigger and updates no tsvector.
    for statement in SQLITE_DROP if sqlite else POSTGRESQL_DROP:
        bind.exec_driver_sql(statement)
    op.add_column("records", sa.Column("search_title", sa.Text))
    op.add_column("records", sa.Column("search_body", sa.Text))
    # The story (same event, any outlet) a record belongs to: the id of its first record.
    op.add_column("records", sa.Column("story_id", sa.String(36)))
    op.create_index("ix_records_story_id", "records", ["story_id"])
    _backfill(bind, sqlite)
    if sqlite:
        for statement in SQLITE + SQLITE_FILL:
            bind.exec_driver_sql(statement)
    else:
        for statement in POSTGRESQL:
            bind.exec_driver_sql(statement)
        bind.exec_driver_sql("ANALYZE records")


def _backfill(bind: sa.Connection, sqlite: bool) -> None:
    """The words of the stored records in Chinese or Japanese: indexed from their own text, a run
    of Han or kana would be one word. Other rows keep NULL and are indexed and scored from their
    text, as the code does for any row written without the columns."""
    if sqlite:
        where, pattern = "CAST(title AS TEXT) GLOB :p OR CAST(body AS TEXT) GLOB :p", _SQLITE_CJK
    else:
        where, pattern = "title ~ :p OR CAST(body AS text) ~ :p", _PG_CJK
    rows = bind.execute(sa.text(f"SELECT id, title, body FROM records WHERE {where}"), {"p": pattern}).all()
    for row in rows:
        bind.execute(sa.text("UPDATE records SET search_title = :search_title, search_body = :search_body "
                             "WHERE id = :id"), {"id": row.id, **_search_columns(row.title or "", _paragraphs(row.body))})


def _paragraphs(value: object) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


# --- the words, as worker/similar.py cut them at this revision (search_columns) ----------------

_STOPWORDS = frozenset("""
a about above after again against all almost along already also although always am among an and
another any anyone anything are around as at away back be became because become been before being
below between both but by can cannot could did do does doing done down during each either else
enough even ever every few for from further get gets got had has have having he her here hers
herself him himself his how however i if in into is it its itself just last least less like made
make many may me might more most much must my myself near need never new next no nor not now of
off often on once one only or other others our ours ourselves out over own per perhaps put rather
really said same say says see seen several she should since so some something still such than that
the their theirs them themselves then there these they thing things this those though through thus
to told too two under until up upon us use used very via was way we well were what when where
whether which while who whom whose why will with within without would yet you your yours yourself
mr mrs ms dr year years time times today yesterday week according people percent
""".split())
_CJK_CHARS = ("\u3040-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
              "\U00020000-\U0002fa1f")
_LEAD_WORDS = 250
_LEAD_CHARS = 2000
_MAX_TOKEN = 40
_TOKEN = re.compile(r"[^\W_]+")
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_HAS_CJK = re.compile(f"[{_CJK_CHARS}]")
_NON_ASCII_WORD = re.compile("[^\x00-\x7f\u00a0\u00ab\u00b7\u00bb\u2000-\u206f]")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_FOLD = str.maketrans({"\u03c2": "\u03c3", "\u017f": "s", "\u00b5": "\u03bc"})


def _latin(c: str) -> bool:
    return "a" <= c <= "z" or "\u00c0" <= c <= "\u024f" or "\u1e00" <= c <= "\u1eff"


@functools.lru_cache(maxsize=65536)
def _fold_word(word: str) -> tuple[str, ...]:
    out: list[str] = []
    after_latin = False
    for c in word.translate(_FOLD):
        if unicodedata.combining(c):
            if not after_latin:
                out.append(c)
            continue
        if "\u00c0" <= c <= "\u024f" or "\u1e00" <= c <= "\u1eff":
            c = "".join(x for x in unicodedata.normalize("NFD", c) if not unicodedata.combining(x))
        out.append(c)
        after_latin = _latin(c[:1])
    folded = "".join(out)
    if not _HAS_CJK.search(folded):
        return (folded,)
    parts: list[str] = []
    at = 0
    for run in _CJK_RUN.finditer(folded):
        if run.start() > at:
            parts.append(folded[at:run.start()])
        text_ = run.group()
        parts.extend([text_] if len(text_) < 2 else [text_[i:i + 2] for i in range(len(text_) - 1)])
        at = run.end()
    if at < len(folded):
        parts.append(folded[at:])
    return tuple(parts)


def _tokens(text_: str) -> list[str]:
    if text_.isascii() or not _NON_ASCII_WORD.search(text_):
        return _ASCII_WORD.findall(text_.lower())
    out: list[str] = []
    for word in _TOKEN.findall(text_.replace("\u0130", "I").lower()):
        out.extend([word] if word.isascii() else _fold_word(word))
    return out


def _useful(token: str) -> bool:
    if len(token) > _MAX_TOKEN or token in _STOPWORDS or token.isdigit():
        return False
    return len(token) > 1 or not token.isascii()


def _lead(body: list[str]) -> str:
    out: list[str] = []
    size = 0
    for paragraph in body:
        out.append(paragraph[:_LEAD_CHARS - size])
        size += len(out[-1]) + 1
        if size >= _LEAD_CHARS:
            break
    return "\n".join(out)


def _search_columns(title: str, body: list[str]) -> dict[str, str]:
    lead_words = [t for t in _tokens(_lead(body))[:_LEAD_WORDS] if _useful(t)]
    return {"search_title": " ".join(t for t in _tokens(title) if _useful(t)), "search_body": " ".join(lead_words)}


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for statement in SQLITE_DROP if sqlite else POSTGRESQL_DROP:
        bind.exec_driver_sql(statement)
    op.drop_index("ix_records_story_id", table_name="records")
    for column in ("story_id", "search_body", "search_title"):
        op.drop_column("records", column)
    # Revision 0002's index again, made and filled by its own statements.
    importlib.import_module("worker.migrations.versions.0002_similar_index").upgrade()
