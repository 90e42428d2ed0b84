"""Dates from the strings pages put them in: ISO 8601, RFC 2822, URL paths and prose."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january", "janv", "janvier", "januar", "januari", "enero", "gennaio", "janeiro"),
            ("feb", "february", "fev", "fevr", "février", "februar", "februari", "febrero", "febbraio", "fevereiro"),
            ("mar", "march", "mars", "märz", "maart", "marzo", "março"),
            ("apr", "april", "avr", "avril", "abril", "aprile"),
            ("may", "mai", "mei", "mayo", "maggio", "maio"),
            ("jun", "june", "juin", "juni", "junio", "giugno", "junho"),
            ("jul", "july", "juil", "juillet", "juli", "julio", "luglio", "julho"),
            ("aug", "august", "augustus", "aout", "août", "agosto"),
            ("sep", "sept", "september", "septembre", "septiembre", "settembre", "setembro"),
            ("oct", "october", "octobre", "oktober", "octubre", "ottobre", "outubro"),
            ("nov", "november", "novembre", "noviembre", "novembro"),
            ("dec", "december", "décembre", "dezember", "diciembre", "dicembre", "dezembro"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_RE = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))

# 2019-11-20, 2019-11-20T10:31, 2019-11-20 10:31:05.123+01:00, 20191120T103105Z
_ISO = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})"
    r"(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,]\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
# "November 20, 2019", "Nov. 20th 2019 10:31 am"
_MDY = re.compile(
    rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})"
    r"(?:\D{0,6}?(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?)?",
    re.I,
)
# "20 November 2019", "20. Nov. 2019"
_DMY = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:de\s+)?({_MONTH_RE})\.?,?\s+(?:de\s+)?(\d{{4}})"
    r"(?:\D{0,6}?(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?)?",
    re.I,
)
# 20/11/2019 or 11/20/2019 (day first unless impossible), 20.11.2019
_NUMERIC = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
# /2019/11/20/ or /2019-11-20- or /20191120/ in a URL path
_URL = re.compile(r"(?<!\d)((?:19|20)\d{2})[/_-]?(0[1-9]|1[0-2])[/_-]?(0[1-9]|[12]\d|3[01])(?!\d)")
# /2019/nov/18/ in a URL path
_URL_MONTH = re.compile(r"/((?:19|20)\d{2})/([a-z]{3,9})/(\d{1,2})(?:/|$)", re.I)
_EPOCH = re.compile(r"^\d{10}(?:\d{3})?$")
# Every pattern here needs a digit: text without one (most lines of a page) is no date, unsearched.
_DIGIT = re.compile(r"\d")

EARLIEST = datetime(1995, 1, 1, tzinfo=timezone.utc)  # before the web's first news sites: an ID, a price, a birth date
# The widest UTC offset (UTC+14): a time written without a zone, read as UTC, may be this far ahead
# of the instant it names, so such a time is in the future only past the bound plus this.
WIDEST_OFFSET = timedelta(hours=14)


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def in_range(value: datetime, latest: datetime | None, *, zone_stated: bool = True) -> bool:
    """Whether a date can be an article's: not before 1995, not after ``latest`` (the fetch, else now)."""
    bound = latest or datetime.now(timezone.utc)
    if not zone_stated:
        bound += WIDEST_OFFSET
    return EARLIEST <= value <= bound


def _build(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
           zone: timezone | None = None, latest: datetime | None = None) -> datetime | None:
    try:
        value = datetime(year, month, day, hour, minute, second, tzinfo=zone or timezone.utc)
    except ValueError:
        return None
    return value if in_range(value, latest, zone_stated=zone is not None) else None


def _clock(hour: str | None, minute: str | None, meridiem: str | None) -> tuple[int, int]:
    if hour is None:
        return 0, 0
    h, m = int(hour), int(minute or 0)
    if meridiem:
        pm = meridiem[0].lower() == "p"
        h = h % 12 + (12 if pm else 0)
    return (h, m) if h < 24 and m < 60 else (0, 0)


