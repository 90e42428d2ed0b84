"""The typed records that travel between stages and end up stored."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from pydantic import BaseModel, Field, field_validator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    # Naive datetimes are taken as UTC so every timestamp we emit carries a zone.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class Redirect(BaseModel):
    url: str
    status: int


class ArchivedAt(BaseModel):
    """Where a fetched page lies in a WARC file: the offset of its ``response`` record."""

    file: str  # a file name in the archive directory, or an absolute path (a WARC file ingested from elsewhere)
    offset: int  # bytes from the start of the file (a gzip member starts there)
    at: datetime  # when it was fetched (the record's WARC-Date)


class KeptRecord(BaseModel):
    """The stored record an archived page is extracted into again (``gleaner reprocess``): its id
    and canonical URL stay what they are, whatever the new extraction finds."""

    id: uuid.UUID
    canonical_url: str


class Page(BaseModel):
    """What fetch hands to parse (the body itself is stored next to it, compressed)."""

    url: str
    final_url: str
    status: int
    content_type: str
    charset: str | None = None
    redirects: list[Redirect] = Field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime = Field(default_factory=utcnow)
    archived: ArchivedAt | None = None  # where the page was archived (None: archiving off)
    keep: KeptRecord | None = None  # re-extraction: the record it refreshes


class Article(BaseModel):
    """What the extractor finds in one page."""

    url: str | None = None
    canonical_url: str | None = None
    title: str = ""
    body: list[str] = Field(default_factory=list)
    published_at: datetime | None = None
    modified_at: datetime | None = None
    authors: list[str] = Field(default_factory=list)
    language: str | None = None
    site_name: str | None = None
    image: str | None = None
    tags: list[str] = Field(default_factory=list)


class Draft(BaseModel):
    """An article on its way from parse to store, with what dedupe and summarize add."""

    job_id: str
    category_id: str
    url: str
    article: Article
    canonical_url: str = ""
    record_id: uuid.UUID | None = None  # derived from canonical_url by dedupe
    content_hash: str = ""
    duplicate_of: uuid.UUID | None = None
    summary: str = ""
    word_count: int = 0
    archived: ArchivedAt | None = None  # the page it was extracted from, in the archive


class ArchivedRecord(BaseModel):
    """A stored record whose page is in the archive: what re-extraction needs to send it again."""

    id: uuid.UUID
    canonical_url: str
    category_id: str
    url: str
    archived: ArchivedAt


class Revision(BaseModel):
    """One version of a record's title and text, and when it was first stored."""

    title: str
    body: list[str]
    seen_at: datetime

    _aware_seen = field_validator("seen_at")(classmethod(lambda cls, v: _aware(v)))


class SimilarRef(BaseModel):
    id: uuid.UUID
    title: str
    score: float | None = None  # cosine similarity to the record listing it (worker.similar)


class Record(BaseModel):
    """The stored article, with exactly the field names downstream tools read."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    category_id: str
    url: str
    title: str
    body: list[str]
    published_at: datetime | None = None
    modified_at: datetime | None = None  # the update the page declares, kept apart from the publication
    authors: list[str] = Field(default_factory=list)
    language: str | None = None  # ISO 639-1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_read_at: datetime | None = None
    summary: str = ""
    word_count: int = 0
    read_count: int = 0
    similar: list[SimilarRef] = Field(default_factory=list)
    duplicate_of: uuid.UUID | None = None
    story_id: uuid.UUID | None = None  # the first record of its story (worker.stories); None for a duplicate

    _aware_fields = field_validator("published_at", "modified_at", "created_at", "updated_at", "last_read_at")(
        classmethod(lambda cls, v: _aware(v))
    )
