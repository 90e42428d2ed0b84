import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from worker.models import Article, Draft
from worker.storage import Storage


@pytest.fixture
def storage(database_url):
    s = Storage(database_url)
    yield s
    s.close()


def draft(url: str, body: list[str], *, title: str = "Title", digest: str | None = None) -> Draft:
    return Draft(job_id=str(uuid.uuid4()), category_id="news", url=url,
                 article=Article(title=title, body=body), canonical_url=url,
                 content_hash=digest or str(abs(hash(tuple(body)))), summary="S.", word_count=len(body))


def test_upsert_is_idempotent_and_updates_keep_identity(storage):
    first_id, dup = storage.upsert_record(draft("https://a.test/1", ["one"], digest="h1"))
    assert dup is None
    before = storage.get_record(first_id)
    again_id, _ = storage.upsert_record(draft("https://a.test/1", ["one"], digest="h1"))
    assert again_id == first_id
    assert storage.get_record(first_id) == before  # nothing changed, not even updated_at
    changed_id, _ = storage.upsert_record(draft("https://a.test/1", ["one", "two"], digest="h2"))
    after = storage.get_record(changed_id)
    assert changed_id == first_id
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert after.body == ["one", "two"]
    assert storage.count_records() == 1


def test_same_text_elsewhere_is_stored_as_a_link(storage):
    canonical, _ = storage.upsert_record(draft("https://a.test/story", ["text"], digest="same"))
    copy, dup = storage.upsert_record(draft("https://b.test/copy", ["text"], digest="same"))
    assert copy != canonical and dup == canonical
    assert str(storage.get_record(copy).duplicate_of) == canonical
    assert storage.alternate_urls(canonical) == ["https://b.test/copy"]


