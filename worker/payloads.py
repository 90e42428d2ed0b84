"""What one stage hands the next, kept in Redis under the job's id with an expiry.

The broker carries only job ids; the fetched page (zlib-compressed) and the draft between stages
live here, so a 1 MB page never travels through a queue. Each kind of payload is a ``Codec``: how
it is written onto a Redis pipeline and read back. worker/pipeline.py says which stage reads and
writes which; worker/runner.py does the reading and writing, in the stage's own round trips.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis
from isal import isal_zlib
from pydantic import BaseModel

from worker.deflated import Deflated, zlib_stream
from worker.errors import PayloadLostError
from worker.models import Draft, Page

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class FetchedPage:
    """What fetch hands to parse: the page's metadata and its body."""

    page: Page
    body: bytes
    # The body already deflated (by the fetch stage, for its archive record too): the payload frames
    # these blocks rather than compressing the page a second time.
    deflated: Deflated | None = field(default=None, compare=False, repr=False)


class Codec(Generic[T]):
    """One kind of payload: how it is written onto a pipeline and how the value read back is decoded."""

    name: str
    lost: str  # the dead letter's reason when it expired before the next stage read it

    def write(self, pipe: redis.client.Pipeline, key: str, value: T, ttl: int) -> None:
        raise NotImplementedError

    def read(self, pipe: redis.client.Pipeline, key: str) -> None:
        """Queue exactly one command whose reply ``decode`` takes."""
        raise NotImplementedError

    def decode(self, raw: Any) -> T:
        raise NotImplementedError


class PageCodec(Codec[FetchedPage]):
    name = "page"
    lost = "the fetched page expired from Redis before it was parsed"
    fields = ("meta", "body")

    def write(self, pipe: redis.client.Pipeline, key: str, value: FetchedPage, ttl: int) -> None:
        # Either way a zlib stream, which every worker, older or newer, reads (zlib.decompress would).
        body = zlib_stream(value.deflated) if value.deflated is not None else zlib.compress(value.body, 3)
        pipe.hset(key, mapping={"meta": value.page.model_dump_json(), "body": body})
        pipe.expire(key, ttl)

    def read(self, pipe: redis.client.Pipeline, key: str) -> None:
        pipe.hmget(key, self.fields)

    def decode(self, raw: Any) -> FetchedPage:
        meta, body = raw if raw is not None else (None, None)
        if meta is None or body is None:
            raise PayloadLostError(self.lost)
        # ISA-L's inflate reads the same zlib stream in half of zlib's CPU (a real page: 0.22 ms, 0.47).
        return FetchedPage(Page.model_validate_json(meta), isal_zlib.decompress(body))


class ModelCodec(Codec[M]):
    """A pydantic model as its JSON."""

    def __init__(self, model: type[M], name: str, lost: str) -> None:
        self.model, self.name, self.lost = model, name, lost

    def write(self, pipe: redis.client.Pipeline, key: str, value: M, ttl: int) -> None:
        pipe.set(key, value.model_dump_json(), ex=ttl)

    def read(self, pipe: redis.client.Pipeline, key: str) -> None:
        pipe.get(key)

    def decode(self, raw: Any) -> M:
        if raw is None:
            raise PayloadLostError(self.lost)
        return self.model.model_validate_json(raw)


PAGE = PageCodec()
DRAFT: ModelCodec[Draft] = ModelCodec(Draft, "draft", "the parsed draft expired from Redis before it was stored")