def parse_date(text: str | None, latest: datetime | None = None) -> datetime | None:
    """A timezone-aware datetime from a machine-readable or prose date string, or None.

    A string without a zone is taken as UTC; a stated offset is kept as given. A date before 1995
    or after ``latest`` (default: now) is refused: on a page it is an ID, a price or a typo.
    """
    if not text:
        return None
    text = text.strip()[:200]
    if not text or _DIGIT.search(text) is None:
        return None
    if _EPOCH.match(text):
        value = datetime.fromtimestamp(int(text[:10]), timezone.utc)
        return value if in_range(value, latest) else None
    match = _ISO.search(text)
    if match:
        y, mo, d, h, mi, s, z = match.groups()
        value = _build(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), _zone(z), latest)
        if value is not None:
            return value
    if "," in text and ":" in text and text[:3].isalpha():
        try:  # RFC 2822, as in "Wed, 20 Nov 2019 10:31:05 GMT"
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            value = None
        if value is not None:
            stated = value.tzinfo is not None
            value = value if stated else value.replace(tzinfo=timezone.utc)
            return value if in_range(value, latest, zone_stated=stated) else None
    return parse_prose_date(text, latest)


def has_clock(text: str) -> bool:
    """Whether a machine-readable date string gives a time of day, not a bare day."""
    match = _ISO.search(text.strip()[:200])
    return match is not None and match.group(4) is not None


def stated_offset(text: str | None) -> timedelta | None:
    """The UTC offset a machine-readable date string states ("Z" is zero); None when it states none."""
    if not text:
        return None
    match = _ISO.search(text.strip()[:200])
    if match and match.group(7):
        zone = _zone(match.group(7))
        return zone.utcoffset(None) if zone else None
    if match is None and "," in text and ":" in text:
        try:
            value = parsedate_to_datetime(text.strip())
        except (TypeError, ValueError, IndexError):
            return None
        return value.utcoffset() if value.tzinfo else None
    return None


def parse_prose_date(text: str, latest: datetime | None = None) -> datetime | None:
    """A date written for people: "November 20, 2019", "20 Nov 2019 10:31", "20.11.2019"."""
    match = _MDY.search(text)
    if match:
        month, day, year, hour, minute, meridiem = match.groups()
        h, m = _clock(hour, minute, meridiem)
        value = _build(int(year), _MONTHS[month.lower()], int(day), h, m, latest=latest)
        if value:
            return value
    match = _DMY.search(text)
    if match:
        day, month, year, hour, minute, meridiem = match.groups()
        h, m = _clock(hour, minute, meridiem)
        value = _build(int(year), _MONTHS[month.lower()], int(day), h, m, latest=latest)
        if value:
            return value
    match = _NUMERIC.search(text)
    if match:
        first, second, year = map(int, match.groups())
        day, month = (first, second) if second <= 12 else (second, first)
        return _build(year, month, day, latest=latest)
    return None


def date_from_url(url: str | None, latest: datetime | None = None) -> datetime | None:
    """The date in a URL path such as /2019/11/20/slug, or None."""
    if not url:
        return None
    match = _URL.search(url)
    if match:
        return _build(*map(int, match.groups()), latest=latest)
    match = _URL_MONTH.search(url)
    if match and match.group(2).lower() in _MONTHS:
        return _build(int(match.group(1)), _MONTHS[match.group(2).lower()], int(match.group(3)), latest=latest)
    return None


_WORDS = re.compile(r"[^\W\d_]{2,}")
_DATELINE_MAX_CHARS = 80
_DATELINE_MAX_WORDS = 5  # words left once the date is taken out: "Updated", weekday, "at", zone...


def is_dateline(text: str) -> bool:
    """Whether a short line is a date stamp ("Updated Nov. 20, 2019 10:43 am ET"), not prose."""
    if len(text) > _DATELINE_MAX_CHARS or _DIGIT.search(text) is None:
        return False
    for pattern in (_MDY, _DMY, _ISO, _NUMERIC):
        match = pattern.search(text)
        if match and (pattern is not _ISO or match.group(2) is not None):
            rest = text[:match.start()] + " " + text[match.end():]
            return len(_WORDS.findall(rest)) <= _DATELINE_MAX_WORDS
    return False


_CLOCK = re.compile(r"\b\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?\b", re.I)


def without_dates(text: str) -> str:
    """The text with dates and clock times cut out ("By Ann Example, Nov. 18, 2019 4:10pm" -> "By Ann Example,  ")."""
    if _DIGIT.search(text) is None:
        return text
    for pattern in (_MDY, _DMY, _ISO, _NUMERIC, _CLOCK):
        text = pattern.sub(" ", text)
    return text
