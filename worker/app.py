"""Builds the Celery app. ``celery -A worker.app worker`` and the ``gleaner`` CLI both use it."""

from __future__ import annotations

from celery import Celery

from worker.celeryconfig import CeleryConfig

TASK_MODULES = ["tasks.fetch", "tasks.parse", "tasks.dedupe", "tasks.summarize", "tasks.store", "tasks.discovery.run"]


def create_app() -> Celery:
    app = Celery("gleaner", include=TASK_MODULES)
    app.config_from_object(CeleryConfig())
    return app


app = create_app()
