"""Dedupe stage: a site's repeated lines and a page's repeated paragraphs out, a canonical URL,
a content hash, and the record this one copies (exactly or nearly), if any.

Near-duplicates are found with the MinHash LSH index in Redis (tasks/duplicates/lsh.py), shared by every
worker: its check-and-insert is one Lua script, so of two near-copies arriving at once exactly
one becomes canonical. Record ids are derived from the canonical URL, so the index can name a
canonical record before that record has reached the store stage.
"""

from __future__ import annotations

import uuid

from tasks.duplicates.boilerplate import BoilerplateFilter, site_of
from tasks.duplicates.lsh import LSHIndex
from tasks.duplicates.textnorm import content_hash, dedupe_paragraphs
from tasks.urlnorm import pick_canonical
from worker.errors import ExtractionError
from worker.models import Draft
from worker.runtime import Runtime
from worker.stage import HandOn, StageContext

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
    # A re-extracted record came with its canonical URL and id: they stay, so the record keeps its id.
    canonical = draft.canonical_url or pick_canonical(draft.url, draft.article.canonical_url)
    record_id = draft.record_id or record_id_for(canonical)
    article = draft.article.model_copy(update={"body": body})
    return draft.model_copy(update={"article": article, "canonical_url": canonical,
                                    "record_id": record_id, "content_hash": content_hash(body)})


def link_near_duplicate(draft: Draft, index: LSHIndex) -> Draft:
    """The draft, pointing at the record it nearly copies if the index knows one (and made its
    canonical otherwise)."""
    verdict = index.check_body(str(draft.record_id), draft.article.body, draft.content_hash)
    if verdict.duplicate_of and verdict.duplicate_of != str(draft.record_id):
        draft = draft.model_copy(update={"duplicate_of": uuid.UUID(verdict.duplicate_of)})
    return draft


def dedupe(ctx: StageContext[Draft]) -> HandOn[Draft]:
    draft = dedupe_draft(ctx.input, BoilerplateFilter(ctx.rt.redis))
    return HandOn(link_near_duplicate(draft, ctx.rt.near_duplicates))


def forget_unstored_canonical(draft: Draft, rt: Runtime) -> None:
    """Undo for a job that died after dedupe: dedupe made its article a canonical in the
    near-duplicate index; if it never got stored, later copies must not link to a record that
    does not exist."""
    if draft.record_id and draft.duplicate_of is None and rt.storage.get_record(str(draft.record_id)) is None:
        rt.near_duplicates.remove(str(draft.record_id))
