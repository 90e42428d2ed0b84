"""A page as a flat list of text blocks (paragraphs, headings, list items) in document order.

Each block remembers the elements above it, so the body finder can reason about containers
without walking the tree again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bs4 import NavigableString, Tag
from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

_NOT_LETTERS = re.compile(r"[^a-zA-Z]+")

# Elements that end the current line of text: a paragraph never spans one of their edges.
BLOCK_TAGS = frozenset(
    "address article aside blockquote body center dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li main menu nav ol p pre section summary table "
    "tbody tfoot thead tr ul br".split()
)
# Elements whose edges separate words but not lines: the cells of a table row read as one line.
_SPACED_TAGS = frozenset(("td", "th"))
# Elements whose text is never article text. Not <figure>: its caption goes (figcaption), but
# what else it holds is content (tables come wrapped in figures: <figure class="wp-block-table">).
SKIP_TAGS = frozenset(
    "button figcaption input label menu dialog title meta link img picture video audio source "
    "map area embed script style noscript template svg iframe select textarea option".split()
)
# Skipped elements that only ever hold a few words. One left open by broken markup ("<button><div>
# </button>") swallows the rest of the page in lxml's tree, where a browser would have closed it:
# holding more text than any of them would, it is read like any other element.
_SMALL_TAGS = frozenset("button label figcaption menu picture video audio map option".split())
_SWALLOWED_CHARS = 2000
# Elements that usually hold page furniture, but that some sites wrap around the whole page.
FURNITURE_TAGS = frozenset("nav footer aside form header".split())
_NOT_TEXT = (Comment, Doctype, Declaration, ProcessingInstruction, CData)

# class/id hints of page furniture: distinctive words anywhere, short ones as whole words (at the
# start or after a separator). Matched against the lower-cased class and id (twice as fast as a
# case-insensitive pattern), in three patterns rather than one: a pattern whose every alternative
# opens with a letter lets the regex engine skip to the positions where one of them may start, and
# the whole words are looked for at the start, then only after a separator. The leftmost of their
# matches is the hint (_furniture_match); two of them never match at one position.
_FURNITURE_ANYWHERE = re.compile(
    r"comment(?!ary)|related|share|sharing|social|newsletter|subscri|sponsor|advert|sidebar|breadcrumb|"
    r"navigation|footer|cookie|consent|gdpr|outbrain|taboola|promo|recommend|popular|trending|byline|caption|disclaimer|"
    r"signup|screen-?reader|sr-only|toolbar|pagination|masthead|widget"
)
_WHOLE_WORDS = (
    r"(?:ads?|ad-\w+|hidden|nav|menu|tags|author|meta|date|modal|popup|credits?|more|print|email)(?:$|[\s_-])|"
    # "tag" alone or last: "tag-politics" is the label WordPress puts on the article itself.
    r"tag(?:$|[\s_])"
)
_FURNITURE_FIRST_WORD = re.compile(r"d-none(?:$|\s)|" + _WHOLE_WORDS)
_FURNITURE_NEXT_WORD = re.compile(r"[\s_-](?:(?<=\s)d-none(?:$|\s)|" + _WHOLE_WORDS + ")")
# The same short words as the last word of a camelCase name ("InlineImage-imageEmbedCredit",
# "articleMeta"), as CSS modules and component libraries write them.
_CAMEL_HINT = re.compile(r"(?<=[a-z])(?:Ads?|Hidden|Nav|Menu|Tags?|Author|Meta|Date|Modal|Popup|Credits?|More|Print|Email)"
                         r"(?=$|[\s_-])")
# Furniture words that say where an element sits or how it is shown, or that it holds links
# (navigation), not that it holds prose of its own: themes and page builders put them on the
# article's own wrappers too ("content-sidebar-wrap", every section an "elementor-widget", each
# section of a long read a "content-nav-section"), so the body finder overrules them where they
# hold most of the article's prose. Words that name prose that is not the article (comments,
# related stories, notices) always stand.
LAYOUT_HINTS = frozenset("widget sidebar footer header form toolbar masthead hidden more meta nav navigation menu".split())
# Furniture words of notices that are never article text, not even wrapped around all of a page's
# text: on a consent wall, the cookie notice is all there is.
NOTICE_HINTS = frozenset(("cookie", "consent", "gdpr"))
# class/id hints of the element that holds the article's text (matched lower-cased, as above).
_ARTICLE_HINT = re.compile(
    r"(?:article|story|post|entry|news|blog)[_-]?(?:body|content|text)|articlebody|main-?content|"
    r"(?:^|\s)(?:content|article|story|post|entry)(?:$|\s)"
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


@dataclass(slots=True)
class Block:
    text: str
    tag: str  # the element that owns the line: p, h2, li, div...
    link_chars: int  # characters of the text inside <a>
    path: tuple[int, ...]  # ids of every element from the root down to the owner
    furniture: tuple[int, ...]  # depths (indexes into path) of the elements that look like furniture
    hints: tuple[str, ...]  # the word that made each of them look so ("nav", "widget", "comment"...)
    semantic: tuple[int, ...]  # depths of the elements that say "the article's text is here"


def is_hidden(attrs: Any) -> bool:
    """Whether an element's attributes hide it: hidden, aria-hidden, display: none."""
    style = attrs.get("style")
    return (
        attrs.get("hidden") is not None
        or attrs.get("aria-hidden") == "true"
        or (isinstance(style, str) and _HIDDEN_STYLE.search(style) is not None)
    )


