"""A ``warc`` source: a folder that fills with WARC files over time. Each run reads every file from
where the last run stopped and feeds its pages into parse (worker/feed.py's Feeder), as ``gleaner
ingest`` does, so a record is ingested once however often the folder is polled.

What is remembered, per file, is the offset where the next unread record starts (in Redis,
``keys.source_warc_progress``), advanced only past whole records. So a file another process is
still appending to is read up to its last whole record, and the rest by a later run once it is
whole; nothing waits for a file to go quiet, and nothing is read twice. A file replaced under its
name (another inode, or shorter than the offset) is read from its start. Corrupt bytes stop that
file where they begin (the records before are ingested) until the file changes again.
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.archive import TORN, DamagedArchive, Skipped, pages_from
from worker import keys
from worker.feed import BATCH, WINDOW, Feeder
from worker.registry import RunReport
from worker.runtime import Runtime
from worker.sources import Source

log = logging.getLogger("gleaner.discover")

SUFFIXES = (".warc", ".warc.gz")
# Pages fed per run at most: with a batch still to send, within the feeder's window, so a run never
# waits for its own jobs to finish (in a worker with one slot they could not start); the rest go in
# the next run.
MAX_PAGES_PER_RUN = WINDOW - BATCH
# A file that ends inside a record and has not changed for this long is damaged, not being written.
QUIET = 600.0


@dataclass
class Progress:
    """How far one file has been read."""

    inode: int
    offset: int = 0  # where the next unread record starts
    damage: str = ""  # why the reading stopped at ``offset``, if the file is damaged there
    size: int = 0  # the file's size when the damage was found: it is read again only once that changes

    @classmethod
    def from_json(cls, raw: bytes | str) -> Progress:
        return cls(**json.loads(raw))


def warc_files(folder: Path) -> list[Path]:
    """The folder's WARC files (``*.warc``, ``*.warc.gz``; not hidden, not in subfolders), oldest first."""
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.name.endswith(SUFFIXES):
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # removed while we looked
        if stat.S_ISREG(st.st_mode):
            found.append((st.st_mtime_ns, path.name, path))
    return [path for *_, path in sorted(found)]


def read_folder(source: Source, rt: Runtime, feeder: Feeder, deadline: float) -> RunReport:
    """One run of a warc source: the records added to its folder's files since the last run,
    their pages fed into parse under the source's key; the report counts the records read
    (``found``), the pages fed (``new``), the records skipped by reason, and damaged files."""
    started = time.time()
    report = RunReport(started=started, finished=started)
    folder = Path(source.warc or "")
    progress_key = keys.source_warc_progress(source.key)
    try:
        files = warc_files(folder)
    except OSError as exc:
        report.errors.append(f"warc folder {folder}: {exc.strerror or exc}")
        report.finished = time.time()
        return report
    known = {(k.decode() if isinstance(k, bytes) else k): v for k, v in rt.redis.hgetall(progress_key).items()}
    gone = set(known) - {str(path) for path in files}
    if gone:  # removed (or rotated away): a file put there later under the name is another file
        rt.redis.hdel(progress_key, *gone)
    max_bytes = rt.settings.max_body_bytes
    left = 0
    for path in files:
        if len(feeder.job_ids) >= MAX_PAGES_PER_RUN or time.monotonic() > deadline:
            left += 1
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        raw = known.get(str(path))
        prog = Progress.from_json(raw) if raw else None
        if prog is None or prog.inode != st.st_ino or st.st_size < prog.offset:
            prog = Progress(inode=st.st_ino)
        if prog.damage and st.st_size == prog.size:
            report.errors.append(_damaged(path, prog))  # unchanged since: not read again
            continue
        if st.st_size == prog.offset:
            continue  # nothing added
        done = _read_file(path, prog, source.key, feeder, max_bytes, st.st_mtime,
                          budget=lambda: len(feeder.job_ids) >= MAX_PAGES_PER_RUN or time.monotonic() > deadline)
        feeder.flush()  # the pages are sent before the progress past them is kept
        rt.redis.hset(progress_key, str(path), json.dumps(asdict(done)))
        if done.damage:
            report.errors.append(_damaged(path, done))
    if left:
        log.info("warc source %s: %d file(s) left for the next run (this run's page or time budget ran out)",
                 source.key, left)
    report.new = len(feeder.job_ids)
    report.skipped = dict(feeder.skipped)
    report.found = report.new + sum(report.skipped.values())
    report.finished = time.time()
    return report


def _read_file(path: Path, prog: Progress, category: str, feeder: Feeder, max_bytes: int, mtime: float,
               budget: Callable[[], bool]) -> Progress:
    """Read ``path`` from ``prog.offset``, feeding its pages; how far it was read."""
    offset, member = prog.offset, None
    try:
        for at, item in pages_from(path, str(path), max_bytes, prog.offset):
            # Records sharing a gzip member share an offset: stop only between members.
            if item is None or (at != member and budget()):
                offset = at
                break
            member = at
            if isinstance(item, Skipped):
                feeder.skip(item.reason)
            else:
                feeder.add(item, category)
    except DamagedArchive as exc:
        size = path.stat().st_size
        if exc.reason == TORN and time.time() - mtime < QUIET:
            return Progress(inode=prog.inode, offset=exc.offset)  # still being written: the rest next run
        return Progress(inode=prog.inode, offset=exc.offset, damage=exc.reason, size=size)
    return Progress(inode=prog.inode, offset=offset)


def _damaged(path: Path, prog: Progress) -> str:
    return (f"{path.name}: stopped at byte {prog.offset} of {prog.size}: {prog.damage}; "
            "the records before it were ingested, the rest is read again once the file changes")
