"""Dedupe stage: a site's repeated lines and a page's repeated paragraphs out, a canonical URL,
a content hash, and the record this one copies (exactly or nearly), if any.

Near-duplicates are found with the MinHash LSH index in Redis (tasks/duplicates/lsh.py), shared by every
worker: its check-and-insert is one Lua script, so of two near-copies arriving at once exactly
one becomes canonical. Record ids are derived from the canonical URL, so the index can name a
canonical record before that record has reached the store stage.
"""

from __future__ import annotations

import functools
import os
import uuid
from typing import Any

import redis

from tasks.duplicates.boilerplate import BoilerplateFilter, site_of
from tasks.duplicates.lsh import LSHIndex
from tasks.duplicates.textnorm import content_hash, dedupe_paragraphs
from tasks.urlnorm import pick_canonical
from worker.errors import ExtractionError
from worker.models import Draft
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime

RECORD_NAMESPACE = uuid.UUID("5b0c4f8e-6a43-4c1e-9a2f-3d8e1f7a2b10")  # ours: record ids from canonical URLs


def record_id_for(canonical_url: str) -> uuid.UUID:
    """The same canonical URL always gets the same record id, on every worker."""
    return uuid.uuid5(RECORD_NAMESPACE, canonical_url)


def dedupe_draft(draft: Draft, site_filter: BoilerplateFilter | None = None) -> Draft:
    """The draft with boilerplate and repeats removed, its canonical URL, record id and content hash."""
    body = draft.article.body
    if site_filter is not None:
        body = site_filter.observe_and_filter(site_of(draft.url), body)
    body = dedupe_paragraphs(body)
    if not body:
        raise ExtractionError("no article text left after removing repeated and boilerplate paragraphs")
    canonical = pick_canonical(draft.url, draft.article.canonical_url)
    article = draft.article.model_copy(update={"body": body})
    return draft.model_copy(update={"article": article, "canonical_url": canonical,
                                    "record_id": record_id_for(canonical), "content_hash": content_hash(body)})


@functools.cache
def _index_for(pid: int, client: redis.Redis, threshold: float) -> LSHIndex:
    return LSHIndex(client, threshold)


def near_duplicate_index(rt: Runtime) -> LSHIndex:
    """This process's handle on the shared index (built once: it registers its scripts)."""
    return _index_for(os.getpid(), rt.redis, rt.settings.near_duplicate_threshold)


def link_near_duplicate(draft: Draft, index: LSHIndex) -> Draft:
    """The draft, pointing at the record it nearly copies if the index knows one (and made its
    canonical otherwise)."""
    verdict = index.check_body(str(draft.record_id), draft.article.body, draft.content_hash)
    if verdict.duplicate_of and verdict.duplicate_of != str(draft.record_id):
        draft = draft.model_copy(update={"duplicate_of": uuid.UUID(verdict.duplicate_of)})
    return draft


@stage_task(Queue.DEDUPE, needs_row=False)
def dedupe(job: dict[str, Any], rt: Runtime) -> None:
    draft = dedupe_draft(rt.pages.get_draft(job["id"], Queue.PARSE.value), BoilerplateFilter(rt.redis))
    rt.pages.put_draft(link_near_duplicate(draft, near_duplicate_index(rt)), Queue.DEDUPE.value)
    send(Queue.SUMMARIZE, job)
