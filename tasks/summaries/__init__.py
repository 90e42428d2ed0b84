"""Summaries of whole sentences: extractive (extractive, over sentences), or an LLM's (llm)."""
