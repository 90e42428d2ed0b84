"""Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from worker.schema import current_revision, head_revision, upgrade
from worker.storage import Storage, make_engine, metadata


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

