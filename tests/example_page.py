"""The example record's article laid out in a realistic news page, built at run time from
../shared/seed/example-record.txt (never copied into the repo)."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "example-record.txt"
# The seed lives beside the project, not in it: a clone elsewhere skips what needs it, saying why.
needs_seed = pytest.mark.skipif(not SEED.exists(), reason=f"{SEED} is absent (../shared/seed beside the project)")
TITLE = "Stem cell transplant helps spinal cord injury patients regain motor function"


def printed_body() -> list[str]:
    """The body as the example prints it: paragraph 1, then paragraphs 2-10 twice."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    end = lines.index("Similar Readings (5 items)")
    return [line for line in lines[:end] if line.strip()]


def unique_paragraphs() -> list[str]:
    return list(dict.fromkeys(printed_body()))


def news_page(paragraphs: list[str], *, title: str = TITLE, published: str = "2025-03-21T18:30:00+09:00",
              canonical: str | None = None) -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    canon = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    related = "\n".join(
        f'<li><a href="/news/related-{i}.html">{html.escape(t)}</a></li>'
        for i, t in enumerate(["Ferry timetable changes for the winter season",
                               "City council approves new bicycle lanes downtown",
                               "Museum opens exhibition of early photographs"])
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | World News</title>
<meta property="og:title" content="{html.escape(title)}">
<meta property="article:published_time" content="{published}">
{canon}
</head><body>
<header><nav class="global-nav"><ul><li><a href="/">Home</a></li><li><a href="/news/">News</a></li>
<li><a href="/tv/">TV</a></li><li><a href="/radio/">Radio</a></li><li><a href="/about/">About us</a></li></ul></nav></header>
<main><article class="news-article">
<h1>{html.escape(title)}</h1>
<p class="date"><time datetime="{published}">March 21, 2025</time></p>
<div class="article-body">
{body}
</div>
<div class="share">Share this article: <a href="#">Facebook</a> <a href="#">X</a></div>
</article>
<aside class="related"><h2>Related articles</h2><ul>
{related}
</ul></aside></main>
<footer><p>Copyright World News Service. All rights reserved.</p>
<ul><li><a href="/privacy/">Privacy policy</a></li><li><a href="/terms/">Terms of use</a></li></ul></footer>
</body></html>"""
