"""canonicalize_url folds URL variants into one spelling; pick_canonical trusts same-site links only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.urlnorm import canonicalize_url, pick_canonical, same_site, url_aliases
from worker.errors import InvalidURLError


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("HTTP://Example.COM/Path", "http://example.com/Path"),  # path case is meaningful
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/a?utm_source=tw&utm_medium=social&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?fbclid=IwAR0&gclid=xyz&msclkid=1", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1&c=", "https://example.com/a?a=1&b=2&c="),
        ("https://example.com/news/", "https://example.com/news"),
        ("https://example.com/news/index.html", "https://example.com/news"),
        ("https://example.com/index.php", "https://example.com/"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/%7euser/%c3%a9t%c3%a9", "https://example.com/~user/%C3%A9t%C3%A9"),
        ("https://example.com/été", "https://example.com/%C3%A9t%C3%A9"),
        ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),  # an encoded slash stays one segment
        ("https://Example.com./a", "https://example.com/a"),
        ("https://bücher.de/", "https://xn--bcher-kva.de/"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://example.com/story/amp/", "https://example.com/story"),
        ("https://example.com/story?amp=1", "https://example.com/story"),
        ("https://example.com/story?outputType=amp&page=2", "https://example.com/story?page=2"),
        ("https://amp.example.com/story", "https://example.com/story"),
        ("https://www-example-com.cdn.ampproject.org/c/s/www.example.com/story/amp", "https://www.example.com/story"),
    ],
)
def test_variants_fold_to_one_spelling(variant: str, canonical: str) -> None:
    assert canonicalize_url(variant) == canonical


def test_distinct_pages_stay_distinct() -> None:
    urls = [
        "https://example.com/a",
        "https://www.example.com/a",  # www may be another server; not folded
        "https://example.com/a?id=1",
        "https://example.com/a?id=2",
        "http://example.com/a",
        "https://example.com/A",
    ]
    assert len({canonicalize_url(u) for u in urls}) == len(urls)


def test_amp_kept_when_asked() -> None:
    assert canonicalize_url("https://example.com/story/amp", strip_amp=False) == "https://example.com/story/amp"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "ftp://example.com/file",
        "javascript:alert(1)",
        "mailto:someone@example.com",
        "file:///etc/passwd",
        "example.com/no-scheme",
        "http:///no-host",
        "https://example.com:99999/",
        "https://example.com:port/",
        "https://exa mple.com/",
        "https://example.com/\nx",
        "http://[::1/",
    ],
)
def test_malformed_or_refused_urls_raise(bad: str) -> None:
    with pytest.raises(InvalidURLError):
        canonicalize_url(bad)


_hosts = st.sampled_from(["example.com", "Example.COM", "www.news.example.org", "bücher.de", "10.0.0.1"])
_segments = st.lists(st.text(alphabet="abcXYZ019-._~%é /", max_size=8), max_size=4)
_params = st.lists(
    st.tuples(st.sampled_from(["a", "b", "utm_source", "fbclid", "q", "amp"]), st.text(alphabet="xyz1 &=%é", max_size=4)),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http", "HTTPS"]), _hosts, _segments, _params, st.text(alphabet="ab#", max_size=3))
def test_canonical_form_is_a_fixed_point(scheme, host, segments, params, fragment) -> None:
    from urllib.parse import urlencode

    url = f"{scheme}://{host}/{'/'.join(segments)}"
    if params:
        url += "?" + urlencode(params)
    url += "#" + fragment
    try:
        once = canonicalize_url(url)
    except InvalidURLError:
        return
    assert canonicalize_url(once) == once
    assert "#" not in once and "utm_" not in once and "fbclid" not in once


def test_pick_canonical_prefers_same_site_link() -> None:
    page = "https://m.example.com/2024/story-123?utm_source=rss"
    assert pick_canonical(page, "https://www.example.com/2024/story-123") == "https://www.example.com/2024/story-123"
    assert pick_canonical(page, "/2024/story-123/") == "https://m.example.com/2024/story-123"


def test_pick_canonical_ignores_other_sites_and_junk() -> None:
    page = "https://example.com/story"
    assert pick_canonical(page, "https://spam.example.net/other") == page
    assert pick_canonical(page, "javascript:void(0)") == page
    assert pick_canonical(page, None) == page
    assert pick_canonical(page, "") == page
    assert pick_canonical(page, "https://example.com/") == page  # every page "canonical" to home
    assert pick_canonical("https://example.com/index.html", "https://example.com/") == "https://example.com/"


def test_amp_cache_page_may_point_to_publisher() -> None:
    page = "https://news-site-com.cdn.ampproject.org/c/s/news-site.com/x/amp"
    assert pick_canonical(page, "https://news-site.com/x") == "https://news-site.com/x"


def test_same_site() -> None:
    assert same_site("https://www.example.com/a", "https://example.com/b")
    assert same_site("https://news.example.com/a", "https://example.com/b")
    assert not same_site("https://example.com/a", "https://example.org/a")
    assert not same_site("https://badexample.com/a", "https://example.com/a")


def test_url_aliases_cover_every_way_to_meet_the_page() -> None:
    aliases = url_aliases(
        "https://example.com/story?ref_src=twsrc",
        canonical_link="https://example.com/story/",
        amp_link="https://example.com/story/amp/",
        requested_url="http://example.com/story",
    )
    assert aliases == {"https://example.com/story", "http://example.com/story"}
