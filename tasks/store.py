"""Store stage: upsert the record on its canonical URL, find its similar readings, close the job."""

from __future__ import annotations

from worker.models import Draft
from worker.similar import SimilarIndex
from worker.stage import Ended, StageContext
from worker.storage import Storage

SIMILAR_ITEMS = 5  # the record's "Similar Readings (5 items)"


def store_draft(draft: Draft, storage: Storage, similar: SimilarIndex, job_id: str | None = None) -> tuple[str, str | None]:
    """Store the draft with its similar readings and end its job; (record id, canonical id if a
    duplicate).

    The related records are looked up first (they exclude the record itself, so it need not be
    stored yet), then the record, its readings and the job's end are written in one transaction:
    one write lock per article. The upsert is idempotent, so a redelivered store (worker killed
    after the write) is harmless.
    """
    related = None
    if draft.duplicate_of is None:
        # Similar readings come from the full-text index over every canonical record stored so far.
        exclude = {str(draft.record_id)} if draft.record_id else set()
        related = similar.related_to(draft.article.title, draft.article.body, k=SIMILAR_ITEMS, exclude=exclude)
    record_id, duplicate_of = storage.upsert_record(draft, similar=related, job_id=job_id)
    if duplicate_of is None and related:
        # An early record found few neighbours when it was stored; this one may be among them now.
        counts = storage.similar_counts([str(ref.id) for ref in related])
        for neighbour, count in counts.items():
            if count < SIMILAR_ITEMS:
                storage.set_similar(neighbour, similar.related(neighbour, k=SIMILAR_ITEMS))
    return record_id, duplicate_of


def store(ctx: StageContext[Draft]) -> Ended:
    _, duplicate_of = store_draft(ctx.input, ctx.rt.storage, ctx.rt.similar, job_id=ctx.job.id)
    return Ended("duplicate" if duplicate_of else "stored")
