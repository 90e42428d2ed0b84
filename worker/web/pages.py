"""Server-rendered pages: overview, records browser, reader, failures, sources, queue form, login.

Templates are Jinja2 with autoescape on, so a record's title or body holding markup shows as
text. Links built from stored URLs go through :func:`safe_href`: only http(s) becomes a link.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tasks.stats import reading_minutes
from worker.stories import outlet
from worker.web import auth, prometheus, queries
from worker.revisions import versions
from worker.web.api import MAX_URLS, lookup_record, retry_job
from worker.web.stats import snapshot

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


# --- template filters -----------------------------------------------------------------------


def when(value: datetime | None) -> str:
    """Time as the example record shows it: 2025/03/22 07:00 (UTC)."""
    if value is None:
        return "never"
    return value.astimezone(timezone.utc).strftime("%Y/%m/%d %H:%M")


def day(value: datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else "unknown"


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(timezone.utc) - value).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def safe_href(url: str | None) -> str | None:
    """The URL if it is http(s), else None: a stored ``javascript:`` URL must never become a link."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


# --- helpers ----------------------------------------------------------------------------------


def _services(request: Request):
    return request.app.state.services


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    services = _services(request)
    context.setdefault("nav", name.split(".")[0])
    context.update(request=request, flower_url=safe_href(services.flower_url),
                   auth_on=bool(request.app.state.token), safe_href=safe_href, outlet=outlet)
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status_code)


def _parse_urls(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- pages ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    s = _services(request)
    stats = snapshot(s.storage, s.redis, s.workers, flower_url=s.flower_url)
    return render(request, "overview.html", stats=stats)


@router.get("/records", response_class=HTMLResponse)
def records_page(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    source: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    duplicates: bool = False,
    stories: bool = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    s = _services(request)
    errors = []
    dates: dict[str, date | None] = {}
    for name, raw in (("since", since), ("until", until)):
        try:
            dates[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            dates[name] = None
            errors.append(f"{name}: {raw!r} is not a date (YYYY-MM-DD)")
    flt = queries.RecordFilter(query=q or None, source=source or None, since=dates["since"], until=dates["until"],
                               duplicates=duplicates and not stories, one_per_story=stories)
    items, total = queries.search_records(s.storage, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    story_sizes = s.storage.story_sizes([str(r.story_id) for r in items if r.story_id]) if stories else {}
    pages = max(1, math.ceil(total / PAGE_SIZE))
    base = {k: v for k, v in (("q", q), ("source", source), ("since", since), ("until", until)) if v}
    if duplicates:
        base["duplicates"] = "true"
    if stories:
        base["stories"] = "true"

    def page_url(n: int) -> str:
        return "/records?" + urlencode({**base, "page": n})

    return render(request, "records.html", items=items, total=total, page=page, pages=pages, page_url=page_url,
                  q=q, source=source, since=since, until=until, duplicates=duplicates, stories=stories,
                  story_sizes=story_sizes,
                  sources=queries.sources(s.storage), errors=errors)


@router.get("/records/{record_id}", response_class=HTMLResponse)
def reader(request: Request, record_id: str) -> HTMLResponse:
    """The reader view. Opening it counts as a read, as ``gleaner read`` does."""
    s = _services(request)
    found = lookup_record(s, record_id) if len(record_id) <= 36 else None
    if found is None:
        return render(request, "error.html", status_code=404, nav="records", title="Not found",
                      message=f"No record with id {record_id}.")
    record = s.storage.mark_read(str(found.id))
    canonical = s.storage.get_record(str(record.duplicate_of)) if record.duplicate_of else None
    return render(request, "reader.html", nav="records", record=record, canonical=canonical,
                  also_at=s.storage.alternate_urls(str(record.id)), other_outlets=s.storage.other_outlets(record),
                  versions=list(reversed(versions(s.storage.revisions(str(record.id))))),
                  reading_minutes=reading_minutes(record.word_count))


@router.get("/failures", response_class=HTMLResponse)
def failures_page(request: Request, done: str = "") -> HTMLResponse:
    jobs = _services(request).storage.failed_jobs(500)
    return render(request, "failures.html", jobs=jobs, done=done)


@router.post("/failures/{job_id}/retry")
def retry_one(request: Request, job_id: str) -> Response:
    retry_job(_services(request), job_id)
    return RedirectResponse("/failures?" + urlencode({"done": f"requeued {job_id}"}), status_code=303)


@router.post("/failures/retry-all")
def retry_all(request: Request) -> Response:
    s = _services(request)
    count = 0
    for job in s.storage.failed_jobs(limit=100_000):
        retry_job(s, job["id"])
        count += 1
    return RedirectResponse("/failures?" + urlencode({"done": f"requeued {count} URL(s)"}), status_code=303)


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request) -> HTMLResponse:
    return render(request, "sources.html", sources=[dict(s) for s in _services(request).sources()])


@router.get("/queue", response_class=HTMLResponse)
def queue_form(request: Request) -> HTMLResponse:
    return render(request, "queue.html", urls="", category="manual", error=None, max_urls=MAX_URLS)


@router.post("/queue", response_class=HTMLResponse)
def queue_submit(request: Request, urls: Annotated[str, Form()] = "",
                 category: Annotated[str, Form()] = "manual") -> Response:
    found = _parse_urls(urls)
    category = category.strip() or "manual"
    error = None
    if not found:
        error = "Enter at least one URL, one a line."
    elif len(found) > MAX_URLS:
        error = f"At most {MAX_URLS} URLs at once; use `gleaner enqueue --file` for more."
    elif len(category) > 200 or any(len(u) > 2048 for u in found):
        error = "A URL is longer than 2048 characters or the category longer than 200."
    if error:
        return render(request, "queue.html", status_code=422, urls=urls, category=category, error=error,
                      max_urls=MAX_URLS)
    s = _services(request)
    job_ids = s.submit(s.storage, found, category)
    return RedirectResponse("/jobs?" + urlencode([("ids", j) for j in job_ids]), status_code=303)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, ids: Annotated[list[str], Query(max_length=MAX_URLS)] = []) -> HTMLResponse:  # noqa: B006
    found = _services(request).storage.get_jobs(ids)
    jobs = [found[j] for j in dict.fromkeys(ids) if j in found]
    return render(request, "jobs.html", nav="queue", jobs=jobs)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002 - the query's name
    return render(request, "login.html", nav="login", next=auth.safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    expected = request.app.state.token
    target = auth.safe_next(next)
    if not expected:
        return RedirectResponse(target, status_code=303)
    if not auth.token_matches(token, expected):
        return render(request, "login.html", status_code=401, nav="login", next=target, error="Wrong token.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, auth.session_value(expected), max_age=auth.SESSION_MAX_AGE,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get("/healthz")
def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok\n")


@router.get("/metrics")
def metrics_endpoint(request: Request) -> Response:
    return Response(prometheus.render(_services(request)), media_type=prometheus.CONTENT_TYPE_LATEST)


def install_error_pages(app: FastAPI) -> None:
    """HTML error pages for people; the API keeps FastAPI's JSON errors."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return await http_exception_handler(request, exc)
        title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        return render(request, "error.html", status_code=exc.status_code, nav="", title=title, message=str(exc.detail))