def _swallowed(tag: Tag) -> bool:
    """Whether a small element holds more text than it ever would on its own (stops counting early)."""
    total = 0
    for text in tag.strings:
        total += len(text)
        if total > _SWALLOWED_CHARS:
            return True
    return False


def _furniture_match(lowered: str) -> re.Match[str] | None:
    """The leftmost furniture hint in a lower-cased class and id."""
    anywhere = _FURNITURE_ANYWHERE.search(lowered)
    word = _FURNITURE_FIRST_WORD.match(lowered) or _FURNITURE_NEXT_WORD.search(lowered)
    if word is None or (anywhere is not None and anywhere.start() < word.start()):
        return anywhere
    return word


def _look(name: str, cls: object, ident: object, prop: object) -> tuple[str, bool]:
    """(furniture word, declares itself the article) for an element of this name and attributes.

    The furniture word is the tag name or class/id hint word that says navigation, comments,
    sharing, ads... ("" if none); only an element that is not furniture may declare itself the
    article: <article>, <main>, articleBody, post-content...
    """
    if name in FURNITURE_TAGS:
        return name, False
    hint = cls if isinstance(cls, str) else ""
    if ident and isinstance(ident, str):
        hint = f"{hint} {ident}"
    lowered = hint.lower()
    if hint and name not in ("html", "body", "article", "main"):
        match = _furniture_match(lowered) or (None if hint == lowered else _CAMEL_HINT.search(hint))
        if match:
            return _NOT_LETTERS.sub("", match.group()).lower(), False
    if name in ("article", "main") or prop in ("articleBody", "text", "reviewBody"):
        return "", True
    return "", bool(hint) and _ARTICLE_HINT.search(lowered) is not None


# How an element without attributes looks: furniture by its name, or the article by its name.
_NO_LOOK = ("", False)
_PLAIN_LOOKS = {**{name: (name, False) for name in FURNITURE_TAGS}, "article": ("", True), "main": ("", True)}

# Markers on read_blocks' stack for leaving an element (ints: no tuple built per element).
_LEAVE, _LEAVE_BLOCK, _LEAVE_LINK = 0, 1, 2
# The attributes that may hide an element (is_hidden): most elements have none of them.
_HIDING_KEYS = frozenset(("hidden", "aria-hidden", "style"))

# Elements the metadata reader wants; handed over as the walk meets them.
COLLECT_TAGS = frozenset(("meta", "link", "title", "time"))


