"""Store stage: upsert the record on its canonical URL, find its similar readings, close the job."""

from __future__ import annotations

from typing import Any

from worker.pipeline import stage_task
from worker.queues import Queue
from worker.runtime import Runtime

SIMILAR_ITEMS = 5  # the record's "Similar Readings (5 items)"


@stage_task(Queue.STORE, needs_row=False)
def store(job: dict[str, Any], rt: Runtime) -> None:
    draft = rt.pages.get_draft(job["id"])
    # The upsert is idempotent, so a redelivered store (worker killed after the write) is harmless.
    record_id, duplicate_of = rt.storage.upsert_record(draft)
    if duplicate_of is None:
        # Similar readings come from the full-text index over every canonical record stored so far.
        related = rt.similar.related(record_id, k=SIMILAR_ITEMS)
        rt.storage.set_similar(record_id, related)
        # An early record found few neighbours when it was stored; this one may be among them now.
        counts = rt.storage.similar_counts([str(ref.id) for ref in related])
        for neighbour, count in counts.items():
            if count < SIMILAR_ITEMS:
                rt.storage.set_similar(neighbour, rt.similar.related(neighbour, k=SIMILAR_ITEMS))
    rt.storage.finish_job(job["id"], record_id=record_id, duplicate_of=duplicate_of)
    rt.pages.discard(job["id"])
