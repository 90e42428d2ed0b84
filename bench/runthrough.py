"""The runner's bookkeeping between stages a worker runs through, apart from the stages' own work: a
job through four stages that only hand a real page's draft on, in one process, with each boundary in
one round trip (the next stage started in the end round trip of the one before, its draft handed over
as it is) against two (the end, then the next stage's own start, which reads the draft back).

    .venv/bin/python bench/runthrough.py            # 6 rounds of 1,000 jobs each way, alternating
    .venv/bin/python bench/runthrough.py --jobs 300 --rounds 2

The drafts are the extractor's on the first pages of the ``wcxb-articles`` set (or a made-up page
where the shared corpora are absent). "Two round trips" is the same runner with the sender's
``through`` emptied: each onward message then reaches ``RunThrough.send``, which runs its stage as
its own task would. Printed: the CPU milliseconds a job of this process and of redis-server (a
throwaway one), the median over rounds and every round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs a round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds each way (alternating which goes first)")
    args = parser.parse_args()

    from bench import corpora, e2e
    from tests.servers import RedisServer

    root = Path(tempfile.mkdtemp(prefix="gleaner-runthrough-"))
    redis = RedisServer(root / "redis").start()
    os.environ.update({"GLEANER_REDIS_URL": redis.url, "GLEANER_DATA_DIR": str(root),
                       "GLEANER_DATABASE_URL": f"sqlite:///{root / 'gleaner.db'}"})
    from tasks.extraction.extract import extract_article
    from worker.celery_tasks import RunThrough, run_message
    from worker.models import Draft
    from worker.payloads import DRAFT
    from worker.pipeline import Pipeline, Stage
    from worker.runtime import build_runtime
    from worker.settings import get_settings
    from worker.stage import Ended, HandOn

    rt = build_runtime(get_settings())
    if "wcxb-articles" in corpora.available():
        pages = [(p.html, p.url) for p in corpora.load("wcxb-articles")[:50]]
    else:
        text = "".join(f"<p>Paragraph {i} of a made-up article, long enough to be read as prose by the extractor.</p>"
                       for i in range(40))
        pages = [(f"<html><head><title>Made up</title></head><body><article><h1>Made up</h1>{text}</article>"
                  "</body></html>", "http://127.0.0.1/made-up")]
    drafts = [Draft(job_id="bench", category_id="bench", url=url, article=extract_article(html, url))
              for html, url in pages]
    made = iter(range(10**9))

    def first(ctx):  # as parse: no input, a draft out
        return HandOn(drafts[next(made) % len(drafts)])

    def middle(ctx):  # as dedupe and summarize: the draft in, the draft on
        return HandOn(ctx.input)

    def last(ctx):  # as store
        return Ended("stored")

    table = Pipeline(Stage("parse", first, input=None, output=DRAFT), Stage("dedupe", middle, input=DRAFT, output=DRAFT),
                     Stage("summarize", middle, input=DRAFT, output=DRAFT), Stage("store", last, input=DRAFT, output=None))
    served = frozenset(table.names())

    class Nowhere:
        through: frozenset[str] = frozenset()

        def send(self, messages, sent: float) -> None:
            raise AssertionError(f"sent to the broker: {messages}")

    def round_(n: int, one_trip: bool) -> tuple[float, float]:
        redis_before, began = e2e.cpu_of(redis.proc.pid), time.process_time()
        for _ in range(n):
            sender = RunThrough(table, rt, Nowhere(), served)
            if not one_trip:
                sender.through = frozenset()
            run_message(table, table.first, str(uuid.uuid4()), time.time(), {"category": "bench", "priority": 0}, rt, sender)
        return 1000 * (time.process_time() - began) / n, 1000 * (e2e.cpu_of(redis.proc.pid) - redis_before) / n

    try:
        round_(200, True), round_(200, False)  # warm
        runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for r in range(args.rounds):
            for one_trip in ((False, True) if r % 2 == 0 else (True, False)):
                runs[one_trip].append(round_(args.jobs, one_trip))
    finally:
        rt.close()
        redis.stop()
    draft_bytes = statistics.median(len(d.model_dump_json()) for d in drafts)
    print(f"`.venv/bin/python bench/runthrough.py{''.join(' ' + a for a in sys.argv[1:])}`: {args.rounds} rounds of "
          f"{args.jobs} jobs each way; four stages run through, drafts of {draft_bytes:.0f} bytes (median); "
          f"load average (1 min) {os.getloadavg()[0]:.2f}\n")
    print("| boundary between stages | this process, ms a job | redis-server, ms a job | every round (this process) |")
    print("| --- | --- | --- | --- |")
    for one_trip, label in ((False, "two round trips (end, then start)"), (True, "one round trip")):
        rows = runs[one_trip]
        print(f"| {label} | {statistics.median(c for c, _ in rows):.3f} | {statistics.median(s for _, s in rows):.3f} | "
              + ", ".join(f"{c:.2f}" for c, _ in rows) + " |")


if __name__ == "__main__":
    main()
