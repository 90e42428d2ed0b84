"""Gleaner's pipeline stages, one module per stage: fetch, parse, dedupe, summarize, store."""
