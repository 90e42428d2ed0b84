"""Records and jobs in SQL (SQLite by default, PostgreSQL for scale-out), through SQLAlchemy Core.

Two tables: ``records`` (one row per article URL; a duplicate is a row whose ``duplicate_of`` names
its canonical record) and ``jobs`` (one row per URL that entered, ending ``done``, ``duplicate`` or
``failed`` — the dead-letter store is the failed jobs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from worker.models import ArchivedAt, ArchivedRecord, Draft, Record, Revision, SimilarRef, utcnow
from worker.similar import CandidateRow, RecordWords, readings
from worker.sqltypes import UTCDateTime
from worker.stories import other_outlets

TERMINAL_STATES = ("done", "duplicate", "failed")

metadata = MetaData()

records = Table(
    "records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("category_id", String(200), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("canonical_url", String(2048), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("body", JSON, nullable=False),
    Column("published_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_read_at", UTCDateTime),
    Column("summary", Text, nullable=False, default=""),
    Column("word_count", Integer, nullable=False, default=0),
    Column("read_count", Integer, nullable=False, default=0),
    Column("similar", JSON, nullable=False, default=list),
    Column("duplicate_of", String(36)),
    Column("content_hash", String(64), nullable=False),
    Column("authors", JSON, nullable=False, default=list),
    Column("language", String(35)),
    Column("modified_at", UTCDateTime),
    # The useful words of title and lead, as the similar-readings index is given them (CJK text in
    # two-character pieces; worker.similar.search_columns); NULL for a row written without them.
    Column("search_title", Text),
    Column("search_body", Text),
    Column("story_id", String(36), index=True),  # the first record of its story (worker.stories)
    # The page it was last extracted from, in the archive (tasks/archive/): NULL when not kept.
    Column("archive_file", Text),
    Column("archive_offset", BigInteger),
    Column("archived_at", UTCDateTime),
)
# At most one canonical (non-duplicate) record per text: the database, not a race between
# workers, has the last word on exact duplicates.
Index(
    "uq_records_canonical_hash",
    records.c.content_hash,
    unique=True,
    sqlite_where=records.c.duplicate_of.is_(None),
    postgresql_where=records.c.duplicate_of.is_(None),
)
# A record's duplicates (its alternate URLs), found by duplicate_of = id. Partial, holding only the
# duplicates: SQLite has no statistics and would otherwise take an index on duplicate_of for
# "duplicate_of IS NULL" as if it were selective, and walk every canonical record in it (seen in
# the records browser and, when it read its candidates by id and canonical, in the store stage).
Index("ix_records_duplicate_of", records.c.duplicate_of, sqlite_where=records.c.duplicate_of.is_not(None),
      postgresql_where=records.c.duplicate_of.is_not(None))
# The records browser and the API page through records newest first: read in this index's order
# (backwards), a page costs its own rows, not a sort of the whole table.
Index("ix_records_created_at_id", records.c.created_at, records.c.id)

# A record's earlier versions: kept when a refetch (or a re-extraction) changed its title or text.
# The newest version is the record itself; each row here is one it replaced, as first seen.
record_revisions = Table(
    "record_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(36), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("body", JSON, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),  # when this version was stored
    Column("archive_file", Text),  # the page it was extracted from, if kept
    Column("archive_offset", BigInteger),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("category_id", String(200), nullable=False),
    Column("state", String(16), nullable=False, index=True),  # queued, done, duplicate, failed
    Column("stage", String(16)),  # the stage it failed in, for dead letters
    Column("record_id", String(36)),
    Column("duplicate_of", String(36)),
    Column("reason", Text),
    Column("http_status", Integer),
    Column("attempts", Integer, nullable=False, default=0),
    Column("priority", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the CLI, the web UI) run while a worker writes; busy_timeout makes
    # concurrent writers from several worker processes wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 1 MiB of page cache per connection (SQLite's default is 2): a worker holds several
    # connections, the OS caches the file anyway, and their caches filling up as the database
    # grew showed as worker memory creeping up in the load run. Throughput did not change.
    cursor.execute("PRAGMA cache_size=-1024")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def record_from_row(row: Any) -> Record:
    return Record(
        id=row.id,
        category_id=row.category_id,
        url=row.url,
        title=row.title,
        body=row.body,
        published_at=row.published_at,
        modified_at=row.modified_at,
        authors=row.authors or [],
        language=row.language,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_read_at=row.last_read_at,
        summary=row.summary,
        word_count=row.word_count,
        read_count=row.read_count,
        similar=[SimilarRef(**s) for s in (row.similar or [])],
        duplicate_of=row.duplicate_of,
        story_id=row.story_id,
    )


# The statements every article runs, built once with bound parameters. SQLAlchemy remembers a
# statement object's cache key; a statement built anew per call is traversed again each time,
# which was half the CPU of these small queries (get_job: 115 -> 55 us).
_JOB_BY_ID = select(jobs).where(jobs.c.id == bindparam("job_id"))
_FINISH_JOB = update(jobs).where(jobs.c.id == bindparam("job_id")).values(
    state=bindparam("state"), record_id=bindparam("record_id"), duplicate_of=bindparam("duplicate_of"),
    reason=None, updated_at=bindparam("now"))
_RECORD_BY_CANONICAL_URL = select(records).where(records.c.canonical_url == bindparam("canonical_url"))
_CANONICAL_BY_HASH = select(records.c.id).where(
    records.c.content_hash == bindparam("content_hash"), records.c.duplicate_of.is_(None),
    records.c.canonical_url != bindparam("canonical_url"))
_INSERT_RECORD = insert(records)  # the columns set are the parameters' keys
_UPDATE_RECORD = update(records).where(records.c.id == bindparam("record_id"))


@dataclass(frozen=True)
class Neighbour:
    """What the store stage needs of a record a new one is related to: its readings, story and
    publication date."""

    similar: list[SimilarRef]
    story_id: str | None
    published_at: datetime | None

    @classmethod
    def of(cls, row: CandidateRow) -> Neighbour:
        """A candidate's, from its row in the similar-readings search (read in the same statement)."""
        return cls(similar=[SimilarRef(**s) for s in readings(row.similar)], story_id=row.story_id,
                   published_at=row.published_at)


