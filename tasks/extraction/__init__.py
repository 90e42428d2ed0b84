"""Gleaner's article extractor: one page's HTML in, one :class:`worker.models.Article` out.

    extract_article(html, url=None, *, charset=None, rules=None) -> Article

The generic extractor finds the body by where a page's paragraph text concentrates, and where
none does, by the body the page declares in JSON-LD or the element densest in text; a source's
:class:`SiteRules` (CSS selectors, declared as data) override it for that site.
"""

from __future__ import annotations

from typing import Any

from tasks.extraction.rules import SiteRules

__all__ = ["SiteRules", "extract_article"]


def __getattr__(name: str) -> Any:
    # The extractor (its readers, language model, date parsers) is imported on first use: the CLI and
    # the sources file import this package for SiteRules alone, and every `gleaner` command paid for it.
    if name == "extract_article":
        from tasks.extraction.extract import extract_article

        return extract_article
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
