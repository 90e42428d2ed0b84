"""``gleaner web``: serve the dashboard, API and metrics (registered by worker.cli when importable)."""

from __future__ import annotations

import click


@click.command("web")
@click.option("--host", default=None, help="Address to listen on (default GLEANER_WEB_HOST, 127.0.0.1). "
              "Beyond loopback, GLEANER_WEB_TOKEN must be set.")
@click.option("--port", type=int, default=None, help="Port (default GLEANER_WEB_PORT, 8000).")
def web_command(host: str | None, port: int | None) -> None:
    """Serve the web UI: live overview, records and reader, failures with retry, sources, a form
    to queue URLs, the JSON API (/api, /openapi.json) and Prometheus metrics (/metrics)."""
    try:
        from worker.web.auth import UnsafeBindError
        from worker.web.serve import serve
    except ImportError as exc:
        raise click.ClickException(f"the web UI needs its dependencies installed ({exc.name} is missing)") from exc
    from worker.preflight import start_or_exit

    start_or_exit("web")
    try:
        serve(host=host, port=port)
    except UnsafeBindError as exc:
        raise click.ClickException(str(exc)) from exc
