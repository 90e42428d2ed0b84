"""The extractor's entry point: decode, parse once, then read metadata and body from the tree."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from bs4 import BeautifulSoup

from tasks.extraction.body import article_blocks
from tasks.extraction.decode import decode_html
from tasks.extraction.metadata import PageMeta, clean
from tasks.extraction.prepare import prepare
from tasks.extraction.rules import SiteRules
from worker.errors import ExtractionError
from worker.models import Article


def parse(markup: str) -> BeautifulSoup:
    # multi_valued_attributes=None keeps class as one string: cheaper to build and to match.
    return BeautifulSoup(markup, "lxml", multi_valued_attributes=None)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a tree is built and read.

    A soup is tens of thousands of young objects linked in cycles; the collector would scan
    them again and again while they are being created (a fifth of the parse time). One
    collection after the page, when the collector resumes, does the same work once.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def extract_article(
    html: bytes | str,
    url: str | None = None,
    *,
    charset: str | None = None,
    rules: SiteRules | None = None,
) -> Article:
    """Extract one article from a page.

    ``charset`` is the one the HTTP response declared, if any; it wins over the page's own.
    ``rules`` override the generic extractor where their selectors match.
    Raises :class:`ExtractionError` when the page holds no title and body.
    """
    if isinstance(html, (bytes, bytearray, memoryview)):
        markup = decode_html(bytes(html), charset)
    elif isinstance(html, str):
        markup = html
    else:
        raise ExtractionError(f"cannot extract from {type(html).__name__}: expected HTML as bytes or str")
    if not markup.strip():
        raise ExtractionError("empty page: no HTML to extract from")
    markup, documents = prepare(markup.replace("\x00", ""))
    with _collector_paused():
        return _extract(markup, documents, url)


def _extract(markup: str, documents: list, url: str | None) -> Article:
    soup = parse(markup)
    meta = PageMeta(soup, documents)
    titles = meta.title_candidates()
    h1 = soup.find("h1")
    title = clean(h1.get_text()) if h1 is not None else ""
    if not title and titles:
        title = titles[0]
    body = [block.text for block in article_blocks(soup, title)]
    if not body:
        raise ExtractionError("no article text found: no block of paragraphs stands out on the page")
    return Article(
        url=url,
        canonical_url=meta.canonical(url),
        title=title or (titles[0] if titles else ""),
        body=body,
        published_at=meta.published(url),
        modified_at=meta.modified(),
        authors=meta.authors(),
        language=meta.language(),
        site_name=meta.site_name(),
        image=meta.image(url),
        tags=meta.tags(),
    )
