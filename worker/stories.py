"""Stories: articles about the same event, from any outlet, grouped under one id.

A story is named by its first record's id. A new record joins the story of the stored record it
is most similar to when that record is close enough to be about the same event, not only the same
subject: a cosine (``worker.similar``) of at least ``STORY_FLOOR``, and both published within
``STORY_DAYS`` of each other (outlets cover an event within days; a later piece on the subject is a
follow-up, another story). A record without a publication date is not news of an event (a guide,
a reference page) and stays a story of its own. Stories are never merged afterwards: a record
stays where it joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

__all__ = ["STORY_DAYS", "STORY_FLOOR", "Candidate", "other_outlets", "outlet", "story_of"]

# The cosine from which two records are, on the dev half of bench/topics.py's STORIES, more likely
# than not about the same event (bench/results/similar.md, "Stories"); held-out checks it.
STORY_FLOOR = 0.35
STORY_DAYS = 3


@dataclass(frozen=True)
class Candidate:
    """A stored record as story assignment sees it."""

    id: str
    score: float  # cosine with the new record
    story_id: str | None  # None for records stored before stories existed: their own story
    published_at: datetime | None


def story_of(candidates: Iterable[Candidate], published_at: datetime | None) -> str | None:
    """The story a new record published at ``published_at`` joins, or None: a story of its own."""
    if published_at is None:
        return None
    best: Candidate | None = None
    for c in candidates:
        if c.score < STORY_FLOOR or c.published_at is None:
            continue
        if abs(published_at - c.published_at) > timedelta(days=STORY_DAYS):
            continue
        if best is None or c.score > best.score:
            best = c
    if best is None:
        return None
    return best.story_id or best.id


def outlet(url: str) -> str:
    """Who published a URL: its host without "www." (two sites of one publisher count as two)."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def other_outlets(url: str, members: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The story's records from outlets other than ``url``'s, one per outlet, in the given order:
    ``members`` and the result are (record id, title, url)."""
    seen = {outlet(url)}
    out = []
    for member in members:
        name = outlet(member[2])
        if name and name not in seen:
            seen.add(name)
            out.append(member)
    return out
