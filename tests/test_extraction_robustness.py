"""Mangled and generated HTML: the extractor returns an article or raises ExtractionError, nothing else."""

from __future__ import annotations

import gc
import gzip

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.extraction import extract_article
from worker.errors import ExtractionError
from worker.models import Article

STORY = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Storm | Daily</title>"
    "<script type='application/ld+json'>{\"@type\": \"NewsArticle\", \"headline\": \"Storm\"}</script>"
    "</head><body><nav><a href='/'>Home</a></nav><article><h1>Storm closes the coast road</h1>"
    + "".join(f"<p>Paragraph {i}: the storm closed the coast road for most of the day, the police said.</p>"
              for i in range(8))
    + "</article><footer>Daily News</footer></body></html>"
)

TOKENS = st.sampled_from([
    "<p>", "</p>", "<div>", "</div>", "<div class='comments'>", "<article>", "</article>", "<a href='/x'>",
    "</a>", "<script>", "</script>", "<style>", "<!--", "-->", "<br>", "<h1>", "</h1>", "<li>", "<ul>",
    "<table><tr><td>", "<nav>", "</nav>", "<meta property='og:title' content='T'>", "<time datetime='2019'>",
    "<![CDATA[", "<?xml ?>", "<!DOCTYPE html>", "&amp;", "&#0;", "&#xD800;", "\x00", "\ufffd", "<", ">", "\"", "'",
    "The storm closed the coast road for most of the day. ", "word ", "\n",
])


def _check(html: bytes | str) -> None:
    try:
        article = extract_article(html, "https://news.example/2019/11/20/storm")
    except ExtractionError as exc:
        assert str(exc)  # a reason a person can read
    else:
        assert isinstance(article, Article)
        assert all(isinstance(p, str) and p for p in article.body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=120).map("".join))
def test_generated_tag_soup(html: str) -> None:
    _check(html)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=500))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(STORY)), st.integers(0, len(STORY)), st.integers(0, 3))
def test_mangled_page(cut: int, splice: int, how: int) -> None:
    # Truncated, spliced, re-encoded: the ways real fetches come back broken.
    if how == 0:
        html: bytes | str = STORY[:cut]
    elif how == 1:
        html = STORY[:min(cut, splice)] + STORY[max(cut, splice):]
    elif how == 2:
        html = STORY.encode("utf-8")[:cut] + b"\xff\xfe\x80" + STORY.encode("utf-8")[cut:]
    else:
        html = STORY.encode("utf-16")
    _check(html)


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n ",
        "x" * 100_000,
        "<p>" + "word " * 200_000,  # a megabyte on one line
        "<script>" * 20_000,  # scripts never closed
        "<nav>" * 20_000 + "<p>" + "The storm closed the road. " * 20,
        "<!--" * 20_000,
        "<div>" * 20_000 + "<p>" + "The storm closed the coast road for the day. " * 5,
        "<b><i>" * 10_000 + "The storm closed the coast road for the day. " * 5,
        "<table><tr><td>" * 5_000 + "The storm closed the coast road for the day. " * 5,
        "<script type='application/ld+json'>" + "[" * 50_000 + "</script><p>" + "Storm news today. " * 10,
        "<html><head><title>Only a head</title></head></html>",
        "<html><body></body></html>",
        STORY.replace("<body>", "").replace("</body>", ""),  # no body element at all
        b"\x1f\x8b" + b"\x00" * 100,
        gzip.compress(STORY.encode()),  # still compressed: bytes, not HTML
        bytes(range(256)) * 100,
    ],
    ids=lambda h: repr(h[:24]),
)
def test_pathological_inputs(html: bytes | str) -> None:
    _check(html)


def test_wrong_type_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError, match="expected HTML"):
        extract_article(12345)  # type: ignore[arg-type]


def test_declared_charset_decodes_the_bytes() -> None:
    page = ("<html><head><meta charset='windows-1252'></head><body><article>"
            + "<p>Caf\u00e9 owners say the storm closed the coast road for most of the day.</p>" * 3
            + "</article></body></html>").encode("cp1252")
    assert extract_article(page).body[0].startswith("Caf\u00e9 owners")
    # The HTTP header's charset wins over the page's own declaration.
    assert extract_article(page, charset="iso-8859-1").body[0].startswith("Caf\u00e9")
    utf8 = page.decode("cp1252").replace("windows-1252", "utf-8").encode("utf-8")
    assert extract_article(utf8).body[0].startswith("Caf\u00e9 owners")


# --- the bad pages of issue 15: each ends with a clear reason or a correct record ---------------

CAFE = ("<html><head><meta charset='{charset}'><title>La temp\u00eate</title></head><body><article><h1>La temp\u00eate</h1>"
        + "<p>Le caf\u00e9 du port a ferm\u00e9 apr\u00e8s la temp\u00eate, a d\u00e9clar\u00e9 le maire aux journalistes.</p>" * 5
        + "</article></body></html>")


def test_utf8_labelled_as_latin1_is_read_as_utf8() -> None:
    # Labelled in the page and in the HTTP header alike: valid UTF-8 bytes are UTF-8 whatever the label says.
    page = CAFE.format(charset="iso-8859-1").encode("utf-8")
    assert extract_article(page).body[0].startswith("Le caf\u00e9 du port")
    assert extract_article(page, charset="windows-1252").title == "La temp\u00eate"


def test_legacy_encoding_labelled_utf8_or_not_labelled_is_detected() -> None:
    for page in (CAFE.format(charset="utf-8"), CAFE.replace("<meta charset='{charset}'>", "")):
        article = extract_article(page.encode("cp1252"))
        assert article.body[0].startswith("Le caf\u00e9 du port"), article.body[0]


