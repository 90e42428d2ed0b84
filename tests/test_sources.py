"""The sources file: what it accepts, and how it refuses a mistake (file, line, reason)."""

from __future__ import annotations

import pytest

from worker.sources import (
    SourcesFileError,
    format_interval,
    load_sources,
    parse_interval,
    parse_sources,
    table_line,
)

EXAMPLE = """\
# The form the issue asks for.
[sources.nhk]
feeds = ["https://example.org/news/rss.xml"]
sitemaps = ["https://example.org/sitemap-news.xml"]
listings = [{ url = "https://example.org/news/", links = "a.headline" }]
every = "15m"          # also "30s", "2h"

[sources.harbor]
sitemaps = ["https://harbor.example/sitemap_index.xml.gz"]
every = "1h30m"
politeness = { rate = 0.5, concurrency = 1 }

[sources.harbor.rules]
title = "h1.headline"
body = "div.story"
date = "time[datetime]"
drop = [".ad", ".related"]
"""


def _error(text: str) -> SourcesFileError:
    with pytest.raises(SourcesFileError) as info:
        parse_sources(text, "sources.toml")
    return info.value


def test_the_issue_example_and_every_field():
    nhk, harbor = parse_sources(EXAMPLE)
    assert nhk.key == "nhk" and nhk.every == 900
    assert nhk.start_points() == [
        ("feed", "https://example.org/news/rss.xml", None),
        ("sitemap", "https://example.org/sitemap-news.xml", None),
        ("listing", "https://example.org/news/", "a.headline"),
    ]
    assert nhk.politeness is None and nhk.rules is None
    assert harbor.every == 5400
    assert harbor.politeness.rate == 0.5 and harbor.politeness.concurrency == 1
    assert harbor.rules.title == "h1.headline" and harbor.rules.drop == [".ad", ".related"]
    assert table_line(EXAMPLE, "nhk") == 2 and table_line(EXAMPLE, "harbor") == 8


def test_load_from_disk(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text(EXAMPLE)
    assert [s.key for s in load_sources(path)] == ["nhk", "harbor"]
    with pytest.raises(SourcesFileError, match=r"missing\.toml: cannot read"):
        load_sources(tmp_path / "missing.toml")


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("90", 90), ("1.5s", 1.5),
    (45, 45), ("2h 5m", 7500),
])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("bad", ["", "15x", "m", "5 minutes", "0s", "500ms", "-5s", "1h30", True])
def test_bad_intervals(bad):
    with pytest.raises(ValueError):
        parse_interval(bad)


def test_format_interval_round_trips():
    for seconds in (1, 30, 60, 900, 5400, 86400 + 61, 1.5):
        assert parse_interval(format_interval(seconds)) == seconds
    assert format_interval(5400) == "1h30m"


def test_invalid_toml_names_its_line():
    error = _error(EXAMPLE.replace("[sources.harbor]", "[sources.harbor"))
    assert error.path == "sources.toml" and error.line == 8
    assert str(error).startswith("sources.toml:8: invalid TOML")


@pytest.mark.parametrize(("old", "new", "line", "reason"), [
    ('every = "15m"', 'every = "15x"', 6, "source 'nhk': every: interval must be like"),
    ("feeds = [", "feed = [", 3, "source 'nhk': feed: unknown setting"),
    ('links = "a.headline"', 'links = "a["', 5, "source 'nhk': listings.0.links: invalid CSS selector 'a['"),
    ('"https://example.org/sitemap-news.xml"', '"ftp://example.org/s.xml"', 4, "refused scheme 'ftp'"),
    ("rate = 0.5", "rate = -1", 11, "politeness.rate: Input should be greater than or equal to 0"),
    ('title = "h1.headline"', 'title = "h1["', 14, "rules.title: invalid CSS selector"),
    ('drop = [".ad", ".related"]', 'drops = [".ad"]', 17, "rules.drops: unknown setting"),
    ('[sources.harbor.rules]', '[sources."bad key"]', 13, "source key 'bad key' must be"),
])
def test_semantic_errors_name_the_line(old, new, line, reason):
    text = EXAMPLE.replace(old, new)
    assert text != EXAMPLE
    error = _error(text)
    assert error.line == line, str(error)
    assert reason in error.reason
    assert str(error) == f"sources.toml:{line}: {error.reason}"


def test_a_source_without_start_points_points_at_its_table():
    error = _error('[sources.a]\nfeeds = ["https://a.example/rss"]\n\n[sources.empty]\nevery = "1m"\n')
    assert error.line == 4
    assert "at least one of feeds, sitemaps, listings or warc" in error.reason


def test_unknown_top_level_entries_are_refused():
    error = _error('interval = "5m"\n' + EXAMPLE)
    assert error.line == 1 and "unknown top-level entry 'interval'" in error.reason


def test_inline_table_form_is_accepted_and_located():
    text = '[sources]\nnhk = { feeds = ["https://example.org/rss"], every = "30s" }\nbad = { every = "1m" }\n'
    error = _error(text)
    assert error.line == 3 and "source 'bad'" in error.reason
    (nhk,) = parse_sources(text.splitlines(True)[0] + text.splitlines(True)[1])
    assert nhk.every == 30


def test_duplicate_urls_collapse_and_defaults_apply():
    (s,) = parse_sources('[sources.x]\nfeeds = ["https://a.example/rss", "https://a.example/rss"]\n')
    assert s.feeds == ["https://a.example/rss"] and s.every == 900
    assert parse_sources('[sources.x]\nlistings = [{ url = "https://a.example/" }]\n')[0].listings[0].links == "a[href]"


def test_the_deploy_example_is_a_valid_sources_file():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "deploy" / "sources.example.toml"
    sources = {s.key: s for s in load_sources(example)}
    assert set(sources) == {"nhk", "harbor-ledger"}
    assert sources["harbor-ledger"].rules.body == "div.story-body"
