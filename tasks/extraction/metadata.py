"""Everything about an article but its body: title, dates, authors, language, URLs, tags."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from tasks.extraction import jsonld
from tasks.extraction.dates import without_dates

_SPACES = re.compile(r"\s+")
_URLISH = re.compile(r"^(?:https?:)?//|^www\.", re.I)
_TAG_SPLIT = re.compile(r"\s*[,;|]\s*")
_BY = re.compile(r"^(?:by|von|par|por|di|door)\s+", re.I)

_AUTHOR_SPLIT = re.compile(r"\s*(?:,|\band\b|&|\||·|•|\s/\s|\s-\s|\n)\s*")
_DIGIT = re.compile(r"\d")
_MAX_NAME_WORDS = 5
_MAX_BYLINES = 3
_MAX_BYLINE_CHARS = 80  # longer text under an "author" class is a biography, not a byline

_PUBLISHED_KEYS = (
    "article:published_time", "og:published_time", "og:article:published_time", "datepublished",
    "publishdate", "publish-date", "publish_date", "pubdate", "parsely-pub-date", "sailthru.date",
    "dc.date.issued", "dcterms.created", "dcterms.date", "dc.date", "date", "article.published",
    "published-date", "release_date", "cxenseparse:recs:publishtime", "datecreated", "article_date_original",
)
_MODIFIED_KEYS = (
    "article:modified_time", "og:updated_time", "datemodified", "last-modified", "dcterms.modified",
    "lastmod", "article.updated", "og:article:modified_time",
)


def clean(text: str | None) -> str:
    return _SPACES.sub(" ", text).strip() if text else ""


class PageMeta:
    """The page's <meta>, <link> and JSON-LD facts, read once and queried by the extractor."""

    def __init__(self, soup: BeautifulSoup, documents: list[Any], tags: list[Tag]) -> None:
        self.meta: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}
        self.title_tag = ""
        self.times: list[Tag] = []
        self.bylines: list[Tag] = []
        for tag in tags:  # <meta>, <link>, <title> and <time>, as the block reader met them
            name = tag.name
            if name == "meta":
                key = tag.get("property") or tag.get("name") or tag.get("itemprop") or tag.get("http-equiv")
                content = tag.get("content")
                if isinstance(key, str) and isinstance(content, str) and content.strip():
                    self.meta.setdefault(key.strip().lower(), []).append(content.strip())
            elif name == "link":
                rel = tag.get("rel")
                href = tag.get("href")
                if isinstance(rel, str) and isinstance(href, str) and href.strip():
                    for value in rel.lower().split():
                        self.links.setdefault(value, href.strip())
            elif name == "title":
                if not self.title_tag:
                    self.title_tag = clean(tag.get_text())
            elif name == "time":
                self.times.append(tag)
            else:
                self.bylines.append(tag)
        self.documents = documents
        self.article = jsonld.article_object(documents)
        html = soup.html
        self.html_lang = html.get("lang") or html.get("xml:lang") if isinstance(html, Tag) else None

    def first(self, *keys: str) -> str | None:
        for key in keys:
            values = self.meta.get(key)
            if values:
                return values[0]
        return None

    # -- the fields --------------------------------------------------------------------------

    def declared_titles(self) -> list[str]:
        """Titles the page declares for its article: JSON-LD headline, Open Graph, Twitter, Dublin Core."""
        found = [
            jsonld.text(self.article.get("headline")) or jsonld.text(self.article.get("name")),
            self.first("og:title", "twitter:title", "dc.title", "headline", "title"),
        ]
        return [clean(t) for t in found if t and clean(t)]

    def declared_published(self) -> list[str]:
        """The publication timestamps the page declares, most specific first."""
        found = [jsonld.text(self.article.get("datePublished")), *self._all(_PUBLISHED_KEYS),
                 jsonld.text(self.article.get("dateCreated"))]
        return [value for value in found if value]

    def declared_modified(self) -> list[str]:
        found = [jsonld.text(self.article.get("dateModified")), *self._all(_MODIFIED_KEYS)]
        return [value for value in found if value]

    def time_stamps(self) -> list[str]:
        """What the page's <time> elements say: their datetime attribute, else their text."""
        found = []
        for tag in self.times:
            value = tag.get("datetime")
            found.append(value if isinstance(value, str) and value.strip() else clean(tag.get_text()))
        return [value for value in found if value]

    def _all(self, keys: tuple[str, ...]) -> list[str]:
        return [self.meta[key][0] for key in keys if key in self.meta]

    def canonical(self, url: str | None) -> str | None:
        found = self.links.get("canonical") or self.first("og:url", "twitter:url")
        if not found or found.startswith(("javascript:", "data:", "#")):
            return None
        return urljoin(url, found) if url else found

    def declared_languages(self) -> list[str | None]:
        """The page's language declarations: <html lang>, then <meta>, then JSON-LD's inLanguage."""
        return [self.html_lang, self.first("content-language", "language", "dc.language", "og:locale"),
                jsonld.text(self.article.get("inLanguage"))]

    def site_name(self) -> str | None:
        found = self.first("og:site_name", "application-name", "twitter:site")
        found = found or jsonld.site_name(self.documents, self.article)
        return clean(found).lstrip("@") or None

    def image(self, url: str | None) -> str | None:
        found = self.first("og:image", "og:image:url", "og:image:secure_url", "twitter:image",
                           "twitter:image:src", "thumbnailurl")
        found = found or jsonld.text(self.article.get("image")) or self.links.get("image_src")
        if not found:
            return None
        return urljoin(url, found) if url else found

    def tags(self) -> list[str]:
        values: list[str] = list(self.meta.get("article:tag", []))
        if not values:
            keywords = self.article.get("keywords")
            if isinstance(keywords, list):
                values = [k for k in keywords if isinstance(k, str)]
            elif isinstance(keywords, str):
                values = [keywords]
        if not values:
            values = self.meta.get("news_keywords", []) + self.meta.get("keywords", [])[:1]
        tags: list[str] = []
        seen: set[str] = set()
        for value in values:
            for tag in _TAG_SPLIT.split(value):
                tag = clean(tag)
                if tag and len(tag) <= 80 and tag.lower() not in seen:
                    seen.add(tag.lower())
                    tags.append(tag)
        return tags[:50]

    def authors(self) -> list[str]:
        names = jsonld.names(self.article.get("author")) or jsonld.names(self.article.get("creator"))
        if not names:
            names = self.meta.get("author", []) + self.meta.get("article:author", []) + \
                self.meta.get("parsely-author", []) + self.meta.get("sailthru.author", []) + \
                self.meta.get("dc.creator", [])
        if not names:
            names = [text for text in (clean(tag.get_text(" ")) for tag in self.bylines[:_MAX_BYLINES])
                     if 0 < len(text) <= _MAX_BYLINE_CHARS]
        return clean_authors(names)


def clean_authors(names: list[str]) -> list[str]:
    """Author names without URLs, "By " prefixes, duplicates or run-on lists."""
    found: list[str] = []
    seen: set[str] = set()
    for raw in names:
        if _URLISH.match(raw.strip()):
            continue  # article:author often holds the author's page, not a name
        for name in _AUTHOR_SPLIT.split(clean(without_dates(raw))):
            name = _BY.sub("", name).strip(" .-–|:")
            if not name or _BY.match(name + " ") or _URLISH.match(name) or len(name) > 80 or name.lower() in seen:
                continue
            if _DIGIT.search(name) or len(name.split()) > _MAX_NAME_WORDS or "@" in name:
                continue  # a date, a handle or a sentence that shared the byline
            seen.add(name.lower())
            found.append(name)
    return found[:20]
