"""The article object in a page's JSON-LD, and the plain values inside it."""

from __future__ import annotations

from typing import Any, Iterator

# schema.org types whose object describes the page's article (or the page holding one).
_ARTICLE_TYPES = frozenset(
    t.lower()
    for t in (
        "Article", "NewsArticle", "BlogPosting", "ReportageNewsArticle", "AnalysisNewsArticle",
        "OpinionNewsArticle", "ReviewNewsArticle", "BackgroundNewsArticle", "LiveBlogPosting",
        "ScholarlyArticle", "TechArticle", "SocialMediaPosting", "Report", "Blog", "Review",
        "CreativeWork", "VideoObject", "WebPage", "ItemPage", "MediaObject",
    )
)
_WEAK_TYPES = frozenset(("webpage", "itempage", "creativework", "mediaobject", "videoobject", "blog"))


def _objects(node: Any, depth: int = 0) -> Iterator[dict]:
    """Every JSON object in a JSON-LD document, @graph members and list items included."""
    if depth > 6:
        return
    if isinstance(node, list):
        for item in node[:200]:
            yield from _objects(item, depth + 1)
    elif isinstance(node, dict):
        yield node
        graph = node.get("@graph")
        if graph is not None:
            yield from _objects(graph, depth + 1)
        main = node.get("mainEntity") or node.get("mainEntityOfPage")
        if isinstance(main, (dict, list)):
            yield from _objects(main, depth + 1)


def _types(obj: dict) -> set[str]:
    value = obj.get("@type")
    values = value if isinstance(value, list) else [value]
    return {v.lower() for v in values if isinstance(v, str)}


def article_object(documents: list[Any]) -> dict:
    """The JSON-LD object that describes the article: a news/blog type first, then a page type."""
    weak: dict | None = None
    for obj in _objects(documents):
        types = _types(obj)
        if not types & _ARTICLE_TYPES:
            continue
        if types - _WEAK_TYPES:
            return obj
        if weak is None or ("headline" in obj and "headline" not in weak):
            weak = obj
    return weak or {}


def text(value: Any) -> str | None:
    """A plain string from a JSON-LD value that may be a string, a list or an object with a name."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        for item in value:
            found = text(item)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key in ("name", "url", "@id", "contentUrl", "@value"):
            found = text(value.get(key))
            if found:
                return found
    return None


def names(value: Any, documents: list[Any] | None = None) -> list[str]:
    """Every person or organisation name in a JSON-LD value (author, creator...).

    A reference to an object elsewhere in the page's JSON-LD (``{"@id": "#author"}``, as Yoast's
    @graph writes the author) is followed to that object's name.
    """
    if isinstance(value, list):
        found: list[str] = []
        for item in value[:50]:
            found.extend(names(item, documents))
        return found
    if isinstance(value, dict):
        name = value.get("name")
        if name is None and documents and isinstance(value.get("@id"), str):
            target = next((obj for obj in _objects(documents) if obj.get("@id") == value["@id"] and "name" in obj), None)
            name = target.get("name") if target else None
        return names(name) if name is not None else []
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    return []


def types(value: Any) -> set[str]:
    """The lower-cased @type names of a JSON-LD object (none for anything else)."""
    return _types(value) if isinstance(value, dict) else set()


def site_name(documents: list[Any], article: dict) -> str | None:
    """The publisher's name from the article object, else from a WebSite/Organization object."""
    found = text((article.get("publisher") or {}).get("name")) if isinstance(article.get("publisher"), dict) else None
    if found:
        return found
    for obj in _objects(documents):
        if _types(obj) & {"website", "newsmediaorganization", "organization"}:
            found = text(obj.get("name"))
            if found:
                return found
    return None
