"""Summarize stage: a summary of whole sentences (extractive, or an LLM's with extractive
fallback: tasks/summaries/) and the body's statistics."""

from __future__ import annotations

from tasks.stats import count_words
from tasks.summaries.llm import SummarizerConfig, summarize as summarize_text
from worker.models import Draft
from worker.stage import HandOn, StageContext


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


def summarize(ctx: StageContext[Draft]) -> HandOn[Draft]:
    settings = ctx.rt.settings
    return HandOn(summarize_draft(ctx.input, settings.summary_chars, SummarizerConfig.from_settings(settings)))
