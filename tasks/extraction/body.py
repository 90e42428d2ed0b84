"""The article's body: find the element that holds its text, then read that text block by block."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Doctype, Declaration, ProcessingInstruction, CData

_SPACES = re.compile(r"\s+")

# Elements that end the current line of text: a paragraph never spans one of their edges.
BLOCK_TAGS = frozenset(
    "address article aside blockquote body center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main menu nav ol p pre section summary table "
    "tbody td tfoot th thead tr ul br".split()
)
# Elements whose text is never article text.
SKIP_TAGS = frozenset(
    "button figcaption figure input label menu dialog head title meta link img picture video audio source "
    "map area embed script style noscript template svg iframe select textarea option".split()
)
# Elements that usually hold page furniture, but that some sites wrap around the whole page.
FURNITURE_TAGS = frozenset("nav footer aside form header".split())
HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_NOT_TEXT = (Comment, Doctype, Declaration, ProcessingInstruction, CData)

# class/id words of page furniture; matched on word boundaries within the attribute.
_NEGATIVE = re.compile(
    r"(?:^|[\s_-])(?:comments?|share|sharing|social|related|recommend\w*|newsletter|subscribe|promo\w*|"
    r"sponsor\w*|advert\w*|ads?|sidebar|breadcrumbs?|nav|navigation|menu|footer|masthead|cookie\w*|"
    r"popup|modal|widget|tags?|byline|author|caption|credit|disclaimer|outbrain|taboola|signup|"
    r"most-?popular|trending|more-stories|read-?more|pagination|toolbar)(?:$|[\s_-])",
    re.I,
)

_GOOD_MIN_CHARS = 60  # a block this long, with few links, counts toward its container's weight
_DOMINANT = 0.8  # descend into a child holding this share of its parent's good text


@dataclass(slots=True)
class Block:
    text: str
    tag: str
    link_chars: int
    path: tuple[int, ...]  # ids of every element from the root down to the block's owner
    furniture: tuple[int, ...]  # ids of the elements in path that look like page furniture


def _skipped(tag: Tag) -> bool:
    attrs = tag.attrs
    return tag.name in SKIP_TAGS or (
        bool(attrs) and (attrs.get("hidden") is not None or attrs.get("aria-hidden") == "true")
    )


def _furniture(tag: Tag) -> bool:
    """Whether the element's tag or class/id says navigation, comments, sharing, ads..."""
    name = tag.name
    if name in FURNITURE_TAGS:
        return True
    attrs = tag.attrs
    if not attrs or name in ("html", "body", "article", "main"):
        return False
    hint = attrs.get("class") or ""
    ident = attrs.get("id")
    if ident:
        hint = f"{hint} {ident}"
    return bool(hint) and _NEGATIVE.search(hint) is not None


def read_blocks(root: Tag) -> list[Block]:
    """Every line of visible text under root, in document order, with where it sits in the tree."""
    blocks: list[Block] = []
    parts: list[str] = []
    link_chars = 0
    path: list[int] = []
    furniture: list[int] = []
    owners: list[str] = []
    link_depth = 0

    def flush() -> None:
        nonlocal link_chars
        if parts:
            text = _SPACES.sub(" ", "".join(parts)).strip()
            if text:
                blocks.append(Block(text, owners[-1] if owners else "", link_chars, tuple(path), tuple(furniture)))
            parts.clear()
        link_chars = 0

    # An explicit stack instead of recursion: pages nest thousands of elements deep.
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            name, element = node
            path.pop()
            if furniture and furniture[-1] == element:
                furniture.pop()
            if name == "a":
                link_depth -= 1
            if name in BLOCK_TAGS:
                flush()
                owners.pop()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, _NOT_TEXT):
                parts.append(node)
                if link_depth:
                    link_chars += len(node.strip())
            continue
        if not isinstance(node, Tag) or _skipped(node):
            continue
        name = node.name
        if name in BLOCK_TAGS:
            flush()
            owners.append(name)
        elif name == "a":
            link_depth += 1
        key = id(node)
        path.append(key)
        if _furniture(node):
            furniture.append(key)
        stack.append((name, key))
        stack.extend(reversed(node.contents))
    flush()
    return blocks


def _is_good(block: Block) -> bool:
    length = len(block.text)
    return length >= _GOOD_MIN_CHARS and block.link_chars * 3 < length


def article_blocks(soup: BeautifulSoup, title: str = "") -> list[Block]:
    """The blocks of the element that holds the article, minus furniture, link lists and the title."""
    root = soup.body or soup
    blocks = read_blocks(root)
    good = [block for block in blocks if _is_good(block)]
    raw: dict[int, int] = {}
    for block in good:
        for element in block.furniture:
            raw[element] = raw.get(element, 0) + len(block.text)
    total = sum(len(block.text) for block in good)
    # Furniture-looking elements that hold most of the page's text are wrappers, not furniture.
    furniture = {element for element, weight in raw.items() if weight * 2 < total}
    weight: dict[int, int] = {}
    for block in good:
        if furniture.isdisjoint(block.furniture):
            for element in block.path:
                weight[element] = weight.get(element, 0) + len(block.text)
    if not weight:
        return []
    container = root
    while True:
        total = weight.get(id(container), 0)
        best, best_weight = None, 0
        for child in container.contents:
            if isinstance(child, Tag):
                w = weight.get(id(child), 0)
                if w > best_weight:
                    best, best_weight = child, w
        if best is None or best_weight < _DOMINANT * total:
            break
        container = best
    key = id(container)
    chosen = []
    for block in blocks:
        if key not in block.path or not furniture.isdisjoint(block.furniture):
            continue
        if block.link_chars * 2 > len(block.text):
            continue
        if block.tag == "h1" and title and block.text == title:
            continue
        chosen.append(block)
    return chosen
