"""Gleaner's runtime: settings, the Celery app, storage, CLI and web."""
