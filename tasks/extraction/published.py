"""The article's publication and update dates, chosen among every place a page states one.

Most trusted first, and why:

1. a source's date rule: a person said where the date is;
2. the date in the URL: a CMS writes the day into the address when it first publishes the article
   and never changes it, so it is the original date, on the publisher's own calendar;
3. the page's declaration (JSON-LD ``datePublished``, ``article:published_time`` and their kin),
   unless the date printed for readers disagrees and htmldate's reading of the page sides with
   the printed one (one of the two is about something else: a template, a first draft, another
   story; the third, independent reading decides);
4. a date printed for readers near the headline (``<time>``, "Posted on 20 November 2019");
5. htmldate's search of the page's markup and text, for pages that state none of these.

A declared instant is given in the publisher's zone when the page reveals it, so that its day is
the publisher's day: "2023-11-09T03:28Z" is the evening of the 8th in New York, and the URL and
the reader both say the 8th.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone

import lxml.etree
import lxml.html
from htmldate import find_date

from tasks.extraction.blocks import Block
from tasks.extraction.dates import EARLIEST, WIDEST_OFFSET, date_from_url, has_clock, parse_date, stated_offset
from tasks.extraction.metadata import PageMeta

_QUARTER_HOUR = timedelta(minutes=15)  # every UTC offset in use is a whole number of quarter hours
_DATELINE_WINDOW = 40  # blocks after the headline where a dateline may sit
# Blocks above the headline read as well: templates print the kicker, the date and the byline
# there as often as below it.
_ABOVE_HEADLINE = 3
_DATELINE_CHARS = 100
# htmldate's search costs about a microsecond a character of markup. A page's date sits in its
# header or beside the article, well inside this (99% of the corpora's pages are shorter); a
# 5 MB page is searched this far only.
_SEARCH_CHARS = 400_000

# htmldate logs at ERROR what it could not parse ("external parser error"): for us an ordinary
# miss, not something for an operator's log or the `gleaner extract` terminal.
logging.getLogger("htmldate").setLevel(logging.CRITICAL)


def page_dates(meta: PageMeta, url: str | None, markup: str, blocks: list[Block], first_body: Block, title: str,
               fetched_at: datetime | None, rule_text: str | None = None) -> tuple[datetime | None, datetime | None]:
    """The page's publication and update dates, none later than ``fetched_at`` (default: now)."""
    declared, modified, time_stamps = meta.declared_published(), meta.declared_modified(), meta.time_stamps()
    zone = publisher_zone([*declared, *modified, *time_stamps])
    published = choose_published(
        rule_text=rule_text,
        url_day=date_from_url(url, fetched_at) or date_from_url(meta.canonical(url), fetched_at),
        declared=declared,
        zone=zone,
        printed=lambda: printed_dates(blocks, first_body, title, time_stamps, fetched_at),
        search=lambda: search_page(markup, url, fetched_at),
        latest=fetched_at,
    )
    return published, choose_modified(modified, zone, published, fetched_at)


def publisher_zone(stamps: Iterable[str]) -> timezone | None:
    """The publisher's UTC offset, from the page's own timestamps.

    Either a timestamp states a non-zero offset, or the same instant is written twice, once in
    UTC and once as a bare local clock reading (as CMSs do in different tags): the difference
    between the two, a whole number of quarter hours with the same seconds, is the offset.
    """
    in_utc: list[datetime] = []
    local: list[datetime] = []
    for text in stamps:
        value = parse_date(text)
        if value is None:
            continue
        offset = stated_offset(text)
        if offset:
            return timezone(offset)
        if offset is not None:
            in_utc.append(value)
        elif has_clock(text):
            local.append(value)  # read as UTC by parse_date: its clock is the publisher's
    for clock in local:
        for instant in in_utc:
            difference = clock - instant
            if (difference and abs(difference) <= WIDEST_OFFSET and difference % _QUARTER_HOUR == timedelta(0)
                    and clock.second == instant.second):
                return timezone(difference)
    return None


def localize(text: str, value: datetime, zone: timezone | None) -> datetime:
    """A parsed timestamp on the publisher's clock: a UTC instant converted to the zone, a bare
    clock reading (parsed as UTC) given the zone it was read in; a stated offset is kept."""
    if zone is None:
        return value
    offset = stated_offset(text)
    if offset is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone) if not offset else value


