"""Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from datetime import datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text

from worker.schema import MIGRATIONS, current_revision, head_revision, upgrade
from worker.storage import Storage, make_engine, metadata, records


def test_migrations_match_the_declared_tables(database_url):
    engine = make_engine(database_url)
    assert upgrade(engine) is True
    assert upgrade(engine) is False  # at head already: nothing runs
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # The full-text index (worker/similar.py, migrations 0002 and 0004) is not in this metadata.
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
    """Migrations write out the index's statements as they were (0002, 0004); worker/similar.py keeps its
    own for ``ensure_schema`` and ``rebuild``. They must make the same objects."""

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


def test_0004_gives_stored_cjk_records_their_words_and_the_index_finds_them(database_url):
    """A database at 0003 with English and Japanese records: after the upgrade, the Japanese
    records carry their words as the running code cuts them (two-character pieces), the English
    ones none (indexed from their text), and similar readings relate each to its own topic; the
    downgrade gives back 0003's columns and 0002's index, which still finds the English ones."""
    from tests import written_pages
    from worker.similar import SimilarIndex, search_columns

    engine = make_engine(database_url)
    _migrate(engine, "0003")
    now = datetime(2025, 3, 21, 9, 30)
    articles = [("en", *a) for a in written_pages.ENGLISH["ips-cell-transplants"]] + \
               [("ja", *a) for a in written_pages.JAPANESE["monetary-policy"] + written_pages.JAPANESE["baseball"]]
    ids = []
    with engine.begin() as conn:  # only the columns revision 0003 has
        for n, (language, title, body) in enumerate(articles):
            ids.append(f"00000000-0000-0000-0000-{n:012d}")
            conn.execute(insert(records).values(
                id=ids[-1], category_id="news", url=f"https://a.test/{n}", canonical_url=f"https://a.test/{n}",
                title=title, body=body, created_at=now, updated_at=now, summary="", word_count=1, read_count=0,
                similar=[], content_hash=f"h{n}", authors=[], language=language))
    assert upgrade(engine) is True
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT id, search_title, search_body, story_id FROM records"))}
    for record_id, (language, title, body) in zip(ids, articles):
        row = rows[record_id]
        if language == "ja":  # what the store stage would write today
            assert {"search_title": row.search_title, "search_body": row.search_body} == search_columns(title, body)
        else:
            assert row.search_title is None and row.search_body is None
        assert row.story_id is None
    index = SimilarIndex(engine, floor=0.0, share=0.0)  # what the index finds and how it ranks it, whatever the listing floor
    index.check()
    first_rate, first_ohtani, first_ips = ids[5], ids[8], ids[0]
    assert {str(r.id) for r in index.related(first_rate, k=2)} == {ids[6], ids[7]}
    assert {str(r.id) for r in index.related(first_ohtani, k=2)} == {ids[9], ids[10]}
    english = {str(r.id) for r in index.related(first_ips, k=4)}  # indexed from their own text
    assert english and english <= set(ids[1:5])

    _migrate(engine, "0003", down=True)
    columns = {c["name"] for c in inspect(engine).get_columns("records")}
    assert {"search_title", "search_body", "story_id"}.isdisjoint(columns) and "modified_at" in columns
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM similar_docs")).scalar() == len(ids)
            hits = conn.execute(text("SELECT count(*) FROM similar_fts WHERE similar_fts MATCH 'pluripotent'")).scalar()
    else:
        with engine.connect() as conn:
            hits = conn.execute(text("SELECT count(*) FROM records "
                                     "WHERE search_vector @@ to_tsquery('simple', 'pluripotent')")).scalar()
    assert hits >= 4
    engine.dispose()
