"""The extractor's entry point: decode, cut down, parse once, read every block once, then choose
(by a second strategy where no run of paragraphs stands out)."""

from __future__ import annotations

import gc
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, Tag, XMLParsedAsHTMLWarning

from tasks.extraction import rules as site_rules
from tasks.extraction.authors import page_authors
from tasks.extraction.blocks import Block, read_blocks
from tasks.extraction.body import article_blocks
from tasks.extraction.dates import is_dateline
from tasks.extraction.decode import decode_html
from tasks.extraction.direct_tree import build, tree_builder
from tasks.extraction.fallback import no_text_reason, second_strategy
from tasks.extraction.language import choose_language
from tasks.extraction.metadata import PageMeta
from tasks.extraction.prepare import prepare, without_empty
from tasks.extraction.published import page_dates
from tasks.extraction.rules import SiteRules
from tasks.extraction.title import choose_title
from worker.errors import ExtractionError
from worker.models import Article

_MAX_HEADINGS = 5


# XHTML pages start with an XML prolog and are still read as HTML, on purpose; a page that looks
# like a file name is still a page. Neither warning helps anyone reading Gleaner's logs.
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)

_TAG = re.compile(r"<[a-zA-Z!/]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_SNIFF_CHARS = 4096
_MAX_CONTROL_SHARE = 0.05


def _check_markup(markup: str) -> None:
    """Refuse input that is not HTML at all, with a reason a person can act on."""
    head = markup[:_SNIFF_CHARS]
    if len(_CONTROL.findall(head)) > _MAX_CONTROL_SHARE * len(head):
        raise ExtractionError("binary data, not HTML: control characters throughout the first bytes")
    if _TAG.search(markup) is None:
        raise ExtractionError("not HTML: no markup tags in the document")


def parse(markup: str) -> BeautifulSoup:
    # Attributes as plain strings in plain dicts (direct_tree.build says why); lxml's builder without
    # the whitespace strings no reader sees (builder.py), making the tree's objects itself where
    # BeautifulSoup's release allows it (direct_tree.py).
    return build(without_empty(markup), tree_builder())


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a tree is built and read, then collect once.

    A soup is tens of thousands of young objects linked in cycles; the collector would scan
    them again and again while they are being created (a fifth of the parse time). One young-
    generation collection once the page is done frees the whole tree in a single pass, and is
    paid here, by the extractor, rather than by whatever code allocates next.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def extract_article(
    html: bytes | str,
    url: str | None = None,
    *,
    charset: str | None = None,
    rules: SiteRules | None = None,
    fetched_at: datetime | None = None,
) -> Article:
    """Extract one article from a page.

    ``charset`` is the one the HTTP response declared, if any; it wins over the page's own.
    ``rules`` override the generic extractor where their selectors match. ``fetched_at`` bounds
    the dates: none later than the fetch is taken (default: now).
    Raises :class:`ExtractionError` when the input is not HTML text or holds no article body.
    """
    if isinstance(html, (bytes, bytearray, memoryview)):
        markup = decode_html(bytes(html), charset)
    elif isinstance(html, str):
        markup = html
    else:
        raise ExtractionError(f"cannot extract from {type(html).__name__}: expected HTML as bytes or str")
    if not markup.strip():
        raise ExtractionError("empty page: no HTML to extract from")
    _check_markup(markup)
    markup, documents = prepare(markup.replace("\x00", ""))
    with _collector_paused():
        try:
            return _extract(markup, documents, url, rules, fetched_at)
        except RecursionError:
            # BeautifulSoup recurses over some structures (deep nesting while building).
            raise ExtractionError("page nested too deeply to read") from None


def _extract(markup: str, documents: list[Any], url: str | None, rules: SiteRules | None,
             fetched_at: datetime | None) -> Article:
    soup = parse(markup)
    if rules is not None:
        site_rules.apply_drop(rules, soup)
    collected: list[Tag] = []
    blocks = read_blocks(soup, collected)
    meta = PageMeta(soup, documents, collected)
    site_name = meta.site_name()
    headings = [block.text for block in blocks if block.tag == "h1"][:_MAX_HEADINGS]
    title = (rules and site_rules.rule_title(rules, soup)) or choose_title(
        headings, meta.declared_titles(), meta.title_tag, site_name
    )
    chosen = _rule_body(rules, soup) if rules is not None else []
    if not chosen:
        chosen = article_blocks(blocks, title)
    body = _body_text([block.text for block in chosen], title)
    if not body:
        texts, chosen = second_strategy(soup, documents)
        body = _body_text(texts, title)
    if not body:
        raise ExtractionError(no_text_reason(blocks))
    first_body = chosen[0] if chosen else None  # none when the body is the page's JSON-LD articleBody
    published, modified = page_dates(meta, url, markup, blocks, first_body, title, fetched_at,
                                     site_rules.rule_date_text(rules, soup) if rules is not None else None)
    return Article(
        url=url,
        canonical_url=meta.canonical(url),
        title=title,
        body=body,
        published_at=published,
        modified_at=modified,
        authors=page_authors(meta, soup, blocks, first_body, title),
        language=choose_language(meta.declared_languages(), title, body),
        site_name=site_name,
        image=meta.image(url),
        tags=meta.tags(),
    )


def _body_text(texts: list[str], title: str) -> list[str]:
    return [text for text in texts if not is_dateline(text) and text != title]


def _rule_body(rules: SiteRules, soup: BeautifulSoup) -> list[Block]:
    """The blocks under a site's body selector, link lists excepted."""
    found: list[Block] = []
    for element in site_rules.rule_bodies(rules, soup):
        found.extend(b for b in read_blocks(element) if b.link_chars * 2 <= len(b.text))
    return found
