"""bench/memory.py's varied copies: each copy of a real page is still an article, and no two
copies are near-duplicates (else the memory run would store links, not records)."""

from __future__ import annotations

import pytest

from bench import corpora
from bench.memory import varied
from tasks.duplicates.minhash import MinHasher, jaccard
from tasks.duplicates.lsh import DEFAULT_THRESHOLD
from tasks.extraction import extract_article

# A few pages of every set there is, CJK and non-UTF-8 ones included where the set has them.
PAGES = [page for name in corpora.available() for page in corpora.load(name)[::150]]


@pytest.mark.skipif(not PAGES, reason="no shared corpus here")
def test_copies_are_articles_and_not_near_duplicates():
    hasher = MinHasher()
    checked = 0
    for page in PAGES:
        original = extract_article(page.html)
        if not original.body:
            continue
        first = varied(page.html, f"/copy1/{page.id}")
        assert first == varied(page.html, f"/copy1/{page.id}")  # a copy is the same each time it is served
        a = extract_article(first)
        b = extract_article(varied(page.html, f"/copy2/{page.id}"))
        assert a.body and b.body, page.id
        assert a.title != b.title, page.id
        similarity = jaccard(hasher.shingle_set(a.body), hasher.shingle_set(b.body))
        assert similarity < DEFAULT_THRESHOLD / 2, (page.id, similarity)
        checked += 1
    assert checked >= len(PAGES) // 2


def test_a_page_not_in_utf8_keeps_its_bytes_outside_the_words():
    page = "<html><head><title>Stra\xdfe heute</title></head><body><p>Die Stra\xdfe ist nass und kalt heute abend hier</p></body></html>"
    out = varied(page.encode("latin-1"), "/copy3/x").decode("latin-1")
    assert "Stra\xdfe" in out and out.count("<p>") == 1
    assert len(out.split()) > len(page.split())
