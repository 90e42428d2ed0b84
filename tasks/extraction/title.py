"""The headline: the page's <h1> when it agrees with the metadata, else the metadata's own."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")
# " | Site", " - Site", " — Site", " :: Site", " « Site": where <title> tags append the site name.
_TITLE_SEPARATORS = re.compile(r"\s+(?:[|\-–—:·•»«/]|::)\s+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _agree(a: str, b: str) -> bool:
    """Whether two titles are the same headline (one may carry the site name or a kicker)."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return False
    shared = len(wa & wb)
    return shared >= 0.6 * min(len(wa), len(wb)) and (shared >= 2 or wa == wb)


def strip_site_name(title: str, site_name: str | None = None) -> str:
    """A <title> without the site name that pages append or prepend to it."""
    parts = _TITLE_SEPARATORS.split(title)
    if len(parts) < 2:
        return title
    if site_name:
        site = _words(site_name)
        kept = [part for part in parts if _words(part) != site and not _words(part) <= site]
        if kept and len(kept) < len(parts):
            return " - ".join(kept) if len(kept) > 1 else kept[0]
    return max(parts, key=len)


def choose_title(headings: list[str], declared: list[str], title_tag: str, site_name: str | None) -> str:
    """The article's headline from the <h1>s on the page, the declared titles and <title>.

    An <h1> wins when it agrees with a declared title or <title> (it is what readers see);
    otherwise the declared title (JSON-LD headline, og:title), then <title> without the site
    name, then the first <h1>.
    """
    # Compared without the site name, or a logo <h1> would agree with every "Story | Site" title.
    references = [strip_site_name(t, site_name) for t in (*declared, title_tag) if t]
    for heading in headings:
        if any(_agree(heading, reference) for reference in references):
            return heading
    for title in declared:
        if title:
            return strip_site_name(title, site_name) if _TITLE_SEPARATORS.search(title) and title == title_tag \
                else title
    if title_tag:
        return strip_site_name(title_tag, site_name)
    return headings[0] if headings else ""
