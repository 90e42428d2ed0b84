"""Markup cut down before parsing: scripts, styles and comments go, JSON-LD is kept aside.

Building BeautifulSoup's tree costs about as much per element as everything else the
extractor does, so elements that can never hold article text are removed from the string
first, by a linear scan, rather than built and then thrown away.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Elements whose content is never article text; none of them nests inside itself.
_RAW_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "object", "math", "canvas",
             "select", "textarea")
_OPEN = re.compile(r"<(?:(%s)\b([^>]{0,1000}))|<!--" % "|".join(_RAW_TAGS), re.I)
_CLOSE = {tag: re.compile(r"</%s\s*>" % tag, re.I) for tag in _RAW_TAGS}
_IS_JSON_LD = re.compile(r"""type\s*=\s*["']?application/ld\+json""", re.I)
_CDATA = re.compile(r"^\s*(?://\s*)?<!\[CDATA\[|(?://\s*)?\]\]>\s*$")


def prepare(markup: str) -> tuple[str, list[Any]]:
    """The markup without elements that never carry article text, and the page's JSON-LD documents.

    Linear in the length of the markup: an element left open swallows the rest of the page, as
    it would in a browser, so no closing tag is ever searched for twice.
    """
    parts: list[str] = []
    documents: list[Any] = []
    pos = 0
    end = len(markup)
    while pos < end:
        match = _OPEN.search(markup, pos)
        if match is None:
            parts.append(markup[pos:])
            break
        parts.append(markup[pos:match.start()])
        tag = match.group(1)
        if tag is None:  # a comment
            close = markup.find("-->", match.end())
            pos = end if close < 0 else close + 3
            continue
        closing = _CLOSE[tag.lower()].search(markup, match.end())
        if closing is None:
            break
        if tag.lower() == "script" and _IS_JSON_LD.search(match.group(2) or ""):
            content_start = markup.find(">", match.end() - 1)
            if 0 <= content_start < closing.start():
                _add_json(markup[content_start + 1:closing.start()], documents)
        parts.append(" ")
        pos = closing.end()
    return "".join(parts), documents


def _add_json(raw: str, documents: list[Any]) -> None:
    raw = _CDATA.sub("", raw).strip()
    if not raw:
        return
    try:
        documents.append(json.loads(raw, strict=False))
    except (ValueError, RecursionError):
        pass  # broken JSON-LD is common and never fatal: the page has other metadata
