"""Builds the Celery app. ``celery -A worker.app worker`` and the ``gleaner`` CLI both use it.

The tasks are in worker/celery_tasks.py, loaded by the worker (``include``); nothing here starts
or connects to anything.
"""

from __future__ import annotations

from celery import Celery

from worker.celeryconfig import CeleryConfig

TASK_MODULES = ["worker.celery_tasks"]


def create_app() -> Celery:
    app = Celery("gleaner", include=TASK_MODULES)
    app.config_from_object(CeleryConfig())
    return app


app = create_app()