def choose_published(
    *,
    rule_text: str | None,
    url_day: datetime | None,
    declared: list[str],
    zone: timezone | None,
    printed: Callable[[], list[tuple[str, datetime]]],
    search: Callable[[], date | None],
    latest: datetime | None,
) -> datetime | None:
    """The publication date by the precedence in the module docstring.

    ``printed`` and ``search`` are called only when needed: htmldate's search costs a second parse
    of the page, so it runs only on pages that state no date, or whose declared and printed dates
    disagree.
    """
    if rule_text:
        found = parse_date(rule_text, latest)
        if found is not None:
            return localize(rule_text, found, zone)
    stated = [(text, value) for text in declared if (value := parse_date(text, latest)) is not None]
    if url_day is not None:
        # The URL gives the day; a declaration on that same day gives the time as well.
        for text, value in stated:
            local = localize(text, value, zone)
            if local.date() == url_day.date():
                return local
        return url_day
    shown = printed()
    first_shown = localize(*shown[0], zone) if shown else None
    if stated:
        declared_day = localize(*stated[0], zone)
        if first_shown is None or first_shown.date() == declared_day.date():
            return declared_day
        # The declaration and the date printed for readers disagree: one of them is about
        # something else (a template's date, the page's first version, a related story). A third
        # reading of the page, htmldate's, decides between them.
        return first_shown if search() == first_shown.date() else declared_day
    if first_shown is not None:
        return first_shown
    day = search()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None


def choose_modified(declared: list[str], zone: timezone | None, published: datetime | None,
                    latest: datetime | None) -> datetime | None:
    """The declared update, kept apart from the publication; none that precedes the publication."""
    for text in declared:
        value = parse_date(text, latest)
        if value is not None:
            value = localize(text, value, zone)
            return value if published is None or value >= published else None
    return None


def printed_dates(blocks: list[Block], first_body: Block | None, title: str, times: list[str],
                  latest: datetime | None) -> list[tuple[str, datetime]]:
    """The dates printed for readers: ``<time>`` elements, then short lines around the headline
    (from a few blocks above it) that hold a date ("Posted on 20 November 2019"), in that order."""
    found = [(text, value) for text in times if (value := parse_date(text, latest)) is not None]
    headline = next((i for i, b in enumerate(blocks) if b.tag == "h1" and b.text == title), None)
    if headline is not None:
        start, end = max(0, headline - _ABOVE_HEADLINE), headline + _DATELINE_WINDOW
    else:
        at = next((i for i, b in enumerate(blocks) if b is first_body), 0)
        start = max(0, at - _DATELINE_WINDOW // 4)
        end = start + _DATELINE_WINDOW
    for block in blocks[start:end]:
        if len(block.text) <= _DATELINE_CHARS:
            value = parse_date(block.text, latest)
            if value is not None:
                found.append((block.text, value))
    return found


# A text every locale of dateparser reads words of and none reads a date in: "t", ISO 8601's
# separator between a date and its time, which every locale knows. See ``warm_locales``.
_EVERY_LOCALE = "t"


def warm_locales() -> None:
    """Build every locale's relative-date patterns in dateparser now rather than mid-page.

    dateparser tries each locale whose words a text segment uses. For each locale it builds the
    patterns for relative dates ("3 days ago") the first time it is tried, then keeps them for the
    life of the process. Some segments are readable in every locale and are a date in none, such
    as a journal reference whose numbers make no date ("2020;31 t(4):12-20"). The first page that
    holds one stalls while every locale's patterns are built (about 1,500 compiled patterns,
    0.5 s; one corpus page took 2.4 s instead of 0.5), and the worker grows by about 12 MB right
    there, a step in a memory that was otherwise flat (bench/results/memory.md, stop 41).
    Parsing ``_EVERY_LOCALE`` at start-up builds the same patterns before the first page. They
    depend only on the ``NORMALIZE`` setting, which htmldate's parser turns on, and every parser in
    the process shares them. Nothing else carries over, because no locale reads a date in the text.
    """
    from dateparser import DateDataParser  # imported where used, as htmldate does: slow to import

    DateDataParser(settings={"NORMALIZE": True}).get_date_data(_EVERY_LOCALE)


def search_page(markup: str, url: str | None, latest: datetime | None) -> date | None:
    """htmldate's extensive search (markup patterns, then dates in the text) over the page.

    It is handed an lxml tree, never a string: given a string that looks like a URL, htmldate
    would download it.
    """
    try:
        tree = lxml.html.document_fromstring(markup[:_SEARCH_CHARS])
    except (lxml.etree.ParserError, ValueError):
        return None
    found = find_date(tree, url=url, extensive_search=True, original_date=True,
                      min_date=EARLIEST.date().isoformat(),
                      max_date=(latest or datetime.now(timezone.utc)).date().isoformat())
    return date.fromisoformat(found) if found else None
