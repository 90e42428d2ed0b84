"""Runs the web app under uvicorn, refusing to listen beyond loopback without a token."""

from __future__ import annotations

import logging

from worker.settings import Settings, get_settings
from worker.web.auth import check_bind

log = logging.getLogger("gleaner.web")

def serve(settings: Settings | None = None, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from worker.web.app import create_app

    settings = settings or get_settings()
    host = host or settings.web_host
    port = settings.web_port if port is None else port
    check_bind(host, settings.web_token)  # before anything listens
    if settings.web_host != host:
        settings = settings.model_copy(update={"web_host": host})
    app = create_app(settings=settings)
    log.info("web UI on http://%s:%d/%s", host if ":" not in host else f"[{host}]", port,
             " (token required)" if settings.web_token else "")
    # One process: the pages read SQL and Redis in a thread pool, which is plenty for a dashboard.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False,
                server_header=False)
