"""A pipeline with one stage more than Gleaner's (``sign``, between summarize and store), for the
tests that show that adding a stage is one table entry and one function, in-process and on a
real worker (``GLEANER_PIPELINE=tests.extra_stage:PIPELINE``)."""

from __future__ import annotations

from worker.models import Draft
from worker.payloads import DRAFT
from worker.pipeline import PIPELINE as GLEANER, Pipeline, Stage
from worker.stage import HandOn, StageContext

MARK = " [signed]"


def sign(ctx: StageContext[Draft]) -> HandOn[Draft]:
    return HandOn(ctx.input.model_copy(update={"summary": ctx.input.summary + MARK}))


*_BEFORE, _STORE = GLEANER
PIPELINE = Pipeline(*_BEFORE, Stage("sign", sign, input=DRAFT, output=DRAFT), _STORE)
