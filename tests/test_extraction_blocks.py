"""The block reader: a page's lines of text, each with the furniture hints and article marks above it."""

from __future__ import annotations

import pytest

from tasks.extraction.blocks import read_blocks
from tasks.extraction.extract import parse


def _hints(attributes: str) -> tuple[str, ...]:
    blocks = read_blocks(parse(f"<html><body><div {attributes}><p>Some text of the page.</p></div></body></html>"))
    assert [block.text for block in blocks] == ["Some text of the page."]
    return blocks[0].hints


@pytest.mark.parametrize(("attributes", "hints"), [
    ('class="related-stories"', ("related",)),  # a distinctive word anywhere
    ('class="post-nav related"', ("nav",)),  # the leftmost hint, whichever pattern finds it
    ('class="related post-nav"', ("related",)),
    ('class="nav-related"', ("nav",)),
    ('class="navigation"', ("navigation",)),
    ('class="navbar"', ()),  # a short word only whole
    ('class="tag-politics"', ()),  # WordPress's label for the article itself
    ('class="entry tag"', ("tag",)),
    ('class="d-none"', ("dnone",)),
    ('class="x_d-none"', ()),  # "d-none" after a space only
    ('class="x d-none y"', ("dnone",)),
    ('class="commentary"', ()),
    ('class="story" id="comments"', ("comment",)),  # the id is read after the class
    ('class="articleMeta"', ("meta",)),  # the last word of a camelCase name
    ('class="story-body"', ()),
])
def test_an_elements_furniture_hint_is_its_leftmost_hint_word(attributes: str, hints: tuple[str, ...]) -> None:
    assert _hints(attributes) == hints


def test_empty_and_hidden_elements_hold_no_line_and_leave_the_lines_around_them_whole() -> None:
    soup = parse('<html><body><div class="sidebar"><span class="icon"></span><br><i></i></div>'
                 '<article><p>One <a href="/x">linked</a><b></b> two</p><p hidden>Gone</p>'
                 '<p style="display: none">Gone too</p><table><tr><td>a</td><td>b</td></tr></table></article>'
                 '</body></html>')
    blocks = read_blocks(soup)
    assert [(b.text, b.tag, b.link_chars, b.hints, len(b.semantic)) for b in blocks] == [
        ("One linked two", "p", 6, (), 1),
        ("a b", "tr", 0, (), 1),
    ]
    assert [b.text for b in read_blocks(soup, hidden=True)] == ["One linked two", "Gone", "Gone too", "a b"]
