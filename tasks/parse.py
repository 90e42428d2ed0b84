"""Parse stage: turn a fetched page into an Article (title, paragraphs, dates, authors...)."""

from __future__ import annotations

from typing import Any

from tasks.extraction import SiteRules, extract_article
from worker.models import Article, Draft, Page
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime
from worker.scheduler import rules_for


def parse_page(page: Page, body: bytes, rules: SiteRules | None = None) -> Article:
    """Extract the article; the page's final URL (after redirects) is its address."""
    article = extract_article(body, page.final_url, charset=page.charset, rules=rules, fetched_at=page.fetched_at)
    article.url = page.final_url
    return article


@stage_task(Queue.PARSE, needs_row=False, reads_source=True)
def parse(job: dict[str, Any], rt: Runtime) -> None:
    page, body = rt.pages.get_page(job["id"])
    article = parse_page(page, body, rules_for(rt.redis, job["category_id"]))
    rt.pages.put_draft(Draft(job_id=job["id"], category_id=job["category_id"], url=page.final_url, article=article),
                       Queue.PARSE.value)
    send(Queue.DEDUPE, job)
