"""The one place Gleaner reaches past BeautifulSoup's public API: the parse tree's objects made here.

Building the tree through BeautifulSoup's own path was half of parsing a page
(``bench/results/tree_build.md``, ``bench/results/e2e-profile.md``). For each element
lxml reports, BeautifulSoup's lxml builder copies the attributes twice while it looks for XML
namespaces (an HTML parser has none), ``Tag.__init__`` sets about twenty fields through branches
for cases a parse never meets, and each string is linked into the tree twice, then checked by a
walk up to the root for a repair that a parse in document order never needs. ``DirectBuilder``
sets the same fields to the same values, in one pass: the tree is the same, object for object
(``tree_signature``), in about half the time.

Written against BeautifulSoup 4.15, pinned in pyproject.toml. It relies on the soup's private
parse state (``current_data``, ``currentTag``, ``tagStack``, ``_most_recent_element``,
``open_tag_counter``, the whitespace and string-container stacks, ``_popToTag``) and on the
fields a ``Tag`` and a ``NavigableString`` carry. ``check`` builds a document of every kind of
node a page gives (preserved whitespace, ruby text, a declared charset, comments, a doctype,
mis-nested tags) both ways, once per process; if the trees differ, or BeautifulSoup is not the
tested release, ``tree_builder`` hands out BeautifulSoup's own path with a warning instead.
tests/test_direct_tree.py is the canary.

An element with an attribute whose name starts with ``{`` (a template's placeholder left in the
page, ``<a {count}>``) is handed to BeautifulSoup's own path, which reads the name as an XML
namespace and the tree stays the same.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import bs4
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PageElement

from tasks.extraction.builder import LineEdgeBuilder

log = logging.getLogger("gleaner.extraction")

TESTED = "4.15"  # the BeautifulSoup release this module was written against
# BeautifulSoup.ASCII_SPACES: a string of only these becomes a single space or line break.
_ASCII_SPACES = "\x20\x0a\x09\x0c\x0d"
_new_tag = Tag.__new__
_new_str = str.__new__


class DirectBuilder(LineEdgeBuilder):
    """``LineEdgeBuilder`` making the tree's ``Tag`` and ``NavigableString`` objects itself.

    For the trees ``extract.parse`` asks for only: attributes as plain strings in plain dicts
    (``multi_valued_attributes=None``, ``attribute_dict_class=dict``), no ``parse_only``, no
    custom element classes.
    """

    def initialize_soup(self, soup: BeautifulSoup) -> None:
        super().initialize_soup(soup)
        if (self.cdata_list_attributes or self.attribute_dict_class is not dict or soup.parse_only is not None
                or soup.element_classes):
            raise ValueError("DirectBuilder builds plain trees only: multi_valued_attributes=None, "
                             "attribute_dict_class=dict, no parse_only, no element_classes")
        # The fields every Tag of this tree starts with, as Tag.__init__ sets them for this builder.
        self._fields = {
            "parser_class": soup.__class__, "namespace": None, "prefix": None,
            "sourceline": None, "sourcepos": None,
            "attribute_value_list_class": self.attribute_value_list_class,
            "known_xml": self.is_xml, "hidden": False,
            "cdata_list_attributes": self.cdata_list_attributes,
            "preserve_whitespace_tags": self.preserve_whitespace_tags,
            "next_element": None, "next_sibling": None,
        }

    def _open(self, name: str, attrib: Any) -> None:
        # BeautifulSoup.handle_starttag and Tag.__init__ (with setup and pushTag), for this tree.
        for key in attrib:
            if key[:1] == "{":
                super()._open(name, attrib)
                return
        soup = self.soup
        if soup.current_data:
            self._end_text(soup)
        parent = soup.currentTag
        tag = _new_tag(Tag)
        fields = tag.__dict__
        fields.update(self._fields)
        fields["name"] = name
        fields["_namespaces"] = self.active_namespace_prefixes[-1]
        fields["attrs"] = dict(attrib)
        fields["contents"] = []
        fields["parent"] = parent
        previous = soup._most_recent_element
        fields["previous_element"] = previous
        if previous is not None:
            previous.next_element = tag
        siblings = parent.contents
        if siblings:
            last = siblings[-1]
            fields["previous_sibling"] = last
            last.next_sibling = tag
        else:
            fields["previous_sibling"] = None
        fields["can_be_empty_element"] = name in self.empty_element_tags
        containers = self.string_containers
        fields["interesting_string_types"] = (
            {containers[name]} if name in containers else Tag.MAIN_CONTENT_STRING_TYPES)
        if name == "meta":
            self.set_up_substitutions(tag)  # a declared charset becomes a substitutable value
        soup._most_recent_element = tag
        siblings.append(tag)
        soup.tagStack.append(tag)
        soup.currentTag = tag
        soup.open_tag_counter[name] += 1
        if name in self.preserve_whitespace_tags:
            soup.preserve_whitespace_tag_stack.append(tag)
        if name in containers:
            soup.string_container_stack.append(tag)

    def _close(self, name: str) -> None:
        # BeautifulSoup.handle_endtag: lxml's events nest, so the element closed is the current one.
        soup = self.soup
        if soup.current_data:
            self._end_text(soup)
        current = soup.currentTag
        stack = soup.tagStack
        if current.name != name or len(stack) < 2:
            soup._popToTag(name, None)
            return
        stack.pop()
        soup.open_tag_counter[name] -= 1
        if soup.preserve_whitespace_tag_stack and soup.preserve_whitespace_tag_stack[-1] is current:
            soup.preserve_whitespace_tag_stack.pop()
        if soup.string_container_stack and soup.string_container_stack[-1] is current:
            soup.string_container_stack.pop()
        soup.currentTag = stack[-1]

    def _text(self, content: str) -> None:
        self.soup.current_data.append(content)

    def _end_text(self, soup: BeautifulSoup) -> None:
        # BeautifulSoup.endData and object_was_parsed for a string, in document order.
        data = soup.current_data
        text = data[0] if len(data) == 1 else "".join(data)
        soup.current_data = []
        if not soup.preserve_whitespace_tag_stack and not text.strip(_ASCII_SPACES):
            text = "\n" if "\n" in text else " "
        kind = NavigableString
        if soup.string_container_stack:
            kind = self.string_containers.get(soup.string_container_stack[-1].name, kind)
        string = _new_str(kind, text)
        parent = soup.currentTag
        previous = soup._most_recent_element
        string.hidden = False
        string.parent = parent
        string.previous_element = previous
        if previous is not None:
            previous.next_element = string
        string.next_element = None
        string.next_sibling = None
        siblings = parent.contents
        if siblings:
            last = siblings[-1]
            string.previous_sibling = last
            last.next_sibling = string
        else:
            string.previous_sibling = None
        soup._most_recent_element = string
        siblings.append(string)


def tree_signature(soup: BeautifulSoup) -> list[tuple]:
    """Every node of the tree in document order, with its class, its text or its fields, and every
    reference to a node (its links, its contents, the soup's stacks) written as that node's position
    in the order: equal for two trees that are the same object for object."""
    nodes = [soup, *soup.descendants]
    at = {id(node): i for i, node in enumerate(nodes)}

    def plain(key: str, value: Any) -> Any:
        if isinstance(value, PageElement):
            return ("node", at.get(id(value)))
        if isinstance(value, list) and value and isinstance(value[0], PageElement):
            return [plain(key, item) for item in value]
        if key == "attrs":
            return [(k, type(v).__name__, str(v)) for k, v in value.items()]
        if key == "builder":
            return isinstance(value, LineEdgeBuilder)
        if isinstance(value, (set, frozenset)):
            return sorted(map(repr, value))
        return value

    return [(type(node).__name__, None if isinstance(node, Tag) else str(node),
             [(key, plain(key, value)) for key, value in sorted(vars(node).items())])
            for node in nodes]


def build(markup: str, builder: type[LineEdgeBuilder]) -> BeautifulSoup:
    """The soup ``extract.parse`` builds, with the given builder.

    ``multi_valued_attributes=None`` keeps ``class`` as one string: cheaper to build and to match.
    ``attribute_dict_class=dict``: the lxml builder's default (``XMLAttributeDict``) turns None and
    numbers into strings in a Python ``__setitem__``, three times an attribute (a tenth of the
    build), where lxml hands every value over as a string already; bs4's ``AttributeDict`` is a
    dict subclass, slower to make and tracked by the garbage collector, which a plain dict of
    strings is not (a fifth fewer objects for its pass).
    """
    return BeautifulSoup(markup, builder=builder, multi_valued_attributes=None, attribute_dict_class=dict)


# Every kind of node and stack the builder handles: whitespace kept (<pre>, <textarea>) and
# dropped, ruby text (a string container), a declared charset both ways, a comment, a doctype, a
# processing instruction, a void element, mis-nested and unclosed tags, entities, attributes in
# their order.
CHECK_PAGE = """<!DOCTYPE html><?php echo 1 ?>
<html lang="ja"><head><meta charset="utf-8">
<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><title> A &amp; B </title></head>
<body><!-- a comment --><div class="a" id="b" data-x="1">
  <p>one <b>two <i>three</b> four</i> five<br>six <b>a</b> \n\t <i>b</i></p>
  <pre>  kept
   as is <b> x </b>
	  <i>y</i></pre><textarea>  a  </textarea>
  <p><ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp></ruby>&nbsp;&lt;x&gt;</p>
  <ul><li>a<li {count}="" b="1">b</ul><table><td>c</table><span>tail
</div><p hidden> h </p> end</body></html>"""


@functools.cache
def check() -> bool:
    """Whether ``DirectBuilder`` may be used in this process: the tested release, and the same tree
    as BeautifulSoup's own path on ``CHECK_PAGE``. Logs why not."""
    if not (bs4.__version__ == TESTED or bs4.__version__.startswith(TESTED + ".")):
        log.warning("BeautifulSoup %s, not the tested %s: building parse trees through its own (slower) path",
                    bs4.__version__, TESTED)
        return False
    try:
        same = tree_signature(build(CHECK_PAGE, DirectBuilder)) == tree_signature(build(CHECK_PAGE, LineEdgeBuilder))
    except Exception:  # noqa: BLE001 - any failure means the internals moved; the stock path still works
        log.warning("the direct tree builder failed its check; building parse trees through "
                    "BeautifulSoup's own path", exc_info=True)
        return False
    if not same:
        log.warning("the direct tree builder makes a different tree than BeautifulSoup %s; building "
                    "parse trees through BeautifulSoup's own path", bs4.__version__)
    return same


def tree_builder() -> type[LineEdgeBuilder]:
    """The builder ``extract.parse`` uses: ``DirectBuilder`` when ``check`` passes."""
    return DirectBuilder if check() else LineEdgeBuilder
