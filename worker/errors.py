"""Gleaner's errors, one small hierarchy.

    IngestError                  anything that ends or delays one URL's ingestion
    ├── RetryableError           try again later, with backoff
    │   ├── NetworkError         connect/read failure, reset, timeout
    │   ├── ServerError          5xx or 429 (carries retry_after)
    │   └── HostBusyError        the host is at its politeness limit; a delay, not a failed attempt
    └── PermanentError           retrying cannot help; goes to the dead-letter store
        ├── InvalidURLError      malformed URL or refused scheme
        ├── PrivateAddressError  host resolves to a private/loopback/link-local address
        ├── HTTPStatusError      4xx such as 404 or 410
        ├── RedirectError        too many redirects or a redirect loop
        ├── ContentTypeError     not HTML/XHTML
        ├── TooLargeError        body or decompressed body over the cap, or too slow
        ├── RobotsDisallowedError  the site's robots.txt forbids the path to our user agent
        ├── AttemptsExhaustedError retryable failures kept coming until the attempt limit
        ├── ExtractionError      no article could be extracted
        └── PayloadLostError     an in-flight page expired from Redis

Each error's message is the reason a person reads in ``gleaner failed list``.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error that ends or delays one URL's ingestion."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def reason(self) -> str:
        return str(self)


class RetryableError(IngestError):
    """Worth another attempt later."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class NetworkError(RetryableError):
    pass


class ServerError(RetryableError):
    pass


class HostBusyError(RetryableError):
    """The host is at its rate or concurrency limit: come back after ``retry_after`` seconds.

    The runner counts these apart from failed attempts, so a busy host delays a URL (for up to
    ``host_busy_timeout`` seconds in all) but never uses up its ``fetch_retries``.
    """


class PermanentError(IngestError):
    """Retrying cannot help; the URL goes to the dead-letter store."""


class InvalidURLError(PermanentError):
    pass


class PrivateAddressError(PermanentError):
    pass


class HTTPStatusError(PermanentError):
    pass


class RedirectError(PermanentError):
    pass


class ContentTypeError(PermanentError):
    pass


class TooLargeError(PermanentError):
    pass


class RobotsDisallowedError(PermanentError):
    pass


class AttemptsExhaustedError(PermanentError):
    """A retryable failure that happened once too often; its reason names the last one."""


class ExtractionError(PermanentError):
    pass


class PayloadLostError(PermanentError):
    pass