def test_a_utf16_label_is_believed() -> None:
    page = CAFE.format(charset="utf-16").encode("utf-16-le")  # no BOM: only the label says so
    assert extract_article(page, charset="utf-16-le").body[0].startswith("Le caf\u00e9 du port")


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        ("", "empty page"),
        ("<html><head><script>render(document.body)</script></head><body><script src='/app.js'></script>"
         "<noscript>Please enable JavaScript.</noscript></body></html>", "no article text found: the page shows no text"),
        ("<html><body><div class='cookie-consent'><p>We use cookies to improve your experience, to show you "
         "personalised content and to analyse our traffic. By clicking accept you agree to our use of cookies "
         "as described in our cookie policy.</p><button>Accept</button><button>Reject</button></div></body></html>",
         "no article text found"),
        ("<html><body><div id='gdpr-wall'>" + "<p>Your privacy matters to us and to our partners, who store and "
         "read information on your device to show you relevant content and measure it.</p>" * 4
         + "</div></body></html>", "no article text found"),
    ],
    ids=["empty", "script only", "cookie banner only", "consent wall only"],
)
def test_pages_without_an_article_end_with_a_reason(page: str, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        extract_article(page)


def test_a_five_megabyte_page_gives_its_story() -> None:
    teasers = "".join(f"<div class='card'><a href='/n/{i}'>Another story number {i}</a><span>2 min read</span></div>"
                      for i in range(55_000))
    page = STORY.replace("</article>", "</article>" + teasers)
    assert len(page) > 5_000_000
    assert extract_article(page).body == extract_article(STORY).body


def test_a_hundred_thousand_nested_elements_end_cleanly() -> None:
    for page in ("<div>" * 100_000 + STORY, "<span>" * 100_000 + STORY,
                 "<div>" * 100_000 + STORY + "</div>" * 100_000):
        _check(page)


def test_bad_pages_harm_nothing_else_in_the_batch() -> None:
    good = STORY.encode("utf-8")
    before = extract_article(good, "https://news.example/a")
    batch = [b"", b"\xff\xfe\x00<", "<div>" * 100_000, CAFE.format(charset="utf-8").encode("cp1252"),
             "<html><body><div class='cookie-banner'><p>We use cookies.</p></div></body></html>", good]
    results = []
    for page in batch:
        try:
            results.append(extract_article(page, "https://news.example/a"))
        except ExtractionError as exc:
            results.append(str(exc))
    assert [type(r).__name__ for r in results] == ["str", "str", "str", "Article", "str", "Article"]
    assert results[-1] == before
    assert gc.isenabled()  # the extractor pauses the collector while it builds a tree, and always resumes it


def test_empty_elements_nothing_reads_are_cut_before_parsing_and_the_rest_kept() -> None:
    from tasks.extraction.prepare import without_empty

    markup = (
        '<head><meta name="viewport" content="width=device-width"><meta property="og:title" content="T">'
        '<meta property="og:article&#x3A;published_time" content="2024-01-02">'
        '<link rel="stylesheet" href="a.css"><LINK REL="canonical" href="/story">'
        '<META NAME="Author" CONTENT="Zoë Example"><meta name="description" content="Zoë\'s story">'
        '<meta property="og:ſite_name" content="Zoë"></head>'
        '<body><p>One<img src="x.jpg" alt="a > b">two <input type="text" value=\'>\'> three</p></body>'
    )
    assert without_empty(markup) == (
        '<head><meta property="og:title" content="T">'
        '<meta property="og:article&#x3A;published_time" content="2024-01-02">'  # an entity may spell a key read
        '<LINK REL="canonical" href="/story">'
        '<META NAME="Author" CONTENT="Zoë Example">'  # keys in any case, text in any script
        '<meta property="og:ſite_name" content="Zoë"></head>'  # case folded as the regex engine does ("ſ" is "s")
        '<body><p>Onetwo  three</p></body>'  # a ">" inside a quoted value ends no tag
    )


@given(st.lists(st.text("abc:_-.", min_size=1, max_size=4), min_size=1, max_size=8), st.text("abc:_-.x", max_size=12))
def test_any_of_finds_a_word_where_one_occurs(words: list[str], text: str) -> None:
    import re

    from tasks.extraction.prepare import any_of

    # The <meta> and <link> keys are looked for by this pattern, a trie of the words.
    assert (re.search(any_of(words), text) is not None) == any(word in text for word in words)


def test_raw_text_chrome_comments_and_instructions_are_cut_in_any_case_and_the_rest_kept() -> None:
    from tasks.extraction.prepare import prepare

    markup = (
        '<?xml version="1.0"?><HTML><head><SCRIPT type="application/ld+json">{"headline": "H"}</SCRIPT>'
        '<Style>p {}</Style></head><body><NAV><a href="/">Home</a><nav>Inner</nav></NAV><!-- note -->'
        '<section><select><option>One</option></select><p>Kept <svg><text>drawn</text></svg>text</p>'
        '<aside>Aside</aside><scripted>kept too</scripted><iframes>and this</iframes></section>'
        '<Footer>Foot</Footer></body></HTML>'
    )
    cut, documents = prepare(markup)
    assert cut == ('<HTML><head>  </head><body> <section> <p>Kept  text</p> <scripted>kept too</scripted>'
                   '<iframes>and this</iframes></section> </body></HTML>')
    assert documents == [{"headline": "H"}]
