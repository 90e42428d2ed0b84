"""Dates from meta values, prose, URLs; zones kept; datelines told from prose."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tasks.extraction.dates import date_from_url, is_dateline, parse_date

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
