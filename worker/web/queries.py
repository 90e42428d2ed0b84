"""The read-only SQL behind the records browser: search, source and date filters, counts.

Kept beside the web app because only it pages and filters this way; it reads the tables that
``worker.storage`` defines and never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select

from worker.models import Record
from worker.storage import Storage, record_from_row, records


@dataclass(frozen=True)
class RecordFilter:
    query: str | None = None  # words in the title or summary
    source: str | None = None  # category_id
    since: date | None = None  # record date on or after (UTC)
    until: date | None = None  # record date on or before (UTC)
    duplicates: bool = False  # include records that duplicate another
    one_per_story: bool = False  # only the first record of each story (worker.stories)

    def where(self) -> list:
        # "Date" is publication when the page gave one, else when we ingested it.
        when = func.coalesce(records.c.published_at, records.c.created_at)
        clauses = []
        if self.source:
            clauses.append(records.c.category_id == self.source)
        if not self.duplicates:
            clauses.append(records.c.duplicate_of.is_(None))
        if self.one_per_story:
            # A story is named by its first record; records stored before stories are their own.
            clauses.append(or_(records.c.story_id.is_(None), records.c.story_id == records.c.id))
        if self.query:
            like = "%" + self.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append(or_(records.c.title.like(like, escape="\\"), records.c.summary.like(like, escape="\\")))
        if self.since:
            clauses.append(when >= datetime.combine(self.since, time.min, timezone.utc))
        if self.until:
            clauses.append(when < datetime.combine(self.until + timedelta(days=1), time.min, timezone.utc))
        return clauses


def search_records(storage: Storage, flt: RecordFilter, *, limit: int, offset: int) -> tuple[list[Record], int]:
    """One page of matching records, newest first, and how many match in all."""
    clauses = flt.where()
    stmt = (select(records).where(*clauses)
            .order_by(records.c.created_at.desc(), records.c.id.desc()).limit(limit).offset(offset))
    count = select(func.count()).select_from(records).where(*clauses)
    with storage.engine.connect() as conn:
        rows = [record_from_row(r) for r in conn.execute(stmt)]
        total = conn.execute(count).scalar_one()
    return rows, total


def sources(storage: Storage) -> list[str]:
    """Every category_id that has records, for the browser's filter."""
    with storage.engine.connect() as conn:
        return list(conn.execute(select(records.c.category_id).distinct().order_by(records.c.category_id)).scalars())
