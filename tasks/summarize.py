"""Summarize stage: an extractive summary of whole sentences, and the body's statistics."""

from __future__ import annotations

from typing import Any

from tasks.stats import count_words
from tasks.summary import summarize_extractive
from worker.models import Draft
from worker.pipeline import send, stage_task
from worker.queues import Queue
from worker.runtime import Runtime


def summarize_draft(draft: Draft, budget: int) -> Draft:
    body = draft.article.body
    return draft.model_copy(
        update={
            "summary": summarize_extractive(body, budget=budget, title=draft.article.title),
            "word_count": count_words(body),
        }
    )


@stage_task(Queue.SUMMARIZE)
def summarize(job: dict[str, Any], rt: Runtime) -> None:
    draft = summarize_draft(rt.pages.get_draft(job["id"]), rt.settings.summary_chars)
    rt.pages.put_draft(draft)
    send(Queue.STORE, job["id"])
