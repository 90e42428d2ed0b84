"""Store stage: upsert the record on its canonical URL with its similar readings and story, enter it
in the readings of the records it relates to, close the job."""

from __future__ import annotations

import functools
from collections.abc import Callable

from worker.models import Draft, SimilarRef
from worker.similar import RecordWords, SimilarIndex, enter_lists
from worker.stage import Ended, StageContext
from worker.storage import Neighbour, Storage
from worker.stories import Candidate, story_of

SIMILAR_ITEMS = 5  # the record's "Similar Readings (5 items)"


def store_draft(draft: Draft, storage: Storage, similar: SimilarIndex, job_id: str | None = None) -> tuple[str, str | None]:
    """Store the draft with its similar readings and story and end its job; (record id, canonical
    id if a duplicate).

    The related records are scored first (they exclude the record itself, so it need not be
    stored yet). The record, its readings, its story, the job's end and the record's entries in
    the readings of the records it is related to are written in one transaction: one write lock
    per article. The upsert is idempotent, so a redelivered store (worker killed after the write)
    is harmless. The record enters a related record's readings where it beats their weakest
    (``enter_lists``): a bounded update, at most one per scored candidate, and none when the
    record turns out to be a duplicate.
    """
    # Cut into words once: they score the record and are written as its search columns.
    words = RecordWords.of(draft.article.title, draft.article.body)
    related: list[SimilarRef] | None = None
    story_id = None
    enters: Callable[[str], dict[str, list[SimilarRef]]] | None = None
    if draft.duplicate_of is None:
        exclude = {str(draft.record_id)} if draft.record_id else set()
        found = [(r, row) for r, row in similar.scored_rows(draft.article.title, draft.article.body,
                                                            exclude=exclude, record_words=words)
                 if r.score >= similar.floor]
        scored = [r for r, _row in found]
        related = similar.listed(scored, k=SIMILAR_ITEMS)
        # The candidates' readings, stories and dates came with them from the search.
        near = {str(r.id): Neighbour.of(row) for r, row in found}
        story_id = story_of([Candidate(id=str(r.id), score=r.score, story_id=near[str(r.id)].story_id,
                                       published_at=near[str(r.id)].published_at)
                             for r in scored if str(r.id) in near], draft.article.published_at)
        if scored:
            # Called with the record's id inside the upsert's transaction, if it is stored canonical.
            enters = functools.partial(enter_lists, title=draft.article.title, scored=scored,
                                       lists={rid: n.similar for rid, n in near.items()}, k=SIMILAR_ITEMS,
                                       floor=similar.floor, share=similar.share)
    return storage.upsert_record(draft, similar=related, story_id=story_id, job_id=job_id, record_words=words,
                                 enters=enters)


def store(ctx: StageContext[Draft]) -> Ended:
    _, duplicate_of = store_draft(ctx.input, ctx.rt.storage, ctx.rt.similar, job_id=ctx.job.id)
    return Ended("duplicate" if duplicate_of else "stored")
