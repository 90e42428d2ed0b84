"""Builds the web app: pages for people, ``/api`` for programs, ``/metrics`` for Prometheus.

Everything the app touches comes in through :class:`Services`, so tests hand it their own
database, Redis and worker list, and ``python -m worker.web`` hands it the configured ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import redis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from worker.submit import retry as retry_failed, submit as submit_urls
from worker.registry import Registry
from worker.settings import Settings, get_settings
from worker.storage import Storage
from worker.web import auth
from worker.web.stats import CachedWorkers, WorkersFn, celery_workers

HERE = Path(__file__).resolve().parent
DEFAULT_FLOWER_URL = "http://127.0.0.1:5555"

SubmitFn = Callable[[Storage, Sequence[str], str], list[str]]
RetryFn = Callable[[Storage, str], object]  # sends a failed job through the pipeline again
# One mapping per source with: name, url, category, last_run, next_run, last_error.
SourcesFn = Callable[[], Iterable[Mapping[str, Any]]]


def _default_submit(storage: Storage, urls: Sequence[str], category: str) -> list[str]:
    return submit_urls(storage, urls, category)


def web_sources(client: redis.Redis) -> Iterator[dict[str, Any]]:
    """One mapping per registered source, as the sources table wants it."""
    for status in Registry(client).statuses():
        points = status.entry.source.start_points()
        yield {"name": status.key, "url": points[0][1] if points else None, "category": status.key,
               "last_run": status.last_run, "next_run": status.next_run, "last_error": status.last_error}


@dataclass
class Services:
    settings: Settings
    storage: Storage
    redis: redis.Redis  # the broker's Redis, where the metrics live too
    workers: CachedWorkers
    submit: SubmitFn = _default_submit
    retry: RetryFn = retry_failed
    sources: SourcesFn = field(default=lambda: [])
    flower_url: str = DEFAULT_FLOWER_URL


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value from a record or a request is escaped, in every template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from worker.web import pages

    env.filters.update(when=pages.when, day=pages.day, ago=pages.ago)
    return Jinja2Templates(env=env)


def create_app(storage: Storage | None = None, *, settings: Settings | None = None,
               redis_client: redis.Redis | None = None, workers: WorkersFn | None = None,
               submit: SubmitFn | None = None, retry: RetryFn | None = None, sources: SourcesFn | None = None,
               allowed_hosts: Iterable[str] | None = None, token: str | None = ...,  # type: ignore[assignment]
               ) -> FastAPI:
    """The ASGI app. Unset arguments come from the settings (``GLEANER_*``).

    ``token`` defaults to ``settings.web_token``; pass None to serve without one. ``allowed_hosts``
    defaults to loopback names when there is no token (see ``worker.web.auth``).
    """
    settings = settings or get_settings()
    if storage is None:
        storage = Storage(settings.effective_database_url)
    if redis_client is None:
        from worker.redis_server import resolve_redis_url

        redis_client = redis.Redis.from_url(resolve_redis_url(settings), socket_timeout=10)
    if token is ...:
        token = settings.web_token
    services = Services(
        settings=settings,
        storage=storage,
        redis=redis_client,
        workers=CachedWorkers(workers or celery_workers),
        submit=submit or _default_submit,
        retry=retry or retry_failed,
        sources=sources or (lambda: list(web_sources(redis_client))),
        flower_url=getattr(settings, "flower_url", None) or DEFAULT_FLOWER_URL,
    )

    from worker.web import api, pages

    app = FastAPI(
        title="Gleaner",
        version="0.1.0",
        description="Records, queued URLs, failures, sources and pipeline statistics of a Gleaner deployment. "
                    "When a token is configured, send it as `Authorization: Bearer <token>`.",
        # No Swagger UI: it loads its scripts from a CDN. The document itself is at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.state.templates = make_templates()
    app.state.token = token
    hosts = (frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None
             else auth.allowed_hosts_for(settings.web_host, token))
    app.add_middleware(auth.AccessMiddleware, token=token, allowed_hosts=hosts)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    pages.install_error_pages(app)
    return app
