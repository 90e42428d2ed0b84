"""The JSON API under ``/api``: records, queued URLs and their jobs, failures, sources, stats.

Reading a record through ``GET /api/records/{id}`` does not count as a read (it is safe to
repeat); ``POST /api/records/{id}/read`` does, as the reader page does.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from worker.models import Record
from worker.revisions import Version, versions
from worker.web import queries
from worker.web.stats import snapshot

router = APIRouter(prefix="/api", tags=["api"])

MAX_URLS = 1000  # per request; bigger batches go through `gleaner enqueue --file`
RECORD_ID = Path(pattern=r"^[0-9a-fA-F-]{4,36}$", description="A record id, or an unambiguous prefix of one (4+ chars).")
JOB_ID = Path(pattern=r"^[0-9a-fA-F-]{36}$", description="A job id.")

class ErrorOut(BaseModel):
    detail: str


NOT_FOUND = {404: {"description": "Not found.", "model": ErrorOut}}

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _calendar_date(value: Any) -> Any:
    # Pydantic would read "0" or "-1e-228" as a Unix time (1970-01-01); the document promises
    # an ISO date, so that is all a query accepts.
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_calendar_date)]


class RecordPage(BaseModel):
    items: list[Record]
    total: int = Field(description="Records matching the filters, across all pages.")
    limit: int
    offset: int


class OutletOut(BaseModel):
    id: str
    title: str
    url: str


class RecordDetail(Record):
    also_at: list[str] = Field(default_factory=list, description="URLs of records that duplicate this one.")
    other_outlets: list[OutletOut] = Field(
        default_factory=list, description="Records of the same story (story_id) from other outlets, one per outlet.")


class UrlsIn(BaseModel):
    urls: list[Url] = Field(min_length=1, max_length=MAX_URLS, description="Article URLs to ingest.")
    category: Category = Field("manual", description="Source key stored as the records' category_id.")


class JobOut(BaseModel):
    id: str
    url: str
    category_id: str
    state: str = Field(description="queued, done, duplicate or failed")
    stage: str | None = Field(None, description="The stage a failed job failed in.")
    record_id: str | None = None
    duplicate_of: str | None = None
    reason: str | None = Field(None, description="Why it failed, for a person to act on.")
    http_status: int | None = None
    attempts: int = 0
    created_at: datetime
    updated_at: datetime


class QueuedOut(BaseModel):
    jobs: list[JobOut]


class SourceOut(BaseModel):
    name: str
    url: str | None = None
    category: str | None = None
    last_run: datetime | None = None
    next_run: datetime | None = None
    last_error: str | None = None


class WorkerOut(BaseModel):
    name: str
    queues: list[str]


class MinuteOut(BaseModel):
    minute: int = Field(description="Start of the minute, Unix seconds.")
    stored: int = Field(description="Articles the store stage finished.")
    failed: int = Field(description="Runs of any stage that dead-lettered their job.")


class StatsOut(BaseModel):
    queues: dict[str, int] = Field(description="Messages waiting per stage queue.")
    in_flight: int = Field(description="Messages delivered to workers, not yet acknowledged.")
    retry_waiting: int = Field(description="Jobs waiting out a backoff before their stage runs again.")
    stages: dict[str, dict[str, int]] = Field(description="Runs per stage and outcome (success, failure, retry).")
    jobs: dict[str, int]
    records: int
    throughput: list[MinuteOut] = Field(description="The last hour, one entry a minute, oldest first.")
    workers: list[WorkerOut]
    workers_error: str | None = None
    flower_url: str | None = None


def _services(request: Request):
    return request.app.state.services


def lookup_record(services, record_id: str) -> Record | None:
    record = services.storage.get_record(record_id) if len(record_id) == 36 else None
    return record or services.storage.find_record(record_id.lower())


def _job(row: dict[str, Any]) -> JobOut:
    return JobOut.model_validate(row)


@router.get("/records", response_model=RecordPage, summary="Search records")
def list_records(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, description="Words in the title or summary.")] = None,
    source: Annotated[str | None, Query(max_length=200, description="Only this category_id.")] = None,
    since: Annotated[IsoDate | None, Query(description="Record date on or after (UTC).")] = None,
    until: Annotated[IsoDate | None, Query(description="Record date on or before (UTC).")] = None,
    duplicates: Annotated[bool, Query(description="Include records that duplicate another.")] = False,
    stories: Annotated[bool, Query(description="Only the first record of each story (one per story_id).")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> RecordPage:
    flt = queries.RecordFilter(query=q or None, source=source or None, since=since, until=until,
                               duplicates=duplicates and not stories, one_per_story=stories)
    items, total = queries.search_records(_services(request).storage, flt, limit=limit, offset=offset)
    return RecordPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/records/{record_id}", response_model=RecordDetail, responses=NOT_FOUND, summary="One record")
def get_record(request: Request, record_id: Annotated[str, RECORD_ID]) -> RecordDetail:
    services = _services(request)
    record = lookup_record(services, record_id)
    if record is None:
        raise HTTPException(404, f"no record with id {record_id}")
    return RecordDetail(**record.model_dump(), also_at=services.storage.alternate_urls(str(record.id)),
                        other_outlets=[OutletOut(id=i, title=t, url=u) for i, t, u in services.storage.other_outlets(record)])


@router.get("/records/{record_id}/revisions", response_model=list[Version], responses=NOT_FOUND,
            summary="A record's versions, oldest first, each with a word-level diff from the one before")
def get_revisions(request: Request, record_id: Annotated[str, RECORD_ID]) -> list[Version]:
    """A version is kept each time a refetch (or re-extraction) changed the record's title or text;
    the last one is the record as it is now."""
    services = _services(request)
    record = lookup_record(services, record_id)
    if record is None:
        raise HTTPException(404, f"no record with id {record_id}")
    return versions(services.storage.revisions(str(record.id)))


@router.post("/records/{record_id}/read", response_model=Record, responses=NOT_FOUND,
             summary="Count a read of a record and return it")
def read_record(request: Request, record_id: Annotated[str, RECORD_ID]) -> Record:
    services = _services(request)
    record = lookup_record(services, record_id)
    if record is None:
        raise HTTPException(404, f"no record with id {record_id}")
    return services.storage.mark_read(str(record.id))


@router.post("/urls", status_code=202, response_model=QueuedOut, summary="Queue URLs for ingestion",
             responses={400: {"description": "The body is not JSON.", "model": ErrorOut}})
def queue_urls(request: Request, body: Annotated[UrlsIn, Body()]) -> QueuedOut:
    """One job per URL. A malformed URL is accepted as a job that failed at once, with its reason."""
    services = _services(request)
    job_ids = services.submit(services.storage, body.urls, body.category)
    jobs = services.storage.get_jobs(job_ids)
    return QueuedOut(jobs=[_job(jobs[j]) for j in job_ids])


@router.get("/jobs", response_model=list[JobOut], summary="Several jobs' states")
def get_jobs(request: Request,
             ids: Annotated[list[Annotated[str, StringConstraints(max_length=36)]],
                            Query(max_length=100, description="Job ids, as returned by POST /api/urls.")]) -> list[JobOut]:
    found = _services(request).storage.get_jobs(ids)
    return [_job(found[j]) for j in dict.fromkeys(ids) if j in found]


@router.get("/jobs/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="One job's state")
def get_job(request: Request, job_id: Annotated[str, JOB_ID]) -> JobOut:
    job = _services(request).storage.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return _job(job)


@router.get("/failures", response_model=list[JobOut], summary="Dead-lettered URLs, newest first")
def failures(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JobOut]:
    return [_job(j) for j in _services(request).storage.failed_jobs(limit)]


@router.post("/failures/{job_id}/retry", response_model=JobOut,
             responses={**NOT_FOUND, 409: {"description": "The job is not failed.", "model": ErrorOut}},
             summary="Send a failed URL through the pipeline again")
def retry_failure(request: Request, job_id: Annotated[str, JOB_ID]) -> JobOut:
    return _job(retry_job(_services(request), job_id))


def retry_job(services, job_id: str) -> dict[str, Any]:
    job = services.storage.get_job(job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id}")
    if job["state"] != "failed":
        raise HTTPException(409, f"job {job_id} is {job['state']}, not failed")
    services.retry(services.storage, job_id)
    return services.storage.get_job(job_id)


@router.get("/sources", response_model=list[SourceOut], summary="Scheduled sources and their last runs")
def list_sources(request: Request) -> list[SourceOut]:
    return [SourceOut.model_validate(dict(s)) for s in _services(request).sources()]


@router.get("/stats", response_model=StatsOut, summary="Queue depths, stage counters, throughput, workers")
def stats(request: Request) -> StatsOut:
    s = _services(request)
    return StatsOut(**snapshot(s.storage, s.redis, s.workers, flower_url=s.flower_url))
