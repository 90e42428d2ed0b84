"""An optional LLM summarizer over the OpenAI-compatible chat completions API.

Off unless ``GLEANER_SUMMARIZER=llm``. It POSTs the article to
``{llm_base_url}/chat/completions`` (so ``llm_base_url`` usually ends in ``/v1``,
e.g. ``http://127.0.0.1:8080/v1`` for a local llama.cpp or vLLM server) and never
lets the model's trouble become the pipeline's: on a timeout, a transport error,
a non-200 status, a body that is not the API's JSON, or an empty answer, it logs
why and returns the extractive summary instead. An answer over the budget is
trimmed to its leading whole sentences; if not even one fits, extractive again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tasks.summaries.sentences import join_sentences, split_sentences
from tasks.summaries.extractive import summarize_extractive

__all__ = ["SummarizerConfig", "summarize", "summarize_llm"]

log = logging.getLogger(__name__)

# The article text sent to the model, cut at a paragraph boundary: enough for any
# news story, small enough for a short-context local model (~3-4k tokens).
MAX_INPUT_CHARS = 12_000
# The whole response body; an OpenAI-style answer for a 300-character summary is ~1 KB.
MAX_RESPONSE_BYTES = 1024 * 1024
# Labels models like to put in front of an answer despite being told not to.
_PREAMBLES = ("summary:", "here is a summary:", "here's a summary:", "要約：", "要約:", "摘要：", "摘要:")


@dataclass(frozen=True)
class SummarizerConfig:
    """Which summarizer runs and how to reach the model; see ``from_settings``."""

    summarizer: str = "extractive"  # "extractive" or "llm"
    llm_base_url: str | None = None  # e.g. "http://127.0.0.1:8080/v1"; unset: LLM off
    llm_model: str | None = None
    llm_api_key: str | None = None  # sent as "Authorization: Bearer ..." when set
    llm_timeout: float = 20.0  # seconds for the whole request, connect to last byte

    @classmethod
    def from_settings(cls, settings: Any) -> SummarizerConfig:
        """Read the ``summarizer`` and ``llm_*`` fields from the settings object (missing: defaults)."""
        default = cls()
        return cls(
            summarizer=str(getattr(settings, "summarizer", default.summarizer) or default.summarizer).lower(),
            llm_base_url=getattr(settings, "llm_base_url", None) or None,
            llm_model=getattr(settings, "llm_model", None) or None,
            llm_api_key=getattr(settings, "llm_api_key", None) or None,
            llm_timeout=float(getattr(settings, "llm_timeout", default.llm_timeout)),
        )

    @property
    def llm_ready(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)


class _Unusable(Exception):
    """The model's answer cannot be used; the message says why (for the log)."""


def summarize(
    paragraphs: list[str],
    budget: int,
    config: SummarizerConfig,
    *,
    title: str | None = None,
    client: httpx.Client | None = None,
) -> str:
    """The summary the configuration asks for: extractive, or LLM with extractive fallback."""
    if config.summarizer == "llm":
        return summarize_llm(paragraphs, budget, config, client, title=title)
    return summarize_extractive(paragraphs, budget=budget, title=title)


def summarize_llm(
    paragraphs: list[str],
    budget: int,
    config: SummarizerConfig,
    client: httpx.Client | None = None,
    *,
    title: str | None = None,
) -> str:
    """An LLM-written summary of at most ``budget`` characters, or the extractive one if that fails.

    Pass the worker's long-lived ``client`` to reuse connections; without one a client is
    opened for this call only.
    """
    article = _article_text(paragraphs, title)
    if not article or budget < 1:
        return ""
    if not config.llm_ready:
        log.warning("summarizer=llm but llm_base_url or llm_model is unset; using the extractive summary")
        return summarize_extractive(paragraphs, budget=budget, title=title)
    try:
        answer = _ask(article, budget, config, client)
        return _fit(_clean(answer), budget)
    except (httpx.HTTPError, httpx.InvalidURL, _Unusable) as exc:
        log.warning("LLM summary unusable (%s: %s); using the extractive summary", type(exc).__name__, exc)
        return summarize_extractive(paragraphs, budget=budget, title=title)


def _article_text(paragraphs: list[str], title: str | None) -> str:
    parts: list[str] = []
    size = 0
    for paragraph in ([title] if title else []) + paragraphs:
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if size + len(paragraph) > MAX_INPUT_CHARS and parts:
            break
        parts.append(paragraph[:MAX_INPUT_CHARS])
        size += len(parts[-1]) + 2
    return "\n\n".join(parts)


def _messages(article: str, budget: int) -> list[dict[str, str]]:
    instructions = (
        f"Summarize the news article the user sends in at most {budget} characters, "
        "in the article's own language. Use complete sentences and plain text: "
        "no title, no preamble, no lists, no quotation marks around the summary. "
        "State only what the article says."
    )
    return [{"role": "system", "content": instructions}, {"role": "user", "content": article}]


def _ask(article: str, budget: int, config: SummarizerConfig, client: httpx.Client | None) -> str:
    url = f"{config.llm_base_url.rstrip('/')}/chat/completions"  # type: ignore[union-attr]
    headers = {"Content-Type": "application/json"}
    if config.llm_api_key:
        headers["Authorization"] = f"Bearer {config.llm_api_key}"
    payload = {
        "model": config.llm_model,
        "messages": _messages(article, budget),
        "temperature": 0.2,
        # ~3 characters a token for most languages, with room to finish the last sentence.
        "max_tokens": budget // 2 + 64,
        "stream": False,
    }
    owned = client is None
    http = client or httpx.Client()
    try:
        body = _post(http, url, headers, payload, config.llm_timeout)
    finally:
        if owned:
            http.close()
    return _content(body)


def _post(http: httpx.Client, url: str, headers: dict[str, str], payload: dict[str, Any], timeout: float) -> bytes:
    # httpx's timeouts are per phase (a server dribbling one byte a second never trips the
    # read timeout), so the whole exchange also runs against one deadline.
    deadline = time.monotonic() + timeout
    with http.stream("POST", url, json=payload, headers=headers, timeout=httpx.Timeout(timeout)) as response:
        if response.status_code != 200:
            raise _Unusable(f"HTTP {response.status_code} from {url}")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise _Unusable(f"response over {MAX_RESPONSE_BYTES} bytes")
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"no complete answer within {timeout} s", request=response.request)
            chunks.append(chunk)
    return b"".join(chunks)


def _content(body: bytes) -> str:
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _Unusable(f"not a chat completion: {body[:120]!r}") from exc
    if not isinstance(content, str):
        raise _Unusable(f"message content is {type(content).__name__}, not text")
    return content


def _clean(answer: str) -> str:
    text = " ".join(answer.split())
    lowered = text.casefold()
    for preamble in _PREAMBLES:
        if lowered.startswith(preamble):
            text = text[len(preamble) :].lstrip()
            break
    if len(text) >= 2 and ((text[0] == text[-1] and text[0] in "\"'") or (text[0], text[-1]) == ("“", "”")):
        text = text[1:-1].strip()
    if not text:
        raise _Unusable("empty answer")
    return text


def _fit(text: str, budget: int) -> str:
    """``text`` if it fits, else its leading whole sentences that do."""
    if len(text) <= budget:
        return text
    kept: list[str] = []
    for sentence in split_sentences(text):
        if len(join_sentences([*kept, sentence])) > budget:
            break
        kept.append(sentence)
    if not kept:
        raise _Unusable(f"answer of {len(text)} characters has no leading sentence within {budget}")
    return join_sentences(kept)
