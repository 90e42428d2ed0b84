"""In-flight payloads in Redis: fetched pages and drafts, referenced by job id, with expiry.

The broker carries only job ids; the page body (zlib-compressed) and the draft between stages
live here so a 1 MB page never travels through a queue.
"""

from __future__ import annotations

import zlib

import redis

from worker import keys
from worker.errors import PayloadLostError
from worker.models import Draft, Page


class PageStore:
    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self.client = client
        self.ttl = ttl

    def put_page(self, job_id: str, page: Page, body: bytes) -> None:
        pipe = self.client.pipeline()  # written and given its expiry together
        pipe.hset(keys.page(job_id), mapping={"meta": page.model_dump_json(), "body": zlib.compress(body, 3)})
        pipe.expire(keys.page(job_id), self.ttl)
        pipe.execute()

    def get_page(self, job_id: str) -> tuple[Page, bytes]:
        meta, body = self.client.hmget(keys.page(job_id), ["meta", "body"])
        if meta is None or body is None:
            raise PayloadLostError("the fetched page expired from Redis before it was parsed")
        return Page.model_validate_json(meta), zlib.decompress(body)

    def put_draft(self, draft: Draft) -> None:
        self.client.set(keys.draft(draft.job_id), draft.model_dump_json(), ex=self.ttl)

    def get_draft(self, job_id: str) -> Draft:
        raw = self.client.get(keys.draft(job_id))
        if raw is None:
            raise PayloadLostError("the parsed draft expired from Redis before it was stored")
        return Draft.model_validate_json(raw)

    def discard(self, job_id: str) -> None:
        self.client.delete(keys.page(job_id), keys.draft(job_id))
