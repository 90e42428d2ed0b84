"""``gleaner ingest`` and ``gleaner reprocess``: pages that are not fetched now (WARC files from
elsewhere, or the archive) through parse → dedupe → summarize → store, with a progress bar and a
tally; and where a record's archived page lies (``gleaner show --raw``)."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import click

from worker.settings import get_settings


def archive_path(file: str) -> Path:
    """A record's archive file: a name in the archive directory, or a path (an ingested file)."""
    path = Path(file)
    return path if path.is_absolute() else get_settings().effective_archive_dir / path


def _feeder():
    from worker.app import app
    from worker.dispatch import Dispatcher
    from worker.feed import Feeder
    from worker.pipeline import get_pipeline
    from worker.runtime import get_runtime

    rt = get_runtime()
    return Feeder(rt.storage, rt, Dispatcher(app), get_pipeline())


def _finish(feeder, timeout: float, damaged: int) -> None:
    """Wait for the jobs, print the tally; exit 1 if any failed, did not finish, or a file was damaged."""
    from worker import submit

    feeder.flush()
    with click.progressbar(length=len(feeder.job_ids), label="storing", file=sys.stderr) as bar:
        results = submit.wait(feeder.storage, feeder.job_ids, timeout=timeout, progress=bar.update)
    tally = Counter(o.state for o in results)
    click.echo(f"{len(results)} page(s): {tally['done']} stored, {tally['duplicate']} duplicate, "
               f"{tally['failed']} failed, {tally['queued']} unfinished; "
               f"{sum(feeder.skipped.values())} record(s) skipped", err=True)
    for reason, count in feeder.skipped.most_common():
        click.echo(f"  skipped {count}: {reason}", err=True)
    for o in results:
        if o.state == "failed":
            click.echo(f"  failed: {o.url}: {o.reason}", err=True)
    if tally["failed"] or tally["queued"] or damaged:
        sys.exit(1)


@click.command("ingest")
@click.option("--category", default="warc", show_default=True, help="Source key stored as the records' category_id.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the last pages at most.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ingest_command(category: str, timeout: float, files: tuple[Path, ...]) -> None:
    """Ingest WARC files (gzipped or not) without fetching: each HTML response record with status
    200 goes through parse, dedupe, summarize and store, like a fetched page.

    Other records are counted and skipped with their reason. A torn or corrupt file is read up
    to the damage, and the byte where it stopped is printed. Exits 1 if a file was damaged or a
    page failed.
    """
    from tasks.archive import DamagedArchive, Skipped, read_pages

    max_bytes = get_settings().max_body_bytes
    with click.progressbar(length=sum(p.stat().st_size for p in files), label="reading", file=sys.stderr) as bar:
        feeder = _feeder()
        damaged = 0
        for path in files:
            done = 0
            try:
                for item in read_pages(path, str(path.resolve()), max_bytes):
                    if isinstance(item, Skipped):
                        feeder.skip(item.reason)
                        offset = item.offset
                    else:
                        feeder.add(item, category)
                        offset = item.page.archived.offset
                    bar.update(offset - done)
                    done = offset
            except DamagedArchive as exc:
                damaged += 1
                click.echo(f"\n{path}: stopped at byte {exc.offset} of {path.stat().st_size}: {exc.reason}; "
                           "the records before it were read", err=True)
            bar.update(path.stat().st_size - done)
    _finish(feeder, timeout, damaged)


def _since(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


@click.command("reprocess")
@click.option("--source", "category", help="Only the records of this source key (category_id).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
              help="Only the pages fetched since then (UTC unless a zone is given).")
@click.option("--all", "everything", is_flag=True, help="Every record whose page is archived.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the last pages at most.")
def reprocess_command(category: str | None, since: datetime | None, everything: bool, timeout: float) -> None:
    """Extract archived pages again (after extraction improved): each record's archived page goes
    through parse, dedupe, summarize and store without fetching. Records keep their ids and
    created_at; updated_at changes only where the record changed (its old text kept as a revision).
    """
    from tasks.archive import DamagedArchive, Skipped, page_at
    from worker.models import KeptRecord

    if not (everything or category or since):
        raise click.UsageError("say which records: --source KEY, --since DATE, or --all")
    since = _since(since)
    feeder = _feeder()
    storage, max_bytes = feeder.storage, get_settings().max_body_bytes
    total = storage.count_archived_records(category=category, since=since)
    with click.progressbar(storage.archived_records(category=category, since=since), length=total,
                           label="reading the archive", file=sys.stderr) as records:
        for record in records:
            path = archive_path(record.archived.file)
            if not path.exists():
                feeder.skip(f"its archive file is gone: {record.archived.file}")
                continue
            try:
                item = page_at(path, record.archived.file, record.archived.offset, max_bytes)
            except DamagedArchive as exc:
                feeder.skip(f"its archive file is damaged: {exc.reason}")
                continue
            if isinstance(item, Skipped):
                feeder.skip(item.reason)
                continue
            keep = KeptRecord(id=record.id, canonical_url=record.canonical_url)
            feeder.add(type(item)(item.page.model_copy(update={"keep": keep}), item.body), record.category_id)
    _finish(feeder, timeout, 0)
