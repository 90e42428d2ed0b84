"""Pages that were not fetched now, fed into the pipeline at the stage that reads a fetched page
(parse): ``gleaner ingest`` (WARC files from elsewhere) and ``gleaner reprocess`` (the archive).

Each page gets a job row, then goes in by ``runner.send`` with its page as that stage's input,
so it takes the same queues, retries and dead letters as a fetched one. At most ``window`` jobs
are unfinished at once: their pages wait in Redis, and a 1 GB WARC file must not all wait there.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

from worker import runner
from worker.job import Job
from worker.payloads import PAGE, FetchedPage
from worker.pipeline import Pipeline, Stage
from worker.queues import Priority
from worker.runtime import Runtime
from worker.storage import TERMINAL_STATES, Storage

BATCH = 50  # pages per round trip (their bodies go in it, compressed)
WINDOW = 500  # jobs unfinished at once
POLL = 0.2  # seconds between looks at the jobs table while the window is full


def page_stage(pipeline: Pipeline) -> Stage:
    """The stage that reads a fetched page: where a page that was not fetched now goes in."""
    for stage in pipeline:
        if stage.input is PAGE:
            return stage
    raise ValueError(f"no stage of {', '.join(pipeline.names())} reads a fetched page")


@dataclass
class Feeder:
    storage: Storage
    rt: Runtime
    sender: runner.Sender
    pipeline: Pipeline
    window: int = WINDOW
    job_ids: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records
    _batch: list[tuple[FetchedPage, str]] = field(default_factory=list)
    _pending: set[str] = field(default_factory=set)

    def add(self, page: FetchedPage, category: str) -> None:
        self._batch.append((page, category))
        if len(self._batch) >= BATCH:
            self.flush()

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def flush(self) -> None:
        if not self._batch:
            return
        self._throttle(len(self._batch))
        stage = page_stage(self.pipeline)
        messages, payloads = [], {}
        by_category = itertools.groupby(sorted(self._batch, key=lambda item: item[1]), key=lambda item: item[1])
        for category, items in by_category:
            pages = [page for page, _ in items]
            ids = self.storage.create_jobs([p.page.final_url for p in pages], category, int(Priority.SCHEDULED))
            for job_id, page in zip(ids, pages):
                messages.append(Job(id=job_id, category_id=category, priority=int(Priority.SCHEDULED),
                                    url=page.page.final_url).to(stage.name))
                payloads[job_id] = page
        runner.send(self.rt, self.sender, messages, pipeline=self.pipeline, payloads=payloads)
        self.job_ids.extend(payloads)
        self._pending.update(payloads)
        self._batch.clear()

    def _throttle(self, coming: int) -> None:
        while self._pending and len(self._pending) + coming > self.window:
            self._collect()
            if len(self._pending) + coming > self.window:
                time.sleep(POLL)

    def _collect(self) -> None:
        jobs = self.storage.get_jobs(list(self._pending))
        done = [job_id for job_id, job in jobs.items() if job["state"] in TERMINAL_STATES]
        self._pending.difference_update(done)