def read_blocks(root: Tag, collect: list[Tag] | None = None, *, hidden: bool = False) -> list[Block]:
    """Every line of visible text under root, in document order, with where it sits in the tree.

    Elements named in COLLECT_TAGS are appended to ``collect`` on the way, so metadata needs no
    second walk over the tree. ``hidden`` reads elements hidden by their attributes too (hidden,
    aria-hidden, display: none).
    """
    blocks: list[Block] = []
    parts: list[str] = []
    link_chars = 0
    path: list[int] = []
    # The elements on the path, and how many of them (from the root down) have been looked at: an
    # element's look (_look) matters only to the lines read while it is open, so it is taken when
    # the first of them is, and never for the many inline elements (links, spans) inside a line.
    open_tags: list[Tag] = []
    looked = 0
    furniture: list[int] = []
    hints: list[str] = []
    semantic: list[int] = []
    owners: list[str] = []
    link_depth = 0
    # A page repeats a few dozen class names over hundreds of elements: each is looked at once.
    looks: dict[tuple[str, object, object, object], tuple[str, bool]] = {}

    def flush() -> None:  # called only with parts to read: link_chars is 0 whenever parts is empty
        nonlocal link_chars, looked
        text = " ".join("".join(parts).split())
        if text:
            for depth in range(looked, len(open_tags)):
                tag = open_tags[depth]
                attrs = tag.attrs
                if attrs:
                    key = (tag.name, attrs.get("class"), attrs.get("id"), attrs.get("itemprop"))
                    look = looks.get(key)
                    if look is None:
                        look = looks[key] = _look(*key)
                else:
                    look = _PLAIN_LOOKS.get(tag.name, _NO_LOOK)
                hint, is_semantic = look
                if hint:
                    furniture.append(depth)
                    hints.append(hint)
                elif is_semantic:
                    semantic.append(depth)
            looked = len(open_tags)
            owner = owners[-1] if owners else ""
            blocks.append(Block(text, owner, min(link_chars, len(text)), tuple(path), tuple(furniture),
                                tuple(hints), tuple(semantic)))
        parts.clear()
        link_chars = 0

    # An explicit stack instead of recursion: pages nest thousands of elements deep. An element
    # with children is left at a marker pushed before them: _LEAVE, _LEAVE_BLOCK or _LEAVE_LINK.
    stack: list[object] = [root]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        kind = type(node)
        if kind is int:  # leaving an element
            if node == _LEAVE_BLOCK:  # the element's own last line belongs to it: flush before leaving
                if parts:
                    flush()
                owners.pop()
            elif node == _LEAVE_LINK:
                link_depth -= 1
            path.pop()
            open_tags.pop()
            depth = len(path)
            if looked > depth:
                looked = depth
                if furniture and furniture[-1] == depth:
                    furniture.pop()
                    hints.pop()
                if semantic and semantic[-1] == depth:
                    semantic.pop()
            continue
        if kind is NavigableString or (kind is not Tag and issubclass(kind, NavigableString)):
            # Plain strings first (nearly all); comments, doctypes... are not text.
            if kind is NavigableString or not issubclass(kind, _NOT_TEXT):
                parts.append(node)  # type: ignore[arg-type]
                if link_depth:
                    link_chars += len(node.strip())  # type: ignore[union-attr]
            continue
        tag: Tag = node  # type: ignore[assignment]
        name = tag.name
        if name in COLLECT_TAGS and collect is not None:
            collect.append(tag)
        attrs = tag.attrs
        if name in SKIP_TAGS:
            if name not in _SMALL_TAGS or not _swallowed(tag):
                continue
        elif attrs and not hidden and not _HIDING_KEYS.isdisjoint(attrs) and is_hidden(attrs):
            continue
        is_block = name in BLOCK_TAGS
        if is_block:
            if parts:
                flush()
        elif name in _SPACED_TAGS:
            parts.append(" ")
        children = tag.contents
        if not children:
            continue  # an empty element holds no line: where it sits in the tree matters to none
        if is_block:
            owners.append(name)
            push(_LEAVE_BLOCK)
        elif name == "a":
            link_depth += 1
            push(_LEAVE_LINK)
        else:
            push(_LEAVE)
        path.append(id(tag))
        open_tags.append(tag)
        stack.extend(reversed(children))
    if parts:
        flush()
    return blocks
