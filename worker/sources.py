"""The sources file (``sources.toml``): which sites to crawl, how often, how politely, with which selectors.

Each ``[sources.<key>]`` table is one :class:`Source`; its key becomes the records' ``category_id``.
A file with any error is refused whole, with the file, line and reason (:class:`SourcesFileError`),
so a typo never half-applies: the scheduler keeps running the sources of the last good version.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from tasks.extraction.rules import SiteRules, check_selector
from tasks.urlnorm import check_url
from worker.errors import InvalidURLError

__all__ = ["Listing", "Politeness", "Source", "SourcesFileError", "check_folder", "format_interval", "load_sources",
           "parse_interval", "parse_sources", "read_sources_file", "table_line"]

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MIN_INTERVAL = 1.0  # seconds; a source polled more often than this is a mistake, not a schedule
MAX_START_POINTS = 100  # per source: feeds + sitemaps + listings

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def parse_interval(value: str | int | float) -> float:
    """Seconds in "30s", "15m", "2h", "1d", "1h30m", or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"interval must be like '15m', '30s' or '2h', not {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if text[pos:match.start()].strip():
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos == 0 or text[pos:].strip():
                raise ValueError(f"interval must be like '15m', '30s', '2h' or '1h30m', not {value!r}")
    if seconds < MIN_INTERVAL:
        raise ValueError(f"interval {value!r} is shorter than the {MIN_INTERVAL:g}s minimum")
    return seconds


def format_interval(seconds: float) -> str:
    """The shortest exact spelling: 900 -> "15m", 5400 -> "1h30m", 1.5 -> "1.5s"."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _url(value: str) -> str:
    try:
        return check_url(value)
    except InvalidURLError as exc:
        raise ValueError(exc.reason) from None


class Listing(BaseModel):
    """A page that lists articles; ``links`` selects the article links on it (CSS)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    links: str = "a[href]"

    _valid_url = field_validator("url")(classmethod(lambda cls, v: _url(v)))

    @field_validator("links")
    @classmethod
    def _valid_selector(cls, value: str) -> str:
        check_selector(value)
        return value


def check_folder(value: str, base: Path | None) -> str:
    """A ``warc`` source's folder as an absolute path (a relative one is taken from ``base``: the
    sources file's folder, or the working directory); ValueError if it is missing or unreadable."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = Path(os.path.normpath(path))
    if not path.exists():
        raise ValueError(f"folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"folder {str(path)!r} is not readable by this user")
    return str(path)


class Politeness(BaseModel):
    """Per-source overrides of the host limits (GLEANER_HOST_RATE / GLEANER_HOST_CONCURRENCY).

    Only data here: the fetch stage and discovery turn it into a ``tasks.fetching.hostlimit.HostPolicy``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float | None = Field(default=None, ge=0)  # fetches started per second per host; 0 = no limit
    concurrency: int | None = Field(default=None, ge=0)  # fetches in flight per host; 0 = no limit


class Source(BaseModel):
    """One site to crawl on a schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str  # the records' category_id
    feeds: list[str] = Field(default_factory=list)  # RSS 0.9x/1.0/2.0 or Atom
    sitemaps: list[str] = Field(default_factory=list)  # urlset, index or news sitemap, plain or gzip
    listings: list[Listing] = Field(default_factory=list)
    # A folder that fills with WARC files (tasks/discovery/warcdir.py): each run ingests the records
    # added since the last one. Checked (exists, readable) where a source is declared; a source read
    # back from Redis is not checked again, so a folder gone later is a run's error, not a lost source.
    warc: str | None = None
    every: float = 900.0  # seconds between polls; written "15m", "30s", "2h"
    politeness: Politeness | None = None
    rules: SiteRules | None = None  # CSS selectors that override generic extraction on this site

    @field_validator("key")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        if not KEY_RE.match(value):
            raise ValueError(f"source key {value!r} must be 1-100 letters, digits, '_', '-' or '.', "
                             "starting with a letter or digit")
        return value

    @field_validator("feeds", "sitemaps")
    @classmethod
    def _valid_urls(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(_url(v) for v in value))

    @field_validator("warc")
    @classmethod
    def _valid_folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        context = info.context or {}
        if value is None or context.get("stored"):
            return value
        return check_folder(value, context.get("base"))

    @field_validator("every", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> float:
        return parse_interval(value)

    @model_validator(mode="after")
    def _has_start_points(self) -> Source:
        count = len(self.feeds) + len(self.sitemaps) + len(self.listings)
        if self.warc is not None:
            if count:
                raise ValueError("a warc source reads its folder only; feeds, sitemaps and listings go in "
                                 "a source of their own")
            return self
        if count == 0:
            raise ValueError("a source needs at least one of feeds, sitemaps, listings or warc")
        if count > MAX_START_POINTS:
            raise ValueError(f"{count} start points; at most {MAX_START_POINTS} per source")
        return self

    def start_points(self) -> list[tuple[str, str, str | None]]:
        """(kind, URL or folder, link selector) for every start point, feeds first."""
        if self.warc is not None:
            return [("warc", self.warc, None)]
        return ([("feed", u, None) for u in self.feeds] + [("sitemap", u, None) for u in self.sitemaps]
                + [("listing", item.url, item.links) for item in self.listings])


class SourcesFileError(ValueError):
    """The sources file cannot be used; ``str()`` is "file:line: reason"."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