def test_concurrent_copies_end_with_one_canonical(storage):
    results: list[tuple[str, str | None]] = []
    barrier = threading.Barrier(6)

    def store(n: int) -> None:
        barrier.wait()
        results.append(storage.upsert_record(draft(f"https://site{n}.test/x", ["same words"], digest="race")))

    threads = [threading.Thread(target=store, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    canonicals = [rid for rid, dup in results if dup is None]
    assert len(canonicals) == 1
    assert all(dup == canonicals[0] for rid, dup in results if rid != canonicals[0])


def test_jobs_move_to_a_terminal_state(storage):
    ok, bad = storage.create_jobs(["https://a.test/1", "https://a.test/2"], "news")
    assert storage.get_job(ok)["state"] == "queued"
    storage.finish_job(ok, record_id="r1", duplicate_of=None)
    storage.fail_job(bad, reason="HTTP 404 Not Found", stage="fetch", status=404, attempts=1)
    assert storage.get_job(ok)["state"] == "done"
    failed = storage.failed_jobs()
    assert [(j["id"], j["http_status"], j["reason"]) for j in failed] == [(bad, 404, "HTTP 404 Not Found")]
    storage.requeue_job(bad)
    assert storage.get_job(bad)["state"] == "queued" and storage.failed_jobs() == []
    assert storage.count_jobs() == {"done": 1, "queued": 1}


def test_read_bumps_count_and_time(storage):
    rid, _ = storage.upsert_record(draft("https://a.test/r", ["x"]))
    assert storage.get_record(rid).last_read_at is None
    record = storage.mark_read(rid)
    record = storage.mark_read(rid)
    assert record.read_count == 2 and record.last_read_at is not None
    assert storage.find_record(rid[:8]).id == record.id


def test_a_store_writes_record_readings_and_job_end_together(storage):
    from worker.models import SimilarRef

    other, _ = storage.upsert_record(draft("https://a.test/other", ["other"], digest="o"))
    job = storage.create_jobs(["https://a.test/new"], "news")[0]
    new = draft("https://a.test/new", ["new"], digest="n").model_copy(update={"record_id": uuid.uuid4()})
    readings = [SimilarRef(id=other, title="Title"), SimilarRef(id=new.record_id, title="self")]
    record_id, dup = storage.upsert_record(new, similar=readings, job_id=job)
    assert dup is None
    assert [str(s.id) for s in storage.get_record(record_id).similar] == [other]  # never itself
    row = storage.get_job(job)
    assert (row["state"], row["record_id"]) == ("done", record_id)
    # A copy is a link: its job ends as a duplicate and it lists no readings of its own.
    copy_job = storage.create_jobs(["https://b.test/copy"], "news")[0]
    copy_id, dup = storage.upsert_record(draft("https://b.test/copy", ["new"], digest="n"),
                                         similar=[SimilarRef(id=other, title="Title")], job_id=copy_job)
    assert dup == record_id and storage.get_record(copy_id).similar == []
    assert storage.get_job(copy_job)["state"] == "duplicate"


def test_a_failed_store_leaves_the_job_open(storage, monkeypatch):
    import worker.storage as storage_module

    job = storage.create_jobs(["https://a.test/fails"], "news")[0]

    def broken(conn, job_id, record_id, duplicate_of):
        raise RuntimeError("disk on fire")

    # Fails after the record's INSERT, in the same transaction.
    monkeypatch.setattr(storage_module, "_finish_job", broken)
    with pytest.raises(RuntimeError):
        storage.upsert_record(draft("https://a.test/fails", ["x"], digest="f"), similar=[], job_id=job)
    # One transaction: no record without its job's end, and the job can run again.
    assert storage.find_record_by_url("https://a.test/fails") is None
    assert storage.get_job(job)["state"] == "queued"


def test_similar_readings_are_stored_with_the_record_never_itself_and_counted(storage):
    from worker.models import SimilarRef

    a, _ = storage.upsert_record(draft("https://a.test/r1", ["one"], digest="r1"))
    b, _ = storage.upsert_record(draft("https://a.test/r2", ["two"], digest="r2"))
    d = draft("https://a.test/r3", ["three"], digest="r3")
    d = d.model_copy(update={"record_id": uuid.uuid4()})
    refs = [SimilarRef(id=a, title="A"), SimilarRef(id=str(d.record_id), title="itself"), SimilarRef(id=b, title="B")]
    c, _ = storage.upsert_record(d, similar=refs)  # new: in the INSERT
    assert c == str(d.record_id)
    assert [(str(s.id), s.title) for s in storage.get_record(c).similar] == [(a, "A"), (b, "B")]
    changed = d.model_copy(update={"content_hash": "r3b", "article": Article(title="Title", body=["three!"])})
    storage.upsert_record(changed, similar=refs[:2])  # changed text: in the UPDATE
    assert [str(s.id) for s in storage.get_record(c).similar] == [a]
    storage.upsert_record(changed, similar=refs[1:])  # unchanged text: readings still refreshed
    assert [str(s.id) for s in storage.get_record(c).similar] == [b]
    copy, canonical = storage.upsert_record(draft("https://a.test/r4", ["one"], digest="r1"), similar=refs)
    assert canonical == a and storage.get_record(copy).similar == []  # a duplicate lists none


def test_a_page_of_newest_records_reads_the_time_index_not_a_sort_of_the_table(storage):
    # The records browser, the API and `gleaner list` page through records newest first. Without an
    # index on (created_at, id), SQLite sorted every record (a temporary B-tree) for each page of 50.
    from sqlalchemy import event

    from worker.web.queries import RecordFilter, search_records

    for i in range(3):
        storage.upsert_record(draft(f"https://a.test/t{i}", [f"text {i}"], digest=f"t{i}"))
    seen: list[tuple[str, tuple]] = []

    @event.listens_for(storage.engine, "before_cursor_execute")
    def note(_conn, _cursor, statement, parameters, *_args) -> None:
        seen.append((statement, parameters))

    newest = storage.list_records(limit=2)
    browsed, total = search_records(storage, RecordFilter(), limit=2, offset=0)
    event.remove(storage.engine, "before_cursor_execute", note)
    assert [r.url for r in newest] == [r.url for r in browsed] == ["https://a.test/t2", "https://a.test/t1"]
    assert total == 3
    if storage.engine.dialect.name == "sqlite":
        pages = [(s, p) for s, p in seen if "ORDER BY records.created_at DESC" in s]
        assert len(pages) == 2
        with storage.engine.connect() as conn:
            for statement, parameters in pages:
                plan = " ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
                assert "ix_records_created_at_id" in plan and "TEMP B-TREE" not in plan, plan


def test_the_pages_update_authors_and_language_are_stored_and_updated(storage):
    published = datetime(2025, 3, 21, 9, 30, tzinfo=timezone(timedelta(hours=9)))
    article = Article(title="Ferries", body=["one"], published_at=published,
                      modified_at=published + timedelta(days=1), authors=["Ann Example", "Bo Sample"], language="ja")
    stored = Draft(job_id=str(uuid.uuid4()), category_id="news", url="https://a.test/m", article=article,
                   canonical_url="https://a.test/m", content_hash="m1", summary="S.", word_count=1)
    record_id, _ = storage.upsert_record(stored)
    record = storage.get_record(record_id)
    assert record.modified_at == published + timedelta(days=1)  # the same instant, given back in UTC
    assert record.modified_at.utcoffset() == timedelta(0)
    assert (record.authors, record.language) == (["Ann Example", "Bo Sample"], "ja")
    changed = stored.model_copy(update={"content_hash": "m2", "article": article.model_copy(
        update={"modified_at": None, "authors": ["Cy Person"], "language": "en"})})
    storage.upsert_record(changed)
    record = storage.get_record(record_id)
    assert (record.modified_at, record.authors, record.language) == (None, ["Cy Person"], "en")


def test_set_similar_many_replaces_each_lists_readings_in_one_statement(storage):
    from sqlalchemy import event

    from worker.models import SimilarRef

    a, _ = storage.upsert_record(draft("https://a.test/m1", ["one"], digest="m1"))
    b, _ = storage.upsert_record(draft("https://a.test/m2", ["two"], digest="m2"))
    c, _ = storage.upsert_record(draft("https://a.test/m3", ["three"], digest="m3"),
                                 similar=[SimilarRef(id=a, title="A")])
    seen: list[str] = []

    @event.listens_for(storage.engine, "before_cursor_execute")
    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    storage.set_similar_many({a: [SimilarRef(id=b, title="B", score=0.5), SimilarRef(id=a, title="itself", score=1.0)],
                              b: [SimilarRef(id=a, title="A", score=0.25), SimilarRef(id=c, title="C")]})
    event.remove(storage.engine, "before_cursor_execute", note)
    assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE")]) == 1  # one executemany
    assert [(str(r.id), r.title, r.score) for r in storage.get_record(a).similar] == [(b, "B", 0.5)]  # never itself
    assert [(str(r.id), r.title, r.score) for r in storage.get_record(b).similar] == [(a, "A", 0.25), (c, "C", None)]
    assert [(str(r.id), r.title) for r in storage.get_record(c).similar] == [(a, "A")]  # not named: untouched
    storage.set_similar_many({})  # nothing to write: no transaction


def test_the_lists_a_record_enters_are_written_in_its_own_transaction_and_only_when_canonical(storage):
    from sqlalchemy import event

    from worker.models import SimilarRef

    older, _ = storage.upsert_record(draft("https://a.test/e1", ["older"], digest="e1"))
    commits: list[int] = []
    asked: list[str] = []

    def enters(record_id: str) -> dict[str, list[SimilarRef]]:
        asked.append(record_id)
        return {older: [SimilarRef(id=record_id, title="Newer", score=0.5)]}

    event.listen(storage.engine, "commit", lambda _conn: commits.append(1))
    new, dup = storage.upsert_record(draft("https://a.test/e2", ["newer"], digest="e2"), enters=enters)
    assert dup is None and asked == [new] and len(commits) == 1  # one transaction for both
    assert [(str(r.id), r.score) for r in storage.get_record(older).similar] == [(new, 0.5)]
    copy, dup = storage.upsert_record(draft("https://b.test/e2", ["newer"], digest="e2"), enters=enters)
    assert dup == new and asked == [new]  # a duplicate enters no list
    assert [str(r.id) for r in storage.get_record(older).similar] == [new]