_INSERT_REVISION = insert(record_revisions)


def _draft_values(draft: Draft) -> dict[str, Any]:
    a = draft.article
    return {"title": a.title, "published_at": a.published_at, "modified_at": a.modified_at,
            "summary": draft.summary, "word_count": draft.word_count, "authors": a.authors, "language": a.language}


def _unchanged(existing: Any, draft: Draft) -> bool:
    """Whether extraction decided the same about the record as last time (its text is compared by hash)."""
    return all(getattr(existing, name) == value for name, value in _draft_values(draft).items())


def _archived_values(draft: Draft) -> dict[str, Any]:
    """The columns saying where the draft's page lies in the archive (none when it was not kept)."""
    at = draft.archived
    if at is None:
        return {}
    return {"archive_file": at.file, "archive_offset": at.offset, "archived_at": at.at}


def _finish_job(conn: Connection, job_id: str, record_id: str, duplicate_of: str | None) -> None:
    conn.execute(_FINISH_JOB, {"job_id": job_id, "state": "duplicate" if duplicate_of else "done",
                               "record_id": record_id, "duplicate_of": duplicate_of, "now": utcnow()})


def _readings(record_id: str, similar: Sequence[SimilarRef]) -> list[dict[str, Any]]:
    """The ``similar`` column's value: never the record itself."""
    return [{"id": str(s.id), "title": s.title, **({"score": s.score} if s.score is not None else {})}
            for s in similar if str(s.id) != str(record_id)]


def _set_similar_many(conn: Connection, lists: dict[str, Sequence[SimilarRef]]) -> None:
    """Several records' readings replaced by one prepared statement run for each (executemany), in
    the order of their ids: two stores updating the same records lock their rows in one order, so
    on PostgreSQL they wait for each other rather than deadlock."""
    if lists:
        conn.execute(_UPDATE_RECORD, [{"record_id": str(record_id), "similar": _readings(record_id, lists[record_id])}
                                      for record_id in sorted(lists, key=str)])


