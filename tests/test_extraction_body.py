"""The body: the article's paragraphs, headings and list items in order, and nothing around them."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tasks.extraction import SiteRules, extract_article
from worker.errors import ExtractionError

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "example-record.txt"


def seed_paragraphs() -> list[str]:
    """The example article's ten paragraphs: the first 19 printed lines are 1, then 2-10 twice."""
    if not SEED.exists():
        pytest.skip(f"seed record not found at {SEED}")
    lines = SEED.read_text(encoding="utf-8").splitlines()[:19]
    assert lines[1:10] == lines[10:19]
    return lines[:10]


def realistic_page(paragraphs: list[str]) -> str:
    """A news page as sites build them: chrome, a teaser list, comments and a footer round the story."""
    esc = html.escape
    story = "\n".join(f"<p>{esc(p)}</p>" for p in paragraphs[:5])
    story += (
        '<figure><img src="/img/cells.jpg" alt=""><figcaption>Cells under the microscope '
        "(Photo: Keio University)</figcaption></figure>"
        '<div class="ad-slot">Advertisement</div>'
    )
    story += "\n".join(f"<p>{esc(p)}</p>" for p in paragraphs[5:])
    teasers = "".join(
        f'<li class="teaser"><h3><a href="/news/{i}">{esc(t)}</a></h3>'
        f"<p>{esc(d)}</p></li>"
        for i, (t, d) in enumerate([
            ("Experts back the team's use of stem cells", "A government panel has approved a plan by a team of "
             "researchers to use stem cells in a clinical study of patients with injuries."),
            ("Heart cell transplant conducted in the southwest", "Doctors at a university hospital say they have "
             "transplanted sheets of heart muscle cells grown from stem cells into a patient."),
            ("Cornea transplant proved safe, effective", "A research team says a transplant of corneal tissue "
             "made from stem cells has proved safe and effective in a small group of patients."),
        ])
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Stem cell treatment helps patients with spinal cord injuries | World News</title>
<meta property="og:title" content="Stem cell treatment helps patients with spinal cord injuries">
<meta property="article:published_time" content="2025-03-21T18:30:00+09:00">
<script>window.dataLayer = [{{"page": "article"}}];</script><style>p {{ margin: 0 }}</style>
</head><body>
<div class="cookie-banner">We use cookies to give you the best experience on our site. By continuing to browse
the site you agree to our use of cookies and to our privacy policy.</div>
<header class="site-header"><a class="logo" href="/">World News</a>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news/">News</a></li><li><a href="/business/">Business</a></li>
<li><a href="/science/">Science</a></li><li><a href="/sport/">Sport</a></li></ul></nav></header>
<div class="breadcrumbs"><a href="/">Home</a> › <a href="/science/">Science</a></div>
<main><article>
<h1>Stem cell treatment helps patients with spinal cord injuries</h1>
<div class="byline">By Staff Writer · <time datetime="2025-03-21T18:30:00+09:00">March 21, 2025</time></div>
<div class="share-tools"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> <a href="#">Email</a></div>
<div class="article-body">
{story}
</div>
<p class="share-prompt">Share this article with your friends and family.</p>
<section class="related-articles"><h2>Related articles</h2><ul>{teasers}</ul></section>
<section id="comments"><h2>Comments (2)</h2>
<div class="comment"><p>This is wonderful news for everyone living with such an injury, I hope it comes soon.</p></div>
<div class="comment"><p>I have been following this research for years and the results look very promising.</p></div>
</section>
</article></main>
<aside class="sidebar"><h2>Most read</h2><ol><li><a href="/a">Storm closes schools across the region</a></li>
<li><a href="/b">Markets fall for a third day</a></li></ol></aside>
<footer><p>Copyright 2025 World News Service. All rights reserved. World News is not responsible for the
content of external sites.</p><ul><li><a href="/privacy">Privacy</a></li><li><a href="/terms">Terms</a></li></ul>
</footer></body></html>"""


def test_example_article_comes_out_as_exactly_its_ten_paragraphs() -> None:
    paragraphs = seed_paragraphs()
    article = extract_article(realistic_page(paragraphs).encode("utf-8"), "https://news.example/science/1")
    assert article.body == paragraphs
    assert article.title == "Stem cell treatment helps patients with spinal cord injuries"
    assert article.published_at is not None and article.published_at.utcoffset().total_seconds() == 9 * 3600


def test_headings_and_list_items_inside_the_article_are_kept_in_order() -> None:
    prose = "The council met on Tuesday evening to discuss the plans for the new bridge across the river."
    page = (
        "<html><body><nav><a href='/'>Home</a></nav><article><h1>Bridge plans</h1>"
        f"<p>{prose}</p><h2>What the plan includes</h2><ul><li>A cycle lane on both sides of the deck</li>"
        f"<li>A footpath wide enough for two prams</li></ul><p>{prose} Again.</p>"
        "<blockquote><p>We have waited long enough for this bridge, said one resident at the meeting.</p>"
        f"</blockquote><p>{prose} Once more.</p></article></body></html>"
    )
    assert extract_article(page).body == [
        prose,
        "What the plan includes",
        "A cycle lane on both sides of the deck",
        "A footpath wide enough for two prams",
        f"{prose} Again.",
        "We have waited long enough for this bridge, said one resident at the meeting.",
        f"{prose} Once more.",
    ]


def test_repeated_paragraphs_in_the_html_may_come_out_twice() -> None:
    text = "A paragraph long enough to count as prose in any article that anyone would write about it."
    page = f"<html><body><article><p>{text}</p><p>{text}</p><p>{text} Third.</p></article></body></html>"
    assert extract_article(page).body == [text, text, f"{text} Third."]


def test_line_breaks_split_paragraphs_in_div_soup() -> None:
    one = "The first line of a story written without paragraph tags, as old sites still do."
    two = "The second line of that story, which a reader sees as a separate paragraph on screen."
    page = f"<html><body><div id='x'><div>{one}<br><br>{two}</div></div></body></html>"
    assert extract_article(page).body == [one, two]


def test_page_without_article_text_raises_a_clear_error() -> None:
    with pytest.raises(ExtractionError, match="no article text"):
        extract_article("<html><body><nav><a href='/'>Home</a></nav><ul><li><a href='/a'>A</a></li></ul>"
                        "</body></html>")


def test_site_rules_override_the_generic_extractor() -> None:
    paragraphs = seed_paragraphs()
    page = realistic_page(paragraphs)
    rules = SiteRules(title=".byline", body="section#comments", date="article time", drop=["h2"])
    article = extract_article(page, rules=rules)
    assert article.title.startswith("By Staff Writer")
    assert article.body == [
        "This is wonderful news for everyone living with such an injury, I hope it comes soon.",
        "I have been following this research for years and the results look very promising.",
    ]
    assert article.published_at is not None and article.published_at.day == 21


def test_site_rules_that_match_nothing_fall_back_to_the_generic_extractor() -> None:
    paragraphs = seed_paragraphs()
    article = extract_article(realistic_page(paragraphs), rules=SiteRules(body=".no-such-thing", title="#none"))
    assert article.body == paragraphs
    assert article.title == "Stem cell treatment helps patients with spinal cord injuries"


@pytest.mark.parametrize("selector", ["", "div[", "p:::x"])
def test_site_rules_reject_invalid_selectors_at_construction(selector: str) -> None:
    with pytest.raises(ValueError, match="selector"):
        SiteRules(body=selector)


def test_a_page_that_prints_its_article_twice_gives_the_first_copy_every_time() -> None:
    # Two elements of one depth each hold half of the run: the first in the document is the article,
    # whatever their places in memory (the choice once followed id(), and changed from run to run).
    paragraph = "A sentence long enough to count as prose in an article about the harbour's new ferry. " * 3
    copies = [f'<div class="{side}"><article><h2>{word} copy heading</h2><p>{word} {paragraph}</p>'
              f'<p>{paragraph}</p></article></div>' for side, word in (("wide", "First"), ("narrow", "Other"))]
    page = f"<html><body><div>{''.join(copies)}</div></body></html>"
    for _ in range(5):
        body = extract_article(page).body
        assert body[0] == "First copy heading" and not any(text.startswith("Other") for text in body)
