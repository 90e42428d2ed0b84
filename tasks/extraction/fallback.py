"""The second strategy, for pages where no run of paragraphs stands out: the body the page declares
in its JSON-LD, else the element densest in unlinked text, hidden elements included.

Pages built by scripts (a React page streams its article into a hidden element), pages whose
prose comes in lines too short to make a run, and pages whose every element carries a furniture
hint lose the primary strategy; this one scores containers instead of runs, so it fails on
different pages. A page that defeats both gets a reason that says what the page held.
"""

from __future__ import annotations

import html
import re
from typing import Any

from bs4 import Tag

from tasks.extraction import jsonld
from tasks.extraction.blocks import LAYOUT_HINTS, Block, read_blocks

MIN_WORDS = 50  # fewer words than this is a notice, a stub or an error page, not an article
_PARENT_SHARE, _GRANDPARENT_SHARE = 1.0, 0.5  # how much of a block's text counts for the elements above it
_TAG = re.compile(r"<[^>]{0,500}>")
_LINES = re.compile(r"\s*\n\s*")
_SPACES = re.compile(r"[^\S\n]+")


def _words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def declared_body(documents: list[Any]) -> list[str]:
    """The articleBody (or text) of the page's JSON-LD article, as paragraphs, if it is long enough."""
    article = jsonld.article_object(documents)
    value = article.get("articleBody") or article.get("text")
    if not isinstance(value, str):
        return []
    # Some publishers put markup or entities in the JSON string: read it as a browser would.
    text = html.unescape(_TAG.sub("\n", value)) if "<" in value or "&" in value else value
    paragraphs = [line for line in _LINES.split(_SPACES.sub(" ", text)) if line.strip()]
    return paragraphs if _words(paragraphs) >= MIN_WORDS else []


def densest_blocks(blocks: list[Block]) -> list[Block]:
    """The blocks of the element whose paragraphs hold the most unlinked text.

    Each block's unlinked characters count for the element around it and, half, for the one
    above that, so the element that gathers most is the one whose own children carry the
    prose, not the page's root. Link lists and elements marked as what is never article text
    (comments, sharing, notices; blocks.LAYOUT_HINTS words excepted) are left out.
    """
    eligible = [b for b in blocks if b.link_chars * 2 <= len(b.text) and LAYOUT_HINTS.issuperset(b.hints)]
    mass: dict[tuple[int, int], float] = {}
    for block in eligible:
        plain = len(block.text) - block.link_chars
        for up, share in ((2, _PARENT_SHARE), (3, _GRANDPARENT_SHARE)):
            if len(block.path) >= up:
                key = (len(block.path) - up, block.path[-up])
                mass[key] = mass.get(key, 0.0) + plain * share
    if not mass:
        return []
    depth, element = max(mass, key=mass.__getitem__)
    return [b for b in eligible if len(b.path) > depth and b.path[depth] == element]


def second_strategy(root: Tag, documents: list[Any]) -> tuple[list[str], list[Block]]:
    """(paragraphs, their blocks) by the second strategy; ([], []) when it finds no article either.

    The blocks are empty when the paragraphs come from the page's JSON-LD.
    """
    declared = declared_body(documents)
    if declared:
        return declared, []
    chosen = densest_blocks(read_blocks(root, hidden=True))
    texts = [block.text for block in chosen]
    return (texts, chosen) if _words(texts) >= MIN_WORDS else ([], [])


def no_text_reason(blocks: list[Block]) -> str:
    """Why a page gave no article: what its visible text amounted to."""
    if not blocks:
        return "no article text found: the page shows no text (it may be built by scripts)"
    words = _words([block.text for block in blocks])
    if words < MIN_WORDS:
        return f"no article text found: the page shows only {words} words"
    return (f"no article text found: none of the page's {words} words make a run of paragraphs "
            "(links, navigation and notices only)")
