"""Gleaner's article extractor: one page's HTML in, one :class:`worker.models.Article` out.

    extract_article(html, url=None, *, charset=None, rules=None) -> Article

The generic extractor finds the body by where a page's paragraph text concentrates, and where
none does, by the body the page declares in JSON-LD or the element densest in text; a source's
:class:`SiteRules` (CSS selectors, declared as data) override it for that site.
"""

from __future__ import annotations

from tasks.extraction.extract import extract_article
from tasks.extraction.rules import SiteRules

__all__ = ["SiteRules", "extract_article"]
