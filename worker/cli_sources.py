"""``gleaner sources``: list, add, pause, resume, remove and poll the scheduled sources while beat runs.

Every command works on the registry in Redis (``worker.registry``), which beat's tick reads, so a
change takes effect at the next tick without restarting anything. Sources defined in the sources
file (GLEANER_SOURCES) are changed by editing it; each command first applies the file if it changed.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from pydantic import ValidationError

from worker.settings import get_settings
from worker.sources import Source, SourcesFileError, format_interval, load_sources


def _registry(sync: bool = True):
    import redis

    from worker.redis_server import resolve_redis_url
    from worker.registry import Registry

    settings = get_settings()
    registry = Registry(redis.Redis.from_url(resolve_redis_url(settings)))
    if sync and settings.sources is not None:
        registry.sync_file(settings.sources)
    return registry


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = (when - now).total_seconds()
    span = format_interval(max(1, round(abs(seconds))))
    return f"in {span}" if seconds > 0 else f"{span} ago"


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group("sources")
def sources_group() -> None:
    """Scheduled sources: feeds, sitemaps, listing pages and WARC folders polled by beat on their intervals.

    Sources come from the sources file (GLEANER_SOURCES, re-read whenever it changes) and from
    `gleaner sources add`. Changes take effect at beat's next tick; nothing needs a restart.
    """


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source, one a line.")
def list_command(as_json: bool) -> None:
    """Each source: state, interval, origin, last and next run, URLs found and queued, last error."""
    registry = _registry()
    statuses = registry.statuses()
    file = registry.file_status()
    if as_json:
        for status in statuses:
            click.echo(json.dumps(status.as_dict()))
        return
    settings = get_settings()
    if settings.sources is not None:
        if file.error:
            click.echo(f"sources file REFUSED: {file.error}\n  (the sources below are from the last good "
                       "version and keep running)", err=True)
        else:
            click.echo(f"sources file: {settings.sources} ({file.count or 0} sources)", err=True)
    if not statuses:
        click.echo("no sources (add some to the sources file or with `gleaner sources add`)", err=True)
        return
    now = datetime.now(timezone.utc)
    rows = [("KEY", "STATE", "EVERY", "ORIGIN", "LAST RUN", "NEXT RUN", "FOUND", "NEW", "QUEUED", "LAST ERROR")]
    for st in statuses:
        origin = f"file:{st.entry.line}" if st.entry.origin == "file" and st.entry.line else st.entry.origin
        state = "paused" if st.paused else "running" if st.running else "active"
        rows.append((st.key, state, format_interval(st.entry.source.every), origin, _ago(st.last_run, now),
                     "-" if st.paused else _ago(st.next_run, now),
                     "-" if st.found is None else str(st.found), "-" if st.new is None else str(st.new),
                     str(st.queued_total), st.last_error or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


@sources_group.command("show")
@click.argument("key")
def show_command(key: str) -> None:
    """A source's definition (as JSON) and its latest runs."""
    registry = _registry()
    entry = registry.get(key)
    if entry is None:
        _fail(f"no source {key!r}")
    click.echo(json.dumps({"origin": entry.origin, "line": entry.line, **entry.source.model_dump(mode="json")},
                          indent=2))
    for run in registry.runs(key):
        when = datetime.fromtimestamp(run["started"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        errors = f"  errors: {'; '.join(run['errors'])}" if run["errors"] else ""
        if entry.source.warc is not None:
            skipped = run.get("skipped") or {}
            reasons = "".join(f"; {count}: {reason}" for reason, count in sorted(skipped.items(), key=lambda i: -i[1]))
            click.echo(f"{when}Z  records read {run['found']}, pages fed {run['new']}, "
                       f"skipped {sum(skipped.values())}{reasons}{errors}")
        else:
            click.echo(f"{when}Z  found {run['found']}, new {run['new']}, unchanged {run['not_modified']}{errors}")


@sources_group.command("add")
@click.argument("key")
@click.option("--feed", "feeds", multiple=True, metavar="URL", help="An RSS or Atom feed (repeatable).")
@click.option("--sitemap", "sitemaps", multiple=True, metavar="URL", help="A sitemap, index or news sitemap.")
@click.option("--listing", "listings", multiple=True, nargs=2, metavar="URL SELECTOR",
              help="A listing page and the CSS selector of its article links.")
@click.option("--warc", metavar="FOLDER", default=None,
              help="A folder that fills with WARC files: each run ingests the records added since the last.")
@click.option("--every", default="15m", show_default=True, help="Polling interval: 30s, 15m, 2h, 1h30m.")
@click.option("--rate", type=float, default=None, help="Fetches per second per host for this source.")
@click.option("--concurrency", type=int, default=None, help="Fetches in flight per host for this source.")
def add_command(key: str, feeds: tuple[str, ...], sitemaps: tuple[str, ...], listings: tuple[tuple[str, str], ...],
                warc: str | None, every: str, rate: float | None, concurrency: int | None) -> None:
    """Add a source (or replace one added here before); it is polled at the next tick."""
    politeness = None
    if rate is not None or concurrency is not None:
        politeness = {"rate": rate, "concurrency": concurrency}
    try:
        source = Source.model_validate({
            "key": key, "feeds": list(feeds), "sitemaps": list(sitemaps), "every": every,
            "listings": [{"url": url, "links": links} for url, links in listings], "politeness": politeness,
            "warc": warc,
        })
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ").splitlines()[0]
        _fail(f"{where}: {message}" if where else message)
    try:
        _registry().add(source)
    except ValueError as exc:
        _fail(str(exc))
    click.echo(f"added {key}: {len(source.start_points())} start point(s), every {format_interval(source.every)}")


def _by_key(action: str, key: str) -> None:
    from worker.registry import UnknownSource

    registry = _registry()
    try:
        getattr(registry, action)(key)
    except UnknownSource as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc))


@sources_group.command("pause")
@click.argument("key")
def pause_command(key: str) -> None:
    """Stop polling a source until resumed (a run in progress finishes)."""
    _by_key("pause", key)
    click.echo(f"paused {key}")


@sources_group.command("resume")
@click.argument("key")
def resume_command(key: str) -> None:
    """Poll a paused source again, starting at the next tick."""
    _by_key("resume", key)
    click.echo(f"resumed {key}")


@sources_group.command("remove")
@click.argument("key")
def remove_command(key: str) -> None:
    """Forget a source added with `gleaner sources add` (file sources: delete them from the file)."""
    _by_key("remove", key)
    click.echo(f"removed {key}")


@sources_group.command("run")
@click.argument("key")
def run_command(key: str) -> None:
    """Poll a source at the next tick instead of waiting for its interval."""
    _by_key("run_now", key)
    click.echo(f"{key} is due now")


@sources_group.command("sync")
def sync_command() -> None:
    """Apply the sources file now (beat's tick does this whenever the file changes)."""
    settings = get_settings()
    if settings.sources is None:
        _fail("GLEANER_SOURCES is not set: there is no sources file to sync")
    status = _registry(sync=False).sync_file(settings.sources, force=True)
    if status.error:
        click.echo(f"refused: {status.error}", err=True)
        sys.exit(1)
    click.echo(f"applied {settings.sources}: {status.count} sources")


@sources_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check_command(file: Path) -> None:
    """Check a sources file without applying it; errors name the file and line."""
    try:
        found = load_sources(file)
    except SourcesFileError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for source in found:
        click.echo(f"{source.key}: {len(source.start_points())} start point(s), every {format_interval(source.every)}")
