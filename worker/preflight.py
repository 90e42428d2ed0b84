"""Start-up check: does the configured Redis and database let this process in?

Run by ``gleaner worker``, ``beat`` and ``web`` before they start. A refused login (wrong
password, unknown user or database) will not fix itself, so it ends the process with one line
naming the server and what it refused, instead of Celery retrying forever or every job failing
later. A server that does not answer may just be starting (the data host rebooting): that is
reported and the process goes on, waiting for it as it would have anyway.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from worker.settings import SecretFileError, Settings, get_settings

log = logging.getLogger("gleaner.preflight")

CHECK_TIMEOUT = 5.0  # seconds to connect and log in
EX_CONFIG = 78  # sysexits.h: a configuration error; systemd units do not restart on it


class PreflightError(Exception):
    """A server refused this process; the message is the one line to show."""


@dataclass(frozen=True)
class Finding:
    service: str  # "Redis" or "PostgreSQL"
    where: str  # host:port
    refused: bool  # True: the login was refused; False: no answer
    reason: str

    def line(self, setting: str) -> str:
        if self.refused:
            return f"{self.service} at {self.where} refused the login: {self.reason}; check {setting}"
        return f"{self.service} at {self.where} does not answer ({self.reason}); waiting for it"


def _where(url: str, default_port: int) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or default_port}"


def _secrets_in(url: str) -> list[str]:
    password = urlsplit(url).password
    return [password] if password else []


def scrub(message: str, secrets: list[str]) -> str:
    """The message with every secret replaced, in case a driver quoted one back."""
    for value in secrets:
        if value:
            message = message.replace(value, "***")
    return " ".join(message.split())  # one line: drivers' messages carry newlines and tabs


def check_redis(url: str) -> Finding | None:
    import redis

    where = _where(url, 6379)
    client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        # Without a password redis-py's HELLO is refused with a message about HELLO: say it plainly.
        reason = str(exc) if urlsplit(url).password else "a password is required and none was given"
        return Finding("Redis", where, True, scrub(reason, _secrets_in(url)))
    except redis.ResponseError as exc:  # e.g. "DB index is out of range"
        return Finding("Redis", where, True, scrub(str(exc), _secrets_in(url)))
    except redis.RedisError as exc:
        return Finding("Redis", where, False, scrub(str(exc), _secrets_in(url)))
    finally:
        client.close()
    return None


# libpq's words for a login the server (or the client, lacking a password) will not allow.
_PG_REFUSALS = ("authentication failed", "no password supplied", "does not exist", "no pg_hba.conf entry",
                "permission denied")


def check_database(url: str) -> Finding | None:
    if not url.startswith("postgresql"):
        return None  # SQLite: a local file, no login
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    secrets = [parsed.password] if parsed.password else []
    engine = create_engine(url, connect_args={"connect_timeout": int(CHECK_TIMEOUT)}, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  <why>'
        reason = str(exc.orig).split(" failed: ")[-1].removeprefix("FATAL:").strip()
        refused = any(word in reason for word in _PG_REFUSALS)
        return Finding("PostgreSQL", where, refused, scrub(reason, secrets))
    finally:
        engine.dispose()
    return None


def preflight(settings: Settings, *, redis: bool = True, database: bool = True) -> list[str]:
    """Check the configured servers; raise PreflightError on a refused login, return warnings
    (one line each, never a secret) for servers that do not answer."""
    checks = []
    if redis and settings.redis_url:  # unset: the embedded server, started on demand, no password
        checks.append(("GLEANER_REDIS_URL", check_redis, settings.redis_url))
    if database:
        checks.append(("GLEANER_DATABASE_URL", check_database, settings.effective_database_url))
    warnings = []
    for setting, check, url in checks:
        finding = check(url)
        if finding is None:
            continue
        if finding.refused:
            raise PreflightError(finding.line(setting))
        warnings.append(finding.line(setting))
    return warnings


def start_or_exit(command: str, *, redis: bool = True, database: bool = True) -> None:
    """For the CLI's long-running commands: check, and on a refusal (or an unusable secret
    file) print one line to stderr and exit with EX_CONFIG."""
    try:
        warnings = preflight(get_settings(), redis=redis, database=database)
    except (PreflightError, SecretFileError) as exc:
        print(f"gleaner {command}: {exc}", file=sys.stderr)
        sys.exit(EX_CONFIG)
    for line in warnings:
        log.warning(line)
