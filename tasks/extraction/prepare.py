"""Markup cut down before parsing: scripts, styles, comments, processing instructions and page chrome
go, JSON-LD is kept aside; then, for BeautifulSoup only, the empty elements nothing of ours reads.

Building BeautifulSoup's tree costs more than everything else the extractor does, per element,
so elements that never hold article text are removed from the string first, by linear scans,
rather than built and then thrown away. About a third of a news page's elements sit in <nav>,
<aside> and <footer>; a tenth more are images, form inputs, table columns, <link>s and <meta>s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tasks.extraction.metadata import LINK_RELS, META_KEYS

# Elements whose content is raw text or never article text; none of them nests inside itself.
_RAW_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "object", "math", "canvas",
             "select", "textarea")
# Page chrome by definition of the element; these may nest, so their closing tags are counted.
_CHROME_TAGS = ("nav", "aside", "footer")


def _first_letters(tags: Iterable[str]) -> str:
    """The letters the tags begin with, for a character class that turns other tags away at once."""
    return "".join(sorted({tag[0] for tag in tags}))


# After a "<", one look at the next character (a first letter of these tags, "!" or "?"; the regex
# engine folds its case as it folds the names') turns most tags away before the names are tried one
# by one: half the time of the scan.
_OPEN = re.compile(
    r"<(?=[%s!?])(?:(%s)(?=[\s/>])([^>]{0,1000})|(%s)(?=[\s/>])|!--|\?)"
    % (_first_letters(_RAW_TAGS + _CHROME_TAGS), "|".join(_RAW_TAGS), "|".join(_CHROME_TAGS)),
    re.I,
)
_CLOSE = {tag: re.compile(r"</%s\s*>" % tag, re.I) for tag in _RAW_TAGS}
_OPEN_OR_CLOSE = {tag: re.compile(r"<(/?)%s(?=[\s/>])[^>]{0,1000}>" % tag, re.I) for tag in _CHROME_TAGS}
# Void elements that hold no text and that nothing reads, <link> (only LINK_RELS are read) and
# <meta> (only META_KEYS are).
# A value quoted after "=" may hold ">"; possessive (++, *+), the attributes are read once, left to
# right, as the parser reads them, a run of plain characters at a time. The first letter is looked
# at first, as in _OPEN.
_VOID_TAGS = ("img", "input", "col", "source", "wbr", "track", "param", "embed", "area", "link", "meta")
_VOID = re.compile(
    r"""<(?=[%s])(?:%s)(?=[\s/>])(?:[^>=]++|=\s*(?:"[^"]*"|'[^']*')?)*+>"""
    % (_first_letters(_VOID_TAGS), "|".join(_VOID_TAGS)),
    re.I,
)
# A <link> or <meta> is kept when a key read shows anywhere in the tag after its name (a key in a
# value keeps one more: harmless).
_KEPT_KEYS = {"<link": LINK_RELS, "<meta": META_KEYS}
_IS_JSON_LD = re.compile(r"""type\s*=\s*["']?application/ld\+json""", re.I)
_CDATA = re.compile(r"^\s*(?://\s*)?<!\[CDATA\[|(?://\s*)?\]\]>\s*$")


