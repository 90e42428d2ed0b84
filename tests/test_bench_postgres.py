"""bench/postgres.py's measuring steps on SQLite at a tiny size: labelled pages and bench/similar.py's
distractors go in, related() is scored on the labelled subject, stores are timed and removed again."""

from datetime import datetime, timezone

from bench import corpora
from bench.postgres import Backend, relate, store
from bench.similar import Filler, labels, store_all
from tests import written_pages


def _written_docs() -> list[dict]:
    """The English written pages in bench/similar.py's collection form (their topic is their label)."""
    return [{"key": f"en/{topic}/{i}", "title": title, "body": body, "half": corpora.HALVES[i & 1],
             "url": f"https://written.test/en/{topic}/{i}", "published_at": None, "written": ("en", topic)}
            for topic, items in written_pages.ENGLISH.items() for i, (title, body) in enumerate(items)]


def test_fill_relate_store_and_sizes_on_sqlite(tmp_path):
    docs = _written_docs()
    subject, area, _ = labels(docs)
    half = {d["key"]: d["half"] for d in docs}
    backend = Backend("SQLite", f"sqlite:///{tmp_path / 'bench.db'}")
    try:
        ids = store_all(backend.storage, docs)
        backend.index.refresh_sample()
        measured = relate(backend, ids, subject, area, half)
        assert measured["related"]["n"] == 5  # the transplant articles; "unrelated" has no subject
        # Five articles on one subject: the first five each lists are the other four, so P@5 is 1.
        quality = measured["quality"]
        assert sum(quality[h]["n"] for h in corpora.HALVES) == 5
        assert all(quality[h]["p"] == 1.0 for h in corpora.HALVES if quality[h]["n"])

        now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        backend.insert(Filler(docs, tail=1000).rows(0, 40, now))
        assert backend.count() == len(docs) + 40

        timed = store(backend, docs, "again")
        assert timed["store"]["n"] == len(docs)
        assert backend.count() == len(docs) + 40  # the stored copies are gone again

        sizes = backend.sizes()
        assert 0 < sizes["fulltext"] <= sizes["indexes"] <= sizes["database"]
    finally:
        backend.storage.close()
