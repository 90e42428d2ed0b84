"""Store stage: upsert the record on its canonical URL with its similar readings and story, enter it
in the readings of the records it relates to, close the job."""

from __future__ import annotations

from worker.models import Draft, SimilarRef
from worker.similar import RecordWords, SimilarIndex, enter_lists
from worker.stage import Ended, StageContext
from worker.storage import Storage
from worker.stories import Candidate, story_of

SIMILAR_ITEMS = 5  # the record's "Similar Readings (5 items)"


def store_draft(draft: Draft, storage: Storage, similar: SimilarIndex, job_id: str | None = None) -> tuple[str, str | None]:
    """Store the draft with its similar readings and story and end its job; (record id, canonical
    id if a duplicate).

    The related records are scored first (they exclude the record itself, so it need not be
    stored yet); the record, its readings, its story and the job's end are written in one
    transaction: one write lock per article. The upsert is idempotent, so a redelivered store
    (worker killed after the write) is harmless. Then the records it is related to get it in their
    own readings where it beats their weakest (``enter_lists``): a bounded update, at most one
    per scored candidate.
    """
    # Cut into words once: they score the record and are written as its search columns.
    words = RecordWords.of(draft.article.title, draft.article.body)
    related: list[SimilarRef] | None = None
    story_id = None
    scored: list[SimilarRef] = []
    near = {}
    if draft.duplicate_of is None:
        exclude = {str(draft.record_id)} if draft.record_id else set()
        scored = [r for r in similar.scored(draft.article.title, draft.article.body, exclude=exclude,
                                            record_words=words)
                  if r.score >= similar.floor]
        related = similar.listed(scored, k=SIMILAR_ITEMS)
        near = storage.neighbours([str(r.id) for r in scored])
        story_id = story_of([Candidate(id=str(r.id), score=r.score, story_id=near[str(r.id)].story_id,
                                       published_at=near[str(r.id)].published_at)
                             for r in scored if str(r.id) in near], draft.article.published_at)
    record_id, duplicate_of = storage.upsert_record(draft, similar=related, story_id=story_id, job_id=job_id,
                                                  record_words=words)
    if duplicate_of is None and scored:
        storage.set_similar_many(enter_lists(record_id, draft.article.title, scored,
                                             {rid: n.similar for rid, n in near.items()}, k=SIMILAR_ITEMS,
                                             floor=similar.floor, share=similar.share))
    return record_id, duplicate_of


def store(ctx: StageContext[Draft]) -> Ended:
    _, duplicate_of = store_draft(ctx.input, ctx.rt.storage, ctx.rt.similar, job_id=ctx.job.id)
    return Ended("duplicate" if duplicate_of else "stored")
