"""In-flight payloads in Redis: fetched pages and drafts, referenced by job id, with expiry.

The broker carries only job ids; the page body (zlib-compressed) and the draft between stages
live here so a 1 MB page never travels through a queue.

Inside a running stage (``deferred``), the payload a stage hands on is not written at once: the
stage wrapper writes it in the same Redis round trip as its end-of-stage bookkeeping, before the
onward message goes out (worker/pipeline.py ``_finish``). One round trip per hop saved.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from worker import keys
from worker.errors import PayloadLostError
from worker.models import Draft, Page


Write = Callable[[redis.client.Pipeline], None]


class PageStore:
    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self.client = client
        self.ttl = ttl
        self._local = threading.local()

    @contextmanager
    def deferred(self) -> Iterator[list[Write]]:
        """Hold this thread's payload writes in the yielded list instead of sending them; the
        caller adds them to a pipeline of its own (``write_into``) or drops them."""
        self._local.pending = pending = []
        try:
            yield pending
        finally:
            self._local.pending = None

    @staticmethod
    def write_into(pipe: redis.client.Pipeline, pending: list[Write]) -> None:
        for write in pending:
            write(pipe)
        pending.clear()

    def write_now(self, pending: list[Write]) -> None:
        """Send held writes in a round trip of their own."""
        if pending:
            pipe = self.client.pipeline()
            self.write_into(pipe, pending)
            pipe.execute()

    def _write(self, write: Write) -> None:
        pending = getattr(self._local, "pending", None)
        if pending is not None:
            pending.append(write)
            return
        self.write_now([write])

    def put_page(self, job_id: str, page: Page, body: bytes) -> None:
        meta, packed, key, ttl = page.model_dump_json(), zlib.compress(body, 3), keys.page(job_id), self.ttl

        def write(pipe: redis.client.Pipeline) -> None:
            pipe.hset(key, mapping={"meta": meta, "body": packed})  # with its expiry, in one go
            pipe.expire(key, ttl)

        self._write(write)

    def get_page(self, job_id: str) -> tuple[Page, bytes]:
        meta, body = self.client.hmget(keys.page(job_id), ["meta", "body"])
        if meta is None or body is None:
            raise PayloadLostError("the fetched page expired from Redis before it was parsed")
        return Page.model_validate_json(meta), zlib.decompress(body)

    def put_draft(self, draft: Draft, stage: str) -> None:
        """Keep the draft as ``stage`` (the stage writing it) left it."""
        key, raw, ttl = keys.draft(draft.job_id, stage), draft.model_dump_json(), self.ttl
        self._write(lambda pipe: pipe.set(key, raw, ex=ttl))

    def get_draft(self, job_id: str, stage: str) -> Draft:
        """The draft as ``stage`` (an earlier stage) left it."""
        raw = self.client.get(keys.draft(job_id, stage))
        if raw is None:
            raise PayloadLostError("the parsed draft expired from Redis before it was stored")
        return Draft.model_validate_json(raw)

    def discard(self, job_id: str) -> None:
        self.client.delete(keys.page(job_id), *(keys.draft(job_id, stage) for stage in keys.DRAFT_STAGES))
