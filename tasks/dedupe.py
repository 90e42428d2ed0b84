"""Dedupe stage: repeated paragraphs out, a canonical URL and a content hash, copies linked."""

from __future__ import annotations

import uuid
from typing import Any

from tasks.textnorm import content_hash, dedupe_paragraphs
from tasks.urlnorm import canonicalize_url
from worker.errors import ExtractionError
from worker.models import Draft
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime


def dedupe_draft(draft: Draft) -> Draft:
    """The draft with its body's repeats removed, its canonical URL and its content hash."""
    body = dedupe_paragraphs(draft.article.body)
    if not body:
        raise ExtractionError("no article text left after removing repeated paragraphs")
    article = draft.article.model_copy(update={"body": body})
    return draft.model_copy(
        update={"article": article, "canonical_url": canonicalize_url(draft.url), "content_hash": content_hash(body)}
    )


@stage_task(Queue.DEDUPE)
def dedupe(job: dict[str, Any], rt: Runtime) -> None:
    draft = dedupe_draft(rt.pages.get_draft(job["id"]))
    # A first look for an exact copy; store's unique index settles races between workers.
    canonical = rt.storage.find_canonical_by_hash(draft.content_hash)
    if canonical:
        draft = draft.model_copy(update={"duplicate_of": uuid.UUID(canonical)})
    rt.pages.put_draft(draft)
    send(Queue.SUMMARIZE, job)
