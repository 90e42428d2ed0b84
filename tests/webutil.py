"""Helpers for the web tests: records stored straight into a database, the app served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from datetime import datetime

import httpx

from worker.models import Article, Draft
from worker.redis_server import free_port
from worker.storage import Storage


def store_record(storage: Storage, *, title: str, body: list[str], category: str = "test", url: str | None = None,
                 published_at: datetime | None = None, summary: str = "", duplicate_of: str | None = None,
                 authors: list[str] | None = None, language: str | None = None) -> str:
    url = url or f"https://news.example/{uuid.uuid4().hex}.html"
    text = "\n".join(body)
    draft = Draft(job_id=str(uuid.uuid4()), category_id=category, url=url,
                  article=Article(title=title, body=body, published_at=published_at, authors=authors or [],
                                  language=language),
                  canonical_url=url, content_hash=hashlib.sha256(text.encode()).hexdigest(),
                  duplicate_of=duplicate_of, summary=summary, word_count=len(text.split()))
    record_id, _ = storage.upsert_record(draft)
    return record_id


class WebServer:
    """The app under uvicorn in a thread of the test process, on a free loopback port."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.port = free_port(host)
        self.base_url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 20.0) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.02)
        httpx.get(self.base_url + "/healthz", timeout=5).raise_for_status()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
