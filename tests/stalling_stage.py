"""A pipeline with a stage that never ends on some pages (``stall``, between summarize and store),
for the tests of the time limits a solo worker arms itself (worker/timelimits.py), on a real
worker (``GLEANER_PIPELINE=tests.stalling_stage:PIPELINE``).

- a page whose URL holds ``/spin/`` spins in Python until something stops it;
- one whose URL holds ``/stubborn/`` does so too, and swallows the soft time limit's exception;
- any other page passes through.
"""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from worker.models import Draft
from worker.payloads import DRAFT
from worker.pipeline import PIPELINE as GLEANER, Pipeline, Stage
from worker.stage import HandOn, StageContext


def spin() -> None:
    n = 0
    while True:
        n += 1


def stubborn() -> None:
    while True:
        try:
            spin()
        except SoftTimeLimitExceeded:
            pass


def stall(ctx: StageContext[Draft]) -> HandOn[Draft]:
    if "/spin/" in ctx.input.url:
        spin()
    if "/stubborn/" in ctx.input.url:
        stubborn()
    return HandOn(ctx.input)


*_BEFORE, _STORE = GLEANER
PIPELINE = Pipeline(*_BEFORE, Stage("stall", stall, input=DRAFT, output=DRAFT), _STORE)
