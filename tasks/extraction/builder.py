"""BeautifulSoup's lxml tree builder, leaving out the whitespace between elements that no reader sees.

Two thirds of a page's strings are whitespace between tags, and each costs BeautifulSoup a string
object: together about a quarter of building the tree. The ones beside an edge of a visible block
element (a <div>, <p>, <li>... neither skipped nor hidden) are left out: the block reader ends a
line at every such edge, and a line's text is its words joined by single spaces, so whitespace at
either end of a line changes nothing; other readers take text with every run of whitespace
collapsed. Inside an element whose text is read as it stands (<time>, <title>) or that the block
reader skips (whose strings it may count), every string is kept. (A site rule's selector that
matches text, ``:-soup-contains``, sees an element's text without that whitespace.)
"""

from __future__ import annotations

from typing import Any

from bs4.builder import LXMLTreeBuilder

from tasks.extraction.blocks import BLOCK_TAGS, SKIP_TAGS, is_hidden

# Elements whose every edge ends a line for the block reader, unless hidden by their attributes.
_EDGE_TAGS = BLOCK_TAGS - SKIP_TAGS
# Elements inside which strings are kept as they come.
_KEPT_INSIDE = SKIP_TAGS | {"time", "title"}
_OTHER, _EDGE, _KEPT = 0, 1, 2


class LineEdgeBuilder(LXMLTreeBuilder):
    """The lxml HTML builder, without whitespace-only strings at the edges of visible block elements.

    lxml reports the document as events; a whitespace-only run of text is held until the next
    event says whether it sits at such an edge (then it is dropped) or not (then it is passed on).
    What is passed on goes through ``_open``, ``_close`` and ``_text``: here lxml's builder, which
    hands each to BeautifulSoup; ``tasks/extraction/direct_tree.py`` builds the tree's objects itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kinds: list[int] = []  # per open element: _OTHER, _EDGE or _KEPT
        self._kept_depth = 0  # open elements inside which strings are kept
        self._held: list[str] = []  # whitespace waiting for the next event
        self._after_edge = False  # nothing but whitespace since the last edge

    def _open(self, tag: str, attrib: Any) -> None:
        super().start(tag, attrib)

    def _close(self, tag: str) -> None:
        super().end(tag)

    def _text(self, content: str) -> None:
        super().data(content)

    def _release(self) -> None:
        if self._held:
            self._text("".join(self._held))
            self._held.clear()

    def start(self, tag: Any, attrib: Any, nsmap: Any = {}) -> None:  # noqa: B006 (lxml's signature)
        if self._kept_depth or tag in _KEPT_INSIDE:
            kind = _KEPT
            self._kept_depth += 1
        elif tag in _EDGE_TAGS and not (attrib and is_hidden(attrib)):
            kind = _EDGE
        else:
            kind = _OTHER
        if kind == _EDGE:
            self._held.clear()
        else:
            self._release()
        self._kinds.append(kind)
        self._after_edge = kind == _EDGE
        self._open(tag, attrib)  # lxml's HTML parser maps no namespaces: nsmap is always empty

    def end(self, tag: Any) -> None:
        kind = self._kinds.pop() if self._kinds else _OTHER
        if kind == _EDGE:
            self._held.clear()
        else:
            self._release()
            if kind == _KEPT:
                self._kept_depth -= 1
        self._after_edge = kind == _EDGE
        self._close(tag)

    def data(self, content: Any) -> None:
        if self._kept_depth:
            self._text(content)
        elif content.isspace():
            if not self._after_edge:
                self._held.append(content)
        else:
            self._release()
            self._after_edge = False
            self._text(content)

    def comment(self, text: Any) -> None:
        self._release()
        self._after_edge = False
        super().comment(text)

    def doctype(self, name: Any, pubid: Any, system: Any) -> None:
        self._release()
        self._after_edge = False
        super().doctype(name, pubid, system)

    def pi(self, target: Any, data: Any) -> None:
        self._release()
        self._after_edge = False
        super().pi(target, data)

    def close(self) -> None:
        self._release()
        super().close()
