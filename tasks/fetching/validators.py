"""ETag and Last-Modified per URL, kept in Redis so the next fetch can ask "changed since?".

A 304 answer then costs the site no body and us no parse. The final URL is kept too, because
the stored record is found by the address the page was last served from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

from worker import keys
from worker.models import Page


@dataclass(frozen=True)
class Validators:
    final_url: str
    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        """The conditional request headers these validators allow."""
        sent = {}
        if self.etag:
            sent["If-None-Match"] = self.etag
        if self.last_modified:
            sent["If-Modified-Since"] = self.last_modified
        return sent


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ValidatorStore:
    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl

    def get(self, url: str) -> Validators | None:
        final_url, etag, modified = self.redis.hmget(keys.validators(_digest(url)),
                                                     ["final_url", "etag", "last_modified"])
        if final_url is None or (etag is None and modified is None):
            return None
        return Validators(final_url.decode(), etag.decode() if etag else None, modified.decode() if modified else None)

    def put(self, url: str, page: Page, pipe: redis.client.Pipeline | None = None) -> None:
        """Remember the page's validators, or forget old ones if it sent none. With ``pipe``,
        the commands are queued there for the caller to send."""
        key = keys.validators(_digest(url))
        own = pipe is None
        pipe = self.redis.pipeline() if own else pipe
        pipe.delete(key)
        if page.etag or page.last_modified:
            mapping = {"final_url": page.final_url}
            if page.etag:
                mapping["etag"] = page.etag
            if page.last_modified:
                mapping["last_modified"] = page.last_modified
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.ttl)
        if own:
            pipe.execute()