class Storage:
    """All SQL Gleaner runs. One per process; thread-safe through the engine's pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        from worker.schema import prepare

        prepare(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- jobs -------------------------------------------------------------------------------

    def create_jobs(self, urls: Sequence[str], category_id: str, priority: int = 0) -> list[str]:
        now = utcnow()
        rows = [
            {"id": str(uuid.uuid4()), "url": u, "category_id": category_id, "state": "queued",
             "attempts": 0, "priority": priority, "created_at": now, "updated_at": now}
            for u in urls
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(jobs), rows)
        return [r["id"] for r in rows]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(_JOB_BY_ID, {"job_id": job_id}).mappings().first()
        return dict(row) if row else None

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(job_ids), 500):
                chunk = list(job_ids[i : i + 500])
                for row in conn.execute(select(jobs).where(jobs.c.id.in_(chunk))).mappings():
                    out[row["id"]] = dict(row)
        return out

    def finish_job(self, job_id: str, *, record_id: str, duplicate_of: str | None) -> None:
        with self.engine.begin() as conn:
            _finish_job(conn, job_id, record_id, duplicate_of)

    def fail_job(self, job_id: str, *, reason: str, stage: str, status: int | None = None,
                 attempts: int = 1) -> bool:
        """Dead-letter a job; False (and nothing changed) if it already ended (a record, a
        duplicate link or an earlier dead letter), which a late spare copy of a message must not
        overturn or reword."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == "queued")
                .values(state="failed", reason=reason, stage=stage, http_status=status,
                        attempts=attempts, updated_at=utcnow())
            )
            return result.rowcount > 0

    def requeue_job(self, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id)
                         .values(state="queued", reason=None, stage=None, updated_at=utcnow()))

    def failed_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs).where(jobs.c.state == "failed").order_by(jobs.c.updated_at.desc()).limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def count_jobs(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
            return {state: n for state, n in rows}

    # --- records ----------------------------------------------------------------------------

    def upsert_record(self, draft: Draft, *, similar: Sequence[SimilarRef] | None = None,
                      story_id: str | None = None, job_id: str | None = None,
                      record_words: RecordWords | None = None,
                      enters: Callable[[str], dict[str, Sequence[SimilarRef]]] | None = None) -> tuple[str, str | None]:
        """Store a draft; return (record id, canonical id if it is a duplicate).

        Upsert on canonical URL: the same page stored twice (a redelivered task) changes nothing;
        a changed page keeps its id and created_at and bumps updated_at. In the same transaction,
        if given: the record's similar readings (when it is canonical), the job's end and, when the
        record is canonical, the readings ``enters`` gives for its id (other records' lists it enters,
        written as ``set_similar_many`` writes them), so the store stage takes the database's write
        lock once per article. A canonical record is in ``story_id``'s story, or its own (its id)
        when that is None; a duplicate is in none. ``record_words``: the article's ``RecordWords``
        (its search columns), if the caller has them.
        """
        for _ in range(5):
            try:
                with self.engine.begin() as conn:
                    record_id, duplicate_of = self._upsert_once(conn, draft, similar, story_id, record_words)
                    if job_id is not None:
                        _finish_job(conn, job_id, record_id, duplicate_of)
                    if enters is not None and duplicate_of is None:
                        _set_similar_many(conn, enters(record_id))
                    return record_id, duplicate_of
            except IntegrityError:
                # Another worker stored the same URL or text a moment ago; look again.
                continue
        raise RuntimeError(f"could not store {draft.canonical_url}: conflicting writers kept winning")

    def _upsert_once(self, conn: Connection, draft: Draft, similar: Sequence[SimilarRef] | None = None,
                     story_id: str | None = None, record_words: RecordWords | None = None) -> tuple[str, str | None]:
        article = draft.article
        now = utcnow()
        archived = _archived_values(draft)
        existing = conn.execute(_RECORD_BY_CANONICAL_URL, {"canonical_url": draft.canonical_url}).first()
        if existing is not None and existing.content_hash == draft.content_hash and _unchanged(existing, draft):
            # The same record: its updated_at stays. Only where its page now lies, and its
            # neighbours (they may be new), are written.
            updates = dict(archived)
            if similar is not None and existing.duplicate_of is None:
                updates["similar"] = _readings(existing.id, similar)
            if updates:
                conn.execute(_UPDATE_RECORD, {"record_id": existing.id, **updates})
            return existing.id, existing.duplicate_of
        if existing is not None and (existing.content_hash != draft.content_hash or existing.title != article.title):
            # The text changed: the version it replaces is kept, as it was when first stored.
            conn.execute(_INSERT_REVISION, {"record_id": existing.id, "title": existing.title, "body": existing.body,
                                            "seen_at": existing.updated_at, "archive_file": existing.archive_file,
                                            "archive_offset": existing.archive_offset})
        canonical = str(draft.duplicate_of) if draft.duplicate_of else None
        if canonical is None:
            canonical = conn.execute(_CANONICAL_BY_HASH, {"content_hash": draft.content_hash,
                                                          "canonical_url": draft.canonical_url}).scalar()
        values = {
            "category_id": draft.category_id,
            "url": draft.url,
            "title": article.title,
            "body": article.body,
            "published_at": article.published_at,
            "modified_at": article.modified_at,
            "summary": draft.summary,
            "word_count": draft.word_count,
            "content_hash": draft.content_hash,
            "duplicate_of": canonical,
            "authors": article.authors,
            "language": article.language,
            "updated_at": now,
            **(record_words or RecordWords.of(article.title, article.body)).columns(),
            **archived,
        }
        record_id = existing.id if existing is not None else str(draft.record_id or uuid.uuid4())
        if existing is not None and existing.id == canonical:
            canonical = values["duplicate_of"] = None
        if similar is not None and canonical is None:
            # A canonical record's readings go into the same statement, not an UPDATE after it.
            values["similar"] = _readings(record_id, similar)
        values["story_id"] = None if canonical is not None else (story_id or record_id)
        if existing is not None:
            conn.execute(_UPDATE_RECORD, {"record_id": record_id, **values})
        else:
            conn.execute(_INSERT_RECORD, {"id": record_id, "canonical_url": draft.canonical_url, "created_at": now,
                                          "read_count": 0, "similar": [], **values})
        return record_id, canonical

    def get_record(self, record_id: str) -> Record | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(records).where(records.c.id == str(record_id))).first()
        return record_from_row(row) if row else None

    def find_record(self, prefix: str) -> Record | None:
        """A record by full id or by an unambiguous id prefix, as `git` takes commits."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(records).where(records.c.id.like(f"{prefix}%")).limit(2)).all()
        return record_from_row(rows[0]) if len(rows) == 1 else None

    def find_record_by_url(self, url: str, canonical_url: str | None = None) -> Record | None:
        """The record last stored from ``url`` or under ``canonical_url`` (a 304 points the job at it)."""
        match = records.c.url == url
        if canonical_url:
            match = or_(match, records.c.canonical_url == canonical_url)
        with self.engine.connect() as conn:
            row = conn.execute(select(records).where(match).order_by(records.c.updated_at.desc()).limit(1)).first()
        return record_from_row(row) if row else None

    def mark_read(self, record_id: str) -> Record | None:
        with self.engine.begin() as conn:
            conn.execute(
                update(records).where(records.c.id == str(record_id))
                .values(read_count=records.c.read_count + 1, last_read_at=utcnow())
            )
        return self.get_record(record_id)

    def set_similar_many(self, lists: dict[str, Sequence[SimilarRef]]) -> None:
        """Replace several records' readings in one transaction."""
        if lists:
            with self.engine.begin() as conn:
                _set_similar_many(conn, lists)

    def other_outlets(self, record: Record) -> list[tuple[str, str, str]]:
        """The other outlets that covered ``record``'s story: (record id, title, url), one record
        per outlet, in the order the story's records arrived."""
        if record.story_id is None or record.duplicate_of is not None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(records.c.id, records.c.title, records.c.url).where(
                records.c.story_id == str(record.story_id), records.c.id != str(record.id),
                records.c.duplicate_of.is_(None)).order_by(records.c.created_at, records.c.id).limit(200))
            return other_outlets(record.url, [(r.id, r.title, r.url) for r in rows])

    def story_sizes(self, story_ids: Sequence[str]) -> dict[str, int]:
        """How many canonical records each of these stories holds."""
        if not story_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(records.c.story_id, func.count()).where(
                records.c.story_id.in_([str(s) for s in story_ids]), records.c.duplicate_of.is_(None))
                .group_by(records.c.story_id))
            return {story: n for story, n in rows}

    def alternate_urls(self, record_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(records.c.url).where(records.c.duplicate_of == str(record_id))).scalars())

    def list_records(self, *, limit: int = 50, offset: int = 0, category: str | None = None,
                     query: str | None = None, include_duplicates: bool = True) -> list[Record]:
        stmt = select(records).order_by(records.c.created_at.desc(), records.c.id.desc()).limit(limit).offset(offset)
        if category:
            stmt = stmt.where(records.c.category_id == category)
        if not include_duplicates:
            stmt = stmt.where(records.c.duplicate_of.is_(None))
        if query:
            like = f"%{query}%"
            stmt = stmt.where(or_(records.c.title.like(like), records.c.summary.like(like)))
        with self.engine.connect() as conn:
            return [record_from_row(r) for r in conn.execute(stmt)]

    def iter_records(self, batch: int = 500) -> Iterator[Record]:
        offset = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(records).order_by(records.c.created_at, records.c.id).limit(batch).offset(offset)
                ).all()
            if not rows:
                return
            yield from (record_from_row(r) for r in rows)
            offset += len(rows)

    def archived_page(self, record_id: str) -> ArchivedAt | None:
        """Where the page a record was last extracted from lies in the archive, if it was kept."""
        with self.engine.connect() as conn:
            row = conn.execute(select(records.c.archive_file, records.c.archive_offset, records.c.archived_at)
                               .where(records.c.id == str(record_id))).first()
        if row is None or row.archive_file is None:
            return None
        return ArchivedAt(file=row.archive_file, offset=row.archive_offset, at=row.archived_at)

    def archived_records(self, *, category: str | None = None, since: datetime | None = None,
                         batch: int = 500) -> Iterator[ArchivedRecord]:
        """The records whose page is archived (of one source, fetched since a time), oldest first."""
        stmt = (select(records.c.id, records.c.canonical_url, records.c.category_id, records.c.url,
                       records.c.archive_file, records.c.archive_offset, records.c.archived_at)
                .where(records.c.archive_file.is_not(None)).order_by(records.c.created_at, records.c.id))
        if category:
            stmt = stmt.where(records.c.category_id == category)
        if since is not None:
            stmt = stmt.where(records.c.archived_at >= since)
        offset = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(stmt.limit(batch).offset(offset)).all()
            if not rows:
                return
            for r in rows:
                yield ArchivedRecord(id=r.id, canonical_url=r.canonical_url, category_id=r.category_id, url=r.url,
                                     archived=ArchivedAt(file=r.archive_file, offset=r.archive_offset,
                                                         at=r.archived_at))
            offset += len(rows)

    def count_archived_records(self, *, category: str | None = None, since: datetime | None = None) -> int:
        stmt = select(func.count()).select_from(records).where(records.c.archive_file.is_not(None))
        if category:
            stmt = stmt.where(records.c.category_id == category)
        if since is not None:
            stmt = stmt.where(records.c.archived_at >= since)
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    def revisions(self, record_id: str) -> list[Revision]:
        """A record's versions, oldest first, the current one last."""
        record = self.get_record(record_id)
        if record is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(record_revisions).where(record_revisions.c.record_id == str(record_id))
                                .order_by(record_revisions.c.seen_at, record_revisions.c.id)).all()
        earlier = [Revision(title=r.title, body=r.body, seen_at=r.seen_at) for r in rows]
        return earlier + [Revision(title=record.title, body=record.body, seen_at=record.updated_at)]

    def count_records(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(records)).scalar_one()
