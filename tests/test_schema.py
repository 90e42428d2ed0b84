"""Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from datetime import datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect

from worker.schema import MIGRATIONS, current_revision, head_revision, upgrade
from worker.storage import Storage, make_engine, metadata, records


def test_migrations_match_the_declared_tables(database_url):
    engine = make_engine(database_url)
    assert upgrade(engine) is True
    assert upgrade(engine) is False  # at head already: nothing runs
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # The full-text index (worker/similar.py, migration 0002) is not in this metadata.
    def ours(d) -> bool:
        text = repr(d)
        return not ("similar" in text or "search_vector" in text)

    assert [d for d in diff if ours(d)] == []
    assert {"records", "jobs", "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_storage_opens_a_migrated_database(database_url):
    Storage(database_url).close()
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    engine.dispose()


def test_the_migrated_similar_index_is_the_one_the_code_declares(tmp_path):
    """Migration 0002 writes out the index's statements as they were; worker/similar.py keeps its
    own for ``ensure_schema`` and ``rebuild``. They must make the same objects."""
    from sqlalchemy import text

    from worker.similar import create_schema

    def objects(engine) -> dict[str, str]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE name LIKE 'similar%'"))
            return {name: sql for name, sql in rows}

    migrated = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(migrated)
    declared = make_engine(f"sqlite:///{tmp_path / 'declared.db'}")
    metadata.create_all(declared)
    with declared.begin() as conn:
        assert create_schema(conn) is True
    assert objects(migrated) == objects(declared) and "similar_fts" in objects(migrated)
    migrated.dispose()
    declared.dispose()

def _migrate(engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()


def test_0003_adds_modified_at_and_keeps_the_stored_records(database_url):
    engine = make_engine(database_url)
    _migrate(engine, "0002")
    now = datetime(2025, 3, 21, 9, 30)
    record_id = "6f1c8e2a-0b4d-4c57-9a61-3d2f0e8b7c15"
    row = {"id": record_id, "category_id": "news", "url": "https://a.test/1", "canonical_url": "https://a.test/1",
           "title": "T", "body": ["one"], "created_at": now, "updated_at": now, "summary": "", "word_count": 1,
           "read_count": 0, "similar": [], "content_hash": "h", "authors": ["Ann Example"], "language": "de"}
    with engine.begin() as conn:  # only the columns revision 0002 has
        conn.execute(insert(records).values(row))
    assert "modified_at" not in {c["name"] for c in inspect(engine).get_columns("records")}
    assert upgrade(engine) is True
    storage = Storage(database_url)
    record = storage.get_record(record_id)
    assert (record.modified_at, record.authors, record.language) == (None, ["Ann Example"], "de")
    storage.close()
    _migrate(engine, "0002", down=True)
    assert "modified_at" not in {c["name"] for c in inspect(engine).get_columns("records")}
    engine.dispose()
