"""Parse stage: turn a fetched page into an Article (title, paragraphs, dates, authors...)."""

from __future__ import annotations

from tasks.extraction import SiteRules, extract_article
from tasks.extraction.published import search_page, warm_locales
from worker.models import Article, Draft, Page
from worker.payloads import FetchedPage
from worker.stage import HandOn, StageContext


def parse_page(page: Page, body: bytes, rules: SiteRules | None = None) -> Article:
    """Extract the article; the page's final URL (after redirects) is its address."""
    article = extract_article(body, page.final_url, charset=page.charset, rules=rules, fetched_at=page.fetched_at)
    article.url = page.final_url
    return article


# A page whose date only dateparser reads: htmldate's own patterns do not, so it hands it on.
_WARM_PAGE = ("<html><head><title>Warm</title></head><body><article><div class=\"date\">Publicado el 4 de "
              "diciembre de 2026</div><p>El texto del artículo, con palabras suficientes para leerlo.</p>"
              "</article></body></html>")


def warm() -> None:
    """Load what extraction otherwise loads on the first page that needs it: the language model
    (py3langid, about 0.3 s) and the date parser behind htmldate's search (dateparser: its import,
    time zone patterns and locale data, about 1.5 s, and every locale's relative-date patterns,
    about 0.5 s and 12 MB: ``warm_locales``), and checks the direct tree builder once
    (tasks/extraction/direct_tree.py). A prefork worker runs this once, before it
    forks its processes, instead of each process paying it in the middle of a page."""
    extract_article(_WARM_PAGE.encode(), "https://warm.invalid/a")
    search_page(_WARM_PAGE, None, None)  # the same call as a page with no date of its own
    warm_locales()


def parse(ctx: StageContext[FetchedPage]) -> HandOn[Draft]:
    page = ctx.input.page
    article = parse_page(page, ctx.input.body, ctx.source.rules if ctx.source else None)
    draft = Draft(job_id=ctx.job.id, category_id=ctx.job.category_id, url=page.final_url, article=article,
                  archived=page.archived)
    if page.keep is not None:  # re-extraction: the record keeps its id and canonical URL (dedupe keeps them)
        draft.canonical_url, draft.record_id = page.keep.canonical_url, page.keep.id
    return HandOn(draft)
