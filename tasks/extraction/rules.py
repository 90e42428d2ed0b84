"""Per-source extraction rules: CSS selectors declared as data, one object per site.

The sources file is read by every ``gleaner`` command and by the worker's submit path, which
never select anything: the selector engine is imported by the first selector checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from bs4 import Tag


class SiteRules(BaseModel):
    """Selectors that override the generic extractor for one source.

    Each selector is optional; a rule that is unset, or that matches nothing on a page,
    leaves that part to the generic extractor. Selectors run on the page after its scripts,
    styles, <nav>, <aside> and <footer> are gone: those never need selecting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str | None = None  # the element whose text is the headline
    body: str | None = None  # the element(s) holding the article's paragraphs
    date: str | None = None  # an element with a datetime/content attribute or a date as text
    drop: list[str] = Field(default_factory=list)  # elements removed before anything else

    @field_validator("title", "body", "date")
    @classmethod
    def _valid_selector(cls, value: str | None) -> str | None:
        if value is not None:
            check_selector(value)
        return value

    @field_validator("drop")
    @classmethod
    def _valid_selectors(cls, value: list[str]) -> list[str]:
        for selector in value:
            check_selector(selector)
        return value


def check_selector(selector: str) -> None:
    """Raise ValueError for an empty or invalid CSS selector, at load time rather than per page."""
    if not selector.strip():
        raise ValueError("empty CSS selector")
    from soupsieve import SelectorSyntaxError, compile as compile_css

    try:
        compile_css(selector)
    except SelectorSyntaxError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {str(exc).splitlines()[0]}") from None


def apply_drop(rules: SiteRules, soup: Tag) -> None:
    """Remove every element a drop selector matches, before anything else reads the tree."""
    for selector in rules.drop:
        for element in soup.select(selector):
            element.decompose()


def rule_title(rules: SiteRules, soup: Tag) -> str | None:
    if rules.title:
        element = soup.select_one(rules.title)
        if element is not None:
            return element.get_text(" ", strip=True) or None
    return None


def rule_date_text(rules: SiteRules, soup: Tag) -> str | None:
    """The raw date string the date selector points at: a datetime/content attribute, else the text."""
    if rules.date:
        element = soup.select_one(rules.date)
        if element is not None:
            for attribute in ("datetime", "content", "data-timestamp", "title"):
                value = element.get(attribute)
                if isinstance(value, str) and value.strip():
                    return value
            return element.get_text(" ", strip=True) or None
    return None


def rule_bodies(rules: SiteRules, soup: Tag) -> list[Tag]:
    """The elements the body selector matches, outermost only, in document order."""
    if not rules.body:
        return []
    found = soup.select(rules.body)
    chosen = set(map(id, found))
    return [element for element in found if not any(id(parent) in chosen for parent in element.parents)]
