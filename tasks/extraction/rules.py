"""Per-source extraction rules: CSS selectors declared as data, one object per site."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from soupsieve import SelectorSyntaxError, compile as compile_css


class SiteRules(BaseModel):
    """Selectors that override the generic extractor for one source.

    Each selector is optional; a rule that is unset, or that matches nothing on a page,
    leaves that part to the generic extractor.
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
            _check(value)
        return value

    @field_validator("drop")
    @classmethod
    def _valid_selectors(cls, value: list[str]) -> list[str]:
        for selector in value:
            _check(selector)
        return value


def _check(selector: str) -> None:
    # Rejected here, at construction, so a typo surfaces when the rules load, not per page.
    if not selector.strip():
        raise ValueError("empty CSS selector")
    try:
        compile_css(selector)
    except SelectorSyntaxError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None
