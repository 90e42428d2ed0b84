"""What a page's <meta>, <link> and JSON-LD say about its article: title, dates, authors, language,
URLs, tags, read once; the choice among them is made elsewhere (title, published, authors, language)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from tasks.extraction import jsonld

_SPACES = re.compile(r"\s+")
_TAG_SPLIT = re.compile(r"\s*[,;|]\s*")
# The <link> relations read (the others, stylesheets, icons, preloads..., are cut before parsing).
LINK_RELS = ("canonical", "image_src")
_AUTHOR_KEYS = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator", "byl")

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
_TITLE_KEYS = ("og:title", "twitter:title", "dc.title", "headline", "title")
_URL_KEYS = ("og:url", "twitter:url")
_LANGUAGE_KEYS = ("content-language", "language", "dc.language", "og:locale")
_SITE_KEYS = ("og:site_name", "application-name", "twitter:site")
_IMAGE_KEYS = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src", "thumbnailurl")
_TAG_KEYS = ("article:tag", "news_keywords", "keywords")
_LABEL_KEYS = ("twitter:label", "twitter:data")  # numbered: Yoast's label/value pairs, 1 to 4
# Every <meta> key read (by name, property, itemprop or http-equiv): the others (viewport, robots,
# verification codes...) are cut before parsing.
META_KEYS = (*_AUTHOR_KEYS, *_PUBLISHED_KEYS, *_MODIFIED_KEYS, *_TITLE_KEYS, *_URL_KEYS, *_LANGUAGE_KEYS,
             *_SITE_KEYS, *_IMAGE_KEYS, *_TAG_KEYS, *_LABEL_KEYS)


def clean(text: str | None) -> str:
    return _SPACES.sub(" ", text).strip() if text else ""


class PageMeta:
    """The page's <meta>, <link> and JSON-LD facts, read once and queried by the extractor."""

    def __init__(self, soup: BeautifulSoup, documents: list[Any], tags: list[Tag]) -> None:
        self.meta: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}
        self.title_tag = ""
        self.times: list[Tag] = []
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
                        if value in LINK_RELS:
                            self.links.setdefault(value, href.strip())
            elif name == "title":
                if not self.title_tag:
                    self.title_tag = clean(tag.get_text())
            elif name == "time":
                self.times.append(tag)
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
            self.first(*_TITLE_KEYS),
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
        found = self.links.get(LINK_RELS[0]) or self.first(*_URL_KEYS)
        if not found or found.startswith(("javascript:", "data:", "#")):
            return None
        return urljoin(url, found) if url else found

    def declared_languages(self) -> list[str | None]:
        """The page's language declarations: <html lang>, then <meta>, then JSON-LD's inLanguage."""
        return [self.html_lang, self.first(*_LANGUAGE_KEYS),
                jsonld.text(self.article.get("inLanguage"))]

    def site_name(self) -> str | None:
        found = self.first(*_SITE_KEYS)
        found = found or jsonld.site_name(self.documents, self.article)
        return clean(found).lstrip("@") or None

    def image(self, url: str | None) -> str | None:
        found = self.first(*_IMAGE_KEYS)
        found = found or jsonld.text(self.article.get("image")) or self.links.get(LINK_RELS[1])
        if not found:
            return None
        return urljoin(url, found) if url else found

    def tags(self) -> list[str]:
        values: list[str] = list(self.meta.get(_TAG_KEYS[0], []))
        if not values:
            keywords = self.article.get("keywords")
            if isinstance(keywords, list):
                values = [k for k in keywords if isinstance(k, str)]
            elif isinstance(keywords, str):
                values = [keywords]
        if not values:
            values = self.meta.get(_TAG_KEYS[1], []) + self.meta.get(_TAG_KEYS[2], [])[:1]
        tags: list[str] = []
        seen: set[str] = set()
        for value in values:
            for tag in _TAG_SPLIT.split(value):
                tag = clean(tag)
                if tag and len(tag) <= 80 and tag.lower() not in seen:
                    seen.add(tag.lower())
                    tags.append(tag)
        return tags[:50]

    def declared_authors(self) -> list[list[str]]:
        """The author names the page declares: JSON-LD's (author, else creator), then <meta>'s."""
        in_json = jsonld.names(self.article.get("author"), self.documents) or \
            jsonld.names(self.article.get("creator"), self.documents)
        in_meta = [value for key in _AUTHOR_KEYS for value in self.meta.get(key, [])]
        # Yoast writes the author as a label and a value for link previews: "Written by" / "Ann Example".
        for number in range(1, 5):
            label = (self.first(f"{_LABEL_KEYS[0]}{number}") or "").lower()
            if label in ("written by", "author", "by"):
                in_meta.extend(self.meta.get(f"{_LABEL_KEYS[1]}{number}", [])[:1])
        return [in_json, in_meta]

    def outlets(self) -> list[str]:
        """The publisher's names: who published the article, never who wrote it."""
        found = [self.site_name(), jsonld.site_name([], self.article)]
        return [name for name in found if name]
