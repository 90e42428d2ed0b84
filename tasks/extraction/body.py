"""The article's body: the densest run of prose on the page, narrowed to the element holding it.

Blocks are scored by their length beyond a fixed cost, with linked text counting against
them; the best contiguous run of blocks (a maximum-sum segment) marks where the article is,
and the run's deepest common element, clipped to an element that declares itself the article
when one holds most of the run, is the container whose text is returned. Blocks under elements
that look like furniture (blocks.py) count against the run and are left out of the container,
except where the page overrules the look: an element, or a word of layout vocabulary, that holds
most of the run's prose wraps the article rather than sitting beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import itemgetter

from tasks.extraction.blocks import LAYOUT_HINTS, NOTICE_HINTS, Block

_FIXED_COST = 25  # characters a block must exceed to add to a run: short lines are navigation
_LINK_COST = 3  # each linked character counts against the run this many times over
_PROSE_LINK_COST = 1  # in a <p>: a paragraph's links are citations in prose, a menu is not written in <p>
_LINK_SHARE = 0.5  # a block inside the article goes as a link list when more of it than this is linked
_PROSE_LINK_SHARE = 0.8  # but a <p> only when more than this is: on the dev halves, <p>s linked 0.5-0.8
# hold twice as many true words as false ones, and the two are even at 0.8-0.9
_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_TEASER_ITEM_BLOCKS = 6  # a linked heading with at most this many blocks around it is a teaser
_TEASER_ITEM_CHARS = 700
# Elements whose one-word lines are text (a name in a list, a heading); elsewhere a lone word
# between paragraphs is a widget's label: "Advertisement", "Tags", "Comments".
_ITEM_TAGS = frozenset(("li", "dd", "dt", "tr", "h2", "h3", "h4", "h5", "h6", "p"))
_LABEL = re.compile(r"^\W*[^\W\d_]{1,20}\W*$")
_SPLIT_SHARE = 10  # a sibling section with a tenth of the text makes the article a split one


def _score(block: Block) -> int:
    plain = len(block.text) - block.link_chars
    cost = _PROSE_LINK_COST if block.tag == "p" else _LINK_COST
    return plain - cost * block.link_chars - _FIXED_COST


def _best_run(scores: list[int]) -> tuple[int, int, int]:
    """(first, last, sum) of the contiguous run of blocks with the largest sum of scores."""
    best, best_span = 0, (0, -1)
    total, start = 0, 0
    for i, score in enumerate(scores):
        if total <= 0:
            total, start = 0, i
        total += score
        if total > best:
            best, best_span = total, (start, i)
    return best_span[0], best_span[1], best


def _teasers(blocks: list[Block]) -> set[int]:
    """Indexes of blocks that sit in a small item under a linked headline: lists of other articles."""
    marked: set[int] = set()
    for i, block in enumerate(blocks):
        if block.tag not in _HEADINGS or block.link_chars * 2 < len(block.text):
            continue
        for up in (2, 3):
            if len(block.path) <= up:
                break
            depth = len(block.path) - up
            item = block.path[depth]
            first = last = i
            while first > 0 and len(blocks[first - 1].path) > depth and blocks[first - 1].path[depth] == item:
                first -= 1
            while last + 1 < len(blocks) and len(blocks[last + 1].path) > depth \
                    and blocks[last + 1].path[depth] == item:
                last += 1
            if last - first + 1 > _TEASER_ITEM_BLOCKS:
                break
            if last > first and sum(len(b.text) for b in blocks[first:last + 1]) <= _TEASER_ITEM_CHARS:
                marked.update(range(first, last + 1))
                break
    return marked


def _container(blocks: list[Block], first: int, last: int, scores: list[int]) -> tuple[int, int]:
    """(depth, id) of the element holding the run: common ancestor, clipped to a semantic element."""
    head, tail = blocks[first].path, blocks[last].path
    common = 0
    for a, b in zip(head, tail):
        if a != b:
            break
        common += 1
    # A run of one block: its container is the block's parent, not the block itself.
    depth = max(0, min(common, len(head) - 1) - 1)
    # The run may spill over the article's own element into teasers or comments after it: an
    # element that declares itself the article and holds most of the run is the container.
    mass: dict[tuple[int, int], int] = {}
    total = 0
    for block, score in zip(blocks[first:last + 1], scores[first:last + 1]):
        if score > 0:
            total += score
            for d in block.semantic:
                if d > depth:
                    key = (d, block.path[d])
                    mass[key] = mass.get(key, 0) + score
    run = [(block, score) for block, score in zip(blocks[first:last + 1], scores[first:last + 1]) if score > 0]
    # Deepest first; between elements of one depth holding half each (a page that prints its article
    # twice), the first in the document: the mass was gathered in document order and the sort is stable.
    for key in sorted((key for key, held in mass.items() if held * 2 >= total), key=itemgetter(0), reverse=True):
        # Text in an article-like sibling of the candidate means a body split into sections
        # (text, ad, text): the candidate is one section, not the article.
        d, element = key
        sample = next(block for block, _ in run if len(block.path) > d and block.path[d] == element)
        split = False
        for level in sample.semantic:
            if depth < level <= d:
                here, parent = sample.path[level], sample.path[level - 1]
                siblings = sum(
                    score for block, score in run
                    if level in block.semantic and block.path[level] != here and block.path[level - 1] == parent
                )
                split = split or siblings * _SPLIT_SHARE >= mass[key]
        if not split:
            return key
    return depth, head[depth]


@dataclass(frozen=True)
class _Excused:
    """Furniture hints overruled on this page: elements that wrap the article, and layout words."""

    wrappers: frozenset[tuple[int, int]] = frozenset()  # (depth, id) of elements holding most of a run
    layout: frozenset[str] = frozenset()  # blocks.LAYOUT_HINTS words marking most of a run

    def __or__(self, other: _Excused) -> _Excused:
        return _Excused(self.wrappers | other.wrappers, self.layout | other.layout)

    def furniture(self, block: Block) -> bool:
        """Whether a furniture hint not overruled marks an element above the block."""
        path = block.path
        return any(
            hint not in self.layout and (d, path[d]) not in self.wrappers
            for d, hint in zip(block.furniture, block.hints)
        )


def _excused(blocks: list[Block], first: int, last: int, scores: list[int]) -> _Excused:
    """The furniture hints a run overrules: those whose elements hold at least half of its prose.

    One element that does is a wrapper (class="content-with-sidebar"), unless it is a notice
    (blocks.NOTICE_HINTS): on a consent wall a cookie notice is the only text. A word that says
    where an element sits rather than what it holds (blocks.LAYOUT_HINTS) is the page's layout
    vocabulary when the elements it marks do between them: every section of a page builder's
    article is a "widget". Words that say what an element holds (comments, related links) always
    stand.
    """
    elements: dict[tuple[int, int], int] = {}
    words: dict[str, int] = {}
    total = 0
    for block, score in zip(blocks[first:last + 1], scores[first:last + 1]):
        if score > 0:
            total += score
            for d, hint in zip(block.furniture, block.hints):
                if hint not in NOTICE_HINTS:
                    key = (d, block.path[d])
                    elements[key] = elements.get(key, 0) + score
            for hint in LAYOUT_HINTS.intersection(block.hints):
                words[hint] = words.get(hint, 0) + score
    return _Excused(frozenset(key for key, held in elements.items() if held * 2 >= total),
                    frozenset(hint for hint, held in words.items() if held * 2 >= total))


def article_blocks(blocks: list[Block], title: str = "") -> list[Block]:
    """The blocks of the element that holds the article, minus furniture, link lists and the title."""
    if not blocks:
        return []
    # Teasers (lists of other articles) count against a run, so it does not settle on them; in
    # the container that holds the run they are kept, as the sections of a listicle whose
    # headings link out (a linked heading itself goes, as any link does).
    teasers = _teasers(blocks)
    plain = [(-len(b.text) if i in teasers else _score(b)) for i, b in enumerate(blocks)]
    strict = [(-len(b.text) if b.furniture else score) for b, score in zip(blocks, plain)]
    first, last, best = _best_run(strict)
    tries = [(first, last, strict, _Excused())]
    first_u, last_u, best_u = _best_run(plain)
    if best * 2 < best_u:
        # Honouring every furniture hint left only a weak run: some hints mark elements that
        # wrap the article. The run found without them says which; honoured without those, the
        # run settles on the article. Failing that, the run as found stands, and if it turns
        # out to be furniture after all (a long comment thread), the strict one.
        excused = _excused(blocks, first_u, last_u, plain)
        relaxed = [(-len(b.text) if excused.furniture(b) else score) for b, score in zip(blocks, plain)]
        first_r, last_r, _ = _best_run(relaxed)
        tries[:0] = [(first_r, last_r, relaxed, excused), (first_u, last_u, plain, excused)]
    for first, last, scores, excused in tries:
        if last >= first:
            chosen = _read_container(blocks, first, last, scores, excused | _excused(blocks, first, last, scores),
                                     title)
            if chosen:
                return chosen
    return []


def _read_container(blocks: list[Block], first: int, last: int, scores: list[int], excused: _Excused,
                    title: str) -> list[Block]:
    depth, container = _container(blocks, first, last, scores)
    chosen = []
    for block in blocks:
        path = block.path
        if len(path) <= depth or path[depth] != container:
            continue
        if block.furniture and excused.furniture(block):
            continue  # furniture: share bars, captions, related links; a comment thread or a notice
        if block.link_chars > len(block.text) * (_PROSE_LINK_SHARE if block.tag == "p" else _LINK_SHARE):
            continue  # a link list; a paragraph is one only when nearly all of it is linked
        if block.tag == "h1" and title and block.text == title:
            continue
        if block.tag not in _ITEM_TAGS and _LABEL.match(block.text):
            continue
        chosen.append(block)
    return chosen
