"""Dates from meta values, prose, URLs; zones kept; datelines told from prose; which date is the publication."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tasks.extraction.dates import date_from_url, is_dateline, parse_date
from tasks.extraction.blocks import Block
from tasks.extraction.published import (choose_modified, choose_published, localize, printed_dates, publisher_zone,
                                          search_page)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-11-20T10:31:05+01:00", datetime(2019, 11, 20, 10, 31, 5, tzinfo=timezone(timedelta(hours=1)))),
        ("2019-11-20T10:31:05.123Z", datetime(2019, 11, 20, 10, 31, 5, tzinfo=UTC)),
        ("2019-11-20 10:31", datetime(2019, 11, 20, 10, 31, tzinfo=UTC)),
        ("2019-11-20T10:31:05-0500", datetime(2019, 11, 20, 10, 31, 5, tzinfo=timezone(timedelta(hours=-5)))),
        ("2019-11-20", datetime(2019, 11, 20, tzinfo=UTC)),
        ("Wed, 20 Nov 2019 10:31:05 GMT", datetime(2019, 11, 20, 10, 31, 5, tzinfo=UTC)),
        ("November 20, 2019", datetime(2019, 11, 20, tzinfo=UTC)),
        ("Nov. 20th, 2019 at 4:10 pm", datetime(2019, 11, 20, 16, 10, tzinfo=UTC)),
        ("20 novembre 2019", datetime(2019, 11, 20, tzinfo=UTC)),
        ("22 de outubro de 2010 às 20:13", datetime(2010, 10, 22, 20, 13, tzinfo=UTC)),
        ("20.11.2019", datetime(2019, 11, 20, tzinfo=UTC)),
        ("1574245865", datetime(2019, 11, 20, 10, 31, 5, tzinfo=UTC)),
    ],
)
def test_parse_date(text: str, expected: datetime) -> None:
    found = parse_date(text)
    assert found == expected
    assert found.utcoffset() == expected.utcoffset()  # the page's zone is kept, not converted


@pytest.mark.parametrize("text", ["", "   ", "no date here", "2019-13-45", "Call 555-0123", "1850-01-01", "3019-01-01"])
def test_parse_date_refuses_non_dates(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://nypost.example/2019/11/18/hunter-catches-plague/", datetime(2019, 11, 18, tzinfo=UTC)),
        ("https://news.example/story/2019-11-19/disney-plus", datetime(2019, 11, 19, tzinfo=UTC)),
        ("https://news.example/en/news/20250321_21/", datetime(2025, 3, 21, tzinfo=UTC)),
        ("https://news.example/opinion/why-this-matters", None),
        ("https://news.example/item/123456789", None),
        (None, None),
    ],
)
def test_date_from_url(url: str | None, expected: datetime | None) -> None:
    assert date_from_url(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOVEMBER 20, 2019 10:43", True),
        ("Updated: Nov 20 2019, 15:24pm ist", True),
        ("2019-11-19T08:57:40+01:00", True),
        ("1 Kyle Busch 5040 5 1 17 27", False),
        ("The meeting on November 20, 2019 was cancelled because of the storm and the rain.", False),
        ("There are about 5,000 new cases of spinal cord injuries every year in Japan.", False),
    ],
)
def test_is_dateline(text: str, expected: bool) -> None:
    assert is_dateline(text) is expected


# --- bounds ---------------------------------------------------------------------------------------

def test_nothing_before_1995_or_after_the_fetch() -> None:
    assert parse_date("1994-12-31") is None
    assert parse_date("1995-01-01") == datetime(1995, 1, 1, tzinfo=UTC)
    fetched = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_date("2024-05-01T13:00:00Z", latest=fetched) is None  # an hour after the fetch
    assert parse_date("2024-05-01T11:00:00Z", latest=fetched) is not None
    # A time without a zone may be the publisher's clock east of UTC: only past UTC+14 is it future.
    assert parse_date("2024-05-01T20:00:00", latest=fetched) is not None
    assert parse_date("2024-05-02T03:00:00", latest=fetched) is None
    assert date_from_url("https://news.example/2024/05/03/story", latest=fetched) is None


# --- the publisher's zone -------------------------------------------------------------------------

def test_publisher_zone_from_a_stated_offset() -> None:
    assert publisher_zone(["2023-11-09T03:28:35Z", "2023-11-08T22:28:35-05:00"]) == timezone(timedelta(hours=-5))


def test_publisher_zone_from_the_same_instant_in_utc_and_on_the_local_clock() -> None:
    # One tag in UTC, another the bare local clock reading of the same second: five hours apart.
    assert publisher_zone(["2023-11-09T03:28:35Z", "2023-11-08 22:28:35"]) == timezone(timedelta(hours=-5))
    assert publisher_zone(["2023-11-09T03:28:35Z", "2023-11-08"]) is None  # a bare day is no clock reading
    assert publisher_zone(["2023-11-09T03:28:35Z", "2023-11-08 22:28:10"]) is None  # not the same second
    assert publisher_zone(["2023-11-09T03:28:35Z"]) is None


def test_localize_converts_utc_and_reads_a_bare_clock_in_the_zone() -> None:
    zone = timezone(timedelta(hours=-5))
    utc = parse_date("2023-11-09T03:28:35Z")
    assert localize("2023-11-09T03:28:35Z", utc, zone) == utc and localize("2023-11-09T03:28:35Z", utc, zone).day == 8
    bare = parse_date("2023-11-08 22:28:35")
    assert localize("2023-11-08 22:28:35", bare, zone) == datetime(2023, 11, 8, 22, 28, 35, tzinfo=zone)
    stated = parse_date("2023-11-08T10:00:00+01:00")
    assert localize("2023-11-08T10:00:00+01:00", stated, zone).utcoffset() == timedelta(hours=1)


# --- precedence -----------------------------------------------------------------------------------

def _never() -> None:
    raise AssertionError("asked, though a more trusted source had answered")


def choose(**given):
    arguments = {"rule_text": None, "url_day": None, "declared": [], "zone": None, "printed": list,
                 "search": _never, "latest": None}
    return choose_published(**{**arguments, **given})


def test_the_url_day_wins_and_a_declaration_that_day_gives_the_time() -> None:
    url_day = datetime(2023, 11, 8, tzinfo=UTC)
    zone = timezone(timedelta(hours=-5))
    # "03:28Z on the 9th" is the evening of the 8th in the publisher's zone: the URL's day.
    found = choose(url_day=url_day, declared=["2023-11-09T03:28:35Z"], zone=zone)
    assert found == datetime(2023, 11, 8, 22, 28, 35, tzinfo=zone)
    assert choose(url_day=url_day, declared=["2021-01-01T10:00:00Z"]) == url_day


def test_a_declaration_the_printed_date_agrees_with_needs_no_search() -> None:
    printed = lambda: [("Nov. 8, 2023", datetime(2023, 11, 8, tzinfo=UTC))]  # noqa: E731
    assert choose(declared=["2023-11-08T10:00:00Z"], printed=printed).hour == 10


def test_htmldate_decides_when_the_declared_and_printed_dates_disagree() -> None:
    printed = lambda: [("Updated March 3, 2024", datetime(2024, 3, 3, tzinfo=UTC))]  # noqa: E731
    declared = ["2019-06-17T00:00:00Z"]
    assert choose(declared=declared, printed=printed, search=lambda: date(2024, 3, 3)).date() == date(2024, 3, 3)
    assert choose(declared=declared, printed=printed, search=lambda: date(2019, 6, 17)).date() == date(2019, 6, 17)
    assert choose(declared=declared, printed=printed, search=lambda: None).date() == date(2019, 6, 17)


def test_a_page_stating_nothing_is_searched() -> None:
    assert choose(search=lambda: date(2020, 1, 29)) == datetime(2020, 1, 29, tzinfo=UTC)
    assert choose(search=lambda: None) is None


def test_a_site_rule_comes_first_and_a_future_declaration_is_skipped() -> None:
    assert choose(rule_text="20 November 2019", url_day=datetime(2021, 1, 1, tzinfo=UTC)).year == 2019
    fetched = datetime(2024, 5, 1, tzinfo=UTC)
    found = choose(declared=["2031-01-01T00:00:00Z", "2024-04-30T08:00:00Z"], latest=fetched)
    assert found == datetime(2024, 4, 30, 8, tzinfo=UTC)


def test_modified_is_kept_apart_and_never_before_the_publication() -> None:
    published = datetime(2024, 4, 30, 8, tzinfo=UTC)
    assert choose_modified(["2024-05-02T09:00:00Z"], None, published, None) == datetime(2024, 5, 2, 9, tzinfo=UTC)
    assert choose_modified(["2024-04-29T09:00:00Z"], None, published, None) is None
    assert choose_modified([], None, published, None) is None


def test_htmldate_searches_a_page_without_metadata() -> None:
    markup = ("<html><body><div class='content'><p>Lots of words about the harbour.</p>"
              "<p class='date'>Veröffentlicht am 29.01.2020</p></div></body></html>")
    assert search_page(markup, "https://news.example/story", None) == date(2020, 1, 29)
    assert search_page("<html><body><p>No date at all.</p></body></html>", None, None) is None


def test_a_date_printed_just_above_the_headline_is_read_and_one_further_up_is_not() -> None:
    def lines(*texts: str, tag: str = "div") -> list[Block]:
        return [Block(text, tag, 0, (), (), (), ()) for text in texts]

    title = "The ferry comes back"
    story = lines(*(f"Paragraph {n} of the story about the harbour and its ferries." for n in range(3)), tag="p")
    # The kicker and the date just above the headline, as many templates print them.
    above = lines("Harbour news", "12 March 2024") + lines(title, tag="h1") + story
    assert printed_dates(above, story[0], title, [], None) == [("12 March 2024", datetime(2024, 3, 12, tzinfo=UTC))]
    # Four blocks up it belongs to the page's header (today's date, say), not to the story.
    header = lines("12 March 2024", "Sections", "Harbour news", "Local") + lines(title, tag="h1") + story
    assert printed_dates(header, story[0], title, [], None) == []
