"""The web app: a live overview, records browser and reader, failures, sources, a queue form,
a JSON API (``/api``, described at ``/openapi.json``) and Prometheus metrics (``/metrics``).

Run it with ``gleaner web`` or ``python -m worker.web``; ``gleaner up`` starts it when this package
and its dependencies (FastAPI, uvicorn, Jinja2, prometheus-client) are installed.
"""

from __future__ import annotations

from worker.web.app import Services, create_app
from worker.web.serve import serve

__all__ = ["Services", "create_app", "serve"]