def prepare(markup: str) -> tuple[str, list[Any]]:
    """The markup without elements that never carry article text, and the page's JSON-LD documents.

    Linear in the length of the markup: a raw-text element left open swallows the rest of the
    page, as it would in a browser, and a chrome element left open stops the stripping of its
    kind, so no closing tag is ever searched for twice.
    """
    parts: list[str] = []
    documents: list[Any] = []
    unclosed: set[str] = set()
    pos = 0
    end = len(markup)
    while pos < end:
        match = _OPEN.search(markup, pos)
        if match is None:
            parts.append(markup[pos:])
            break
        raw, attributes, chrome = match.groups()
        if chrome is not None:
            close = None if chrome.lower() in unclosed else _chrome_end(markup, match.start(), chrome.lower())
            if close is None:
                unclosed.add(chrome.lower())
                parts.append(markup[pos:match.end()])
                pos = match.end()
                continue
            parts.append(markup[pos:match.start()])
            parts.append(" ")
            pos = close
            continue
        parts.append(markup[pos:match.start()])
        if raw is None:
            if match.group().endswith("?"):  # <?xml ...?> and other processing instructions
                close_at = markup.find(">", match.end())
                pos = end if close_at < 0 else close_at + 1
            else:  # a comment
                close_at = markup.find("-->", match.end())
                pos = end if close_at < 0 else close_at + 3
            continue
        closing = _CLOSE[raw.lower()].search(markup, match.end())
        if closing is None:
            break
        if raw.lower() == "script" and _IS_JSON_LD.search(attributes or ""):
            content_start = markup.find(">", match.end() - 1)
            if 0 <= content_start < closing.start():
                _add_json(markup[content_start + 1:closing.start()], documents)
        parts.append(" ")
        pos = closing.end()
    return "".join(parts), documents


def without_empty(markup: str) -> str:
    """The markup for BeautifulSoup: without the empty elements nothing of ours reads (_VOID).

    htmldate's search is handed the markup with them: it reads dates in image and link URLs.
    """
    return _VOID.sub(_kept_void, markup)


def any_of(words: Iterable[str]) -> str:
    """A pattern that finds where any of the words occurs, whether one does, not which: the words as
    a trie, one branch per next letter, where an alternation of the words has the regex engine try
    each in turn at every position (the sixty <meta> keys: a third of the time over a tag). A word
    that begins with another is left out: where it occurs, the other does too."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for letter in word:
            node = node.setdefault(letter, {})
        node[""] = {}

    def branches(node: dict[str, dict]) -> str:
        if "" in node:
            return ""
        options = [re.escape(letter) + branches(child) for letter, child in sorted(node.items())]
        return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"

    return branches(trie)


# The keys as one search per kind of tag. Over an ASCII tag lower-cased: plain searches. A tag with
# other characters is read case-insensitively, as the regex engine folds case (which beyond ASCII is
# not str.lower's: it reads "ſ" as an "s").
_ASCII_KEYS = {name: re.compile(any_of(key.lower() for key in keys)) for name, keys in _KEPT_KEYS.items()}
_FOLDED_KEYS = [(re.compile(re.escape(name) + r"\b", re.I), re.compile("|".join(map(re.escape, keys)), re.I))
                for name, keys in _KEPT_KEYS.items()]


def _kept_void(match: re.Match[str]) -> str:
    """An element _VOID found: a <link> or <meta> that may be one metadata reads stays; the rest go."""
    tag = match.group()
    # An entity may spell a key ("og:article&#x3A;published_time"): such tags are kept unread.
    if "&" in tag:
        return tag
    # The keys are searched after "<link" or "<meta" (_VOID saw a space, "/" or ">" follow).
    if not tag.isascii():
        for name, keys in _FOLDED_KEYS:
            if name.match(tag):
                return tag if keys.search(tag, 5) else ""
        return ""
    lowered = tag.lower()
    keys = _ASCII_KEYS.get(lowered[:5])
    return tag if keys is not None and keys.search(lowered, 5) else ""


def _chrome_end(markup: str, start: int, tag: str) -> int | None:
    """Where the element opened at start ends, counting nested ones of its kind; None if never."""
    depth = 0
    for match in _OPEN_OR_CLOSE[tag].finditer(markup, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return match.end()
    return None


def _add_json(raw: str, documents: list[Any]) -> None:
    raw = _CDATA.sub("", raw).strip()
    if not raw:
        return
    try:
        documents.append(json.loads(raw, strict=False))
    except (ValueError, RecursionError):
        pass  # broken JSON-LD is common and never fatal: the page has other metadata
