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
