"""The seen-URL set: canonical URLs ingested recently, so a page is not fetched again within a window.

One Redis key per URL (``worker.keys.seen_url``), named by a digest of its canonical form and
expiring after ``window`` seconds, so the set forgets by itself and needs no sweeping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import redis

from tasks.urlnorm import canonicalize_url
from worker import keys

__all__ = ["SeenURLs"]

DEFAULT_WINDOW = 7 * 24 * 3600  # seconds a URL stays seen after ingestion


def _key(url: str) -> str:
    # 128 bits of digest: a fixed key size whatever the URL's length, collisions out of reach.
    return keys.seen_url(hashlib.blake2b(canonicalize_url(url).encode("utf-8"), digest_size=16).hexdigest())


class SeenURLs:
    """Mark and check canonical URLs; ``window <= 0`` turns the set off (nothing is ever seen).

    Every method canonicalizes its URL first and so raises ``InvalidURLError`` on a bad one.
    """

    def __init__(self, client: redis.Redis, window: int = DEFAULT_WINDOW) -> None:
        self.redis = client
        self.window = int(window)

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def seen(self, url: str) -> bool:
        """True if ``url`` (any spelling of it) was marked less than ``window`` seconds ago."""
        return self.enabled and bool(self.redis.exists(_key(url)))

    def mark(self, *urls: str) -> None:
        """Mark URLs as ingested now (the window restarts for ones already marked)."""
        self.mark_many(urls)

    def mark_many(self, urls: Iterable[str]) -> None:
        if not self.enabled:
            return
        pipe = self.redis.pipeline(transaction=False)
        for url in urls:
            pipe.set(_key(url), b"1", ex=self.window)
        pipe.execute()

    def claim(self, url: str) -> bool:
        """Mark ``url`` unless it is already marked; True for the one caller that marked it.

        For deciding who fetches: of several workers handed one URL, one gets True. If that
        fetch then fails, ``forget`` the URL so a retry is not refused.
        """
        if not self.enabled:
            return True
        return bool(self.redis.set(_key(url), b"1", ex=self.window, nx=True))

    def claim_many(self, urls: Iterable[str]) -> list[bool]:
        """``claim`` for many URLs in one round trip; a URL repeated in ``urls`` is won once."""
        urls = list(urls)
        if not self.enabled:
            return [True] * len(urls)
        pipe = self.redis.pipeline(transaction=False)
        for url in urls:
            pipe.set(_key(url), b"1", ex=self.window, nx=True)
        return [bool(won) for won in pipe.execute()]

    def forget(self, url: str) -> None:
        self.redis.delete(_key(url))
