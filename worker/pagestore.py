"""In-flight payloads in Redis: fetched pages and drafts, referenced by job id, with expiry.

The broker carries only job ids; the page body (zlib-compressed) and the draft between stages
live here so a 1 MB page never travels through a queue.

Inside a running stage (``deferred``), the payload a stage hands on is not written at once: the
stage wrapper writes it in the same Redis round trip as its end-of-stage bookkeeping, before the
onward message goes out (worker/pipeline.py ``_finish``), and the payload a stage reads is
fetched in the round trip of its start-of-stage bookkeeping (``prefetch_into``). Two round trips
per hop saved.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from worker import keys
from worker.errors import PayloadLostError
from worker.models import Draft, Page
from worker.queues import Queue


Write = Callable[[redis.client.Pipeline], None]

# The payload each stage reads: the fetched page, or the draft as the stage before it left it.
_READS: dict[str, str | None] = {
    Queue.PARSE.value: None,
    Queue.DEDUPE.value: Queue.PARSE.value,
    Queue.SUMMARIZE.value: Queue.DEDUPE.value,
    Queue.STORE.value: Queue.SUMMARIZE.value,
}
_PAGE_FIELDS = ["meta", "body"]


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
        self._local.read = {}
        try:
            yield pending
        finally:
            self._local.pending = None
            self._local.read = None

    def prefetch_into(self, pipe: redis.client.Pipeline, job_id: str, stage: str) -> Callable[[Any], None] | None:
        """Inside ``deferred``: add the read of the payload ``stage`` is about to ask for to the
        caller's pipeline. The caller hands that command's result to the returned function; the
        stage's ``get_page``/``get_draft`` then answers from it without a round trip of its own.
        None if the stage reads no payload (nothing was added)."""
        if stage not in _READS or getattr(self._local, "read", None) is None:
            return None
        source = _READS[stage]
        if source is None:
            key = keys.page(job_id)
            pipe.hmget(key, _PAGE_FIELDS)
        else:
            key = keys.draft(job_id, source)
            pipe.get(key)
        read = self._local.read

        def accept(value: Any) -> None:
            read[key] = value

        return accept

    def _read(self, key: str, fetch: Callable[[], Any]) -> Any:
        """The prefetched value of ``key`` (once), else a fresh read."""
        read = getattr(self._local, "read", None)
        if read and key in read:
            return read.pop(key)
        return fetch()

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

    def defer(self, write: Write) -> None:
        """Inside a stage, send this write with the stage's end-of-stage round trip (see
        ``_finish``: unless the stage is to be retried); outside one, at once."""
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

        self.defer(write)

    def get_page(self, job_id: str) -> tuple[Page, bytes]:
        key = keys.page(job_id)
        meta, body = self._read(key, lambda: self.client.hmget(key, _PAGE_FIELDS))
        if meta is None or body is None:
            raise PayloadLostError("the fetched page expired from Redis before it was parsed")
        return Page.model_validate_json(meta), zlib.decompress(body)

    def put_draft(self, draft: Draft, stage: str) -> None:
        """Keep the draft as ``stage`` (the stage writing it) left it."""
        key, raw, ttl = keys.draft(draft.job_id, stage), draft.model_dump_json(), self.ttl
        self.defer(lambda pipe: pipe.set(key, raw, ex=ttl))

    def get_draft(self, job_id: str, stage: str) -> Draft:
        """The draft as ``stage`` (an earlier stage) left it."""
        key = keys.draft(job_id, stage)
        raw = self._read(key, lambda: self.client.get(key))
        if raw is None:
            raise PayloadLostError("the parsed draft expired from Redis before it was stored")
        return Draft.model_validate_json(raw)

    def discard(self, job_id: str) -> None:
        """Delete the job's page and drafts (inside a stage: with the stage's end, as writes are)."""
        names = [keys.page(job_id), *(keys.draft(job_id, stage) for stage in keys.DRAFT_STAGES)]
        self.defer(lambda pipe: pipe.delete(*names))
