"""Parse stage: turn a fetched page into an Article (title, paragraphs, dates, authors...)."""

from __future__ import annotations

from tasks.extraction import SiteRules, extract_article
from worker.models import Article, Draft, Page
from worker.payloads import FetchedPage
from worker.stage import HandOn, StageContext


def parse_page(page: Page, body: bytes, rules: SiteRules | None = None) -> Article:
    """Extract the article; the page's final URL (after redirects) is its address."""
    article = extract_article(body, page.final_url, charset=page.charset, rules=rules, fetched_at=page.fetched_at)
    article.url = page.final_url
    return article


def parse(ctx: StageContext[FetchedPage]) -> HandOn[Draft]:
    page = ctx.input.page
    article = parse_page(page, ctx.input.body, ctx.source.rules if ctx.source else None)
    draft = Draft(job_id=ctx.job.id, category_id=ctx.job.category_id, url=page.final_url, article=article,
                  archived=page.archived)
    if page.keep is not None:  # re-extraction: the record keeps its id and canonical URL (dedupe keeps them)
        draft.canonical_url, draft.record_id = page.keep.canonical_url, page.keep.id
    return HandOn(draft)
