"""Summarize stage: a summary of whole sentences (extractive, or an LLM's with extractive
fallback) and the body's statistics."""

from __future__ import annotations

from typing import Any

from tasks.summaries.llm import SummarizerConfig, summarize as summarize_text
from tasks.stats import count_words
from worker.models import Draft
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime


def summarize_draft(draft: Draft, budget: int, config: SummarizerConfig | None = None) -> Draft:
    body = draft.article.body
    if config is None:
        config = SummarizerConfig()
    return draft.model_copy(
        update={
            "summary": summarize_text(body, budget, config, title=draft.article.title),
            "word_count": count_words(body),
        }
    )


@stage_task(Queue.SUMMARIZE, needs_row=False)
def summarize(job: dict[str, Any], rt: Runtime) -> None:
    config = SummarizerConfig.from_settings(rt.settings)
    draft = summarize_draft(rt.pages.get_draft(job["id"], Queue.DEDUPE.value), rt.settings.summary_chars, config)
    rt.pages.put_draft(draft, Queue.SUMMARIZE.value)
    send(Queue.STORE, job)