def _header_line(lines: list[str], dotted: str) -> int | None:
    """1-based line of the table header ``[sources.<key>...]`` (key quoted or bare), if any."""
    parts = dotted.split(".")
    pattern = r"\s*\.\s*".join(rf"(?:{re.escape(p)}|\"{re.escape(p)}\"|'{re.escape(p)}')" for p in parts)
    header = re.compile(rf"^\s*\[\s*{pattern}\s*\]")
    for number, line in enumerate(lines, 1):
        if header.match(line):
            return number
    return None


def table_line(text: str, key: str) -> int | None:
    """1-based line where source ``key``'s table starts in a sources file's text."""
    lines = text.splitlines()
    return _header_line(lines, f"sources.{key}") or _locate(lines, key, ())


def _field_line(lines: list[str], start: int, name: str) -> int | None:
    """The line of ``name = ...`` inside the table whose header is at ``start``."""
    assign = re.compile(rf"^\s*(?:{re.escape(name)}|\"{re.escape(name)}\")\s*=")
    for number in range(start + 1, len(lines) + 1):
        line = lines[number - 1]
        if line.lstrip().startswith("["):
            return None
        if assign.match(line):
            return number
    return None


def _locate(lines: list[str], key: str, loc: tuple[Any, ...]) -> int | None:
    """Best line for an error at ``loc`` (pydantic's path) in source ``key``: the field's own line if
    found, else its sub-table's or the source's header, else any line naming the key."""
    names = [str(p) for p in loc if isinstance(p, str)]
    header = _header_line(lines, f"sources.{key}")
    # A sub-table such as [sources.key.rules] holds its own fields.
    if len(names) >= 2:
        sub = _header_line(lines, f"sources.{key}.{names[0]}")
        if sub is not None:
            return _field_line(lines, sub, names[1]) or sub
    if header is not None:
        if names:
            return _field_line(lines, header, names[0]) or header
        return header
    mention = re.compile(rf"(?<![\w.-]){re.escape(key)}(?![\w-])")
    return next((n for n, line in enumerate(lines, 1) if mention.search(line)), None)


def _reason(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"])
    # Some messages (soupsieve's) draw a caret diagram on further lines: the first line says it.
    message = error["msg"].removeprefix("Value error, ").splitlines()[0]
    if error["type"] == "extra_forbidden":
        message = "unknown setting (allowed: feeds, sitemaps, listings, warc, every, politeness, rules)" \
            if len(error["loc"]) == 1 else "unknown setting"
    return f"{where}: {message}" if where else message


def parse_sources(text: str, path: str = "sources.toml") -> list[Source]:
    """Every source in a sources file's text, or SourcesFileError naming the first problem's line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends "(at line L, column C)"; keep the reason and the line apart.
        match = re.search(r"\(at line (\d+), column \d+\)$", str(exc))
        line = int(match.group(1)) if match else None
        reason = str(exc)[: match.start()].strip() if match else str(exc)
        raise SourcesFileError(path, line, f"invalid TOML: {reason}") from None
    lines = text.splitlines()
    extra = sorted(set(data) - {"sources"})
    if extra:
        name = extra[0]
        line = _header_line(lines, name) or next(
            (n for n, t in enumerate(lines, 1) if re.match(rf"^\s*{re.escape(name)}\s*=", t)), None)
        raise SourcesFileError(path, line, f"unknown top-level entry {name!r}; sources go in [sources.<key>] tables")
    table = data.get("sources", {})
    if not isinstance(table, dict):
        raise SourcesFileError(path, None, "'sources' must be a table of [sources.<key>] tables")
    found: list[Source] = []
    for key, body in table.items():
        if not isinstance(body, dict):
            raise SourcesFileError(path, _locate(lines, key, ()), f"sources.{key} must be a table")
        try:
            found.append(Source.model_validate({**body, "key": key}, context={"base": Path(path).parent}))
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = tuple(p for p in error["loc"] if p != "key") if error["loc"] != ("key",) else ()
            raise SourcesFileError(path, _locate(lines, key, loc),
                                   f"source {key!r}: {_reason({**error, 'loc': loc})}") from None
    return found


def read_sources_file(path: Path) -> str:
    """The file's text, or SourcesFileError if it is missing, unreadable or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourcesFileError(str(path), None, f"not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise SourcesFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from None


def load_sources(path: Path) -> list[Source]:
    """Read and check a sources file; SourcesFileError if it is unreadable or wrong anywhere."""
    return parse_sources(read_sources_file(path), str(path))
