"""Fetch stage: download one job's article page as the fetch policy allows (robots.txt, host
limits, conditional requests: tasks/fetching/policy.py) and hand it to parse, or end the job at
once when the page is unchanged since its record was stored (HTTP 304). The page handed on is
also appended to the archive (tasks/archive/), and says where."""

from __future__ import annotations

import functools

from tasks.fetching.pages import ACCEPT_HTML, page_of, refuse_non_html
from tasks.urlnorm import canonicalize_url, check_url
from worker.deflated import deflate
from worker.payloads import FetchedPage
from worker.stage import Ended, HandOn, StageContext


def fetch(ctx: StageContext[None]) -> HandOn[FetchedPage] | Ended:
    rt, job = ctx.rt, ctx.job
    policy = rt.fetcher
    url = check_url(job.url or "")
    known = policy.validators.get(url)
    # Ask "changed since?" only if the record that answer would point at is still there.
    record = rt.storage.find_record_by_url(known.final_url, canonicalize_url(known.final_url)) if known else None
    got = policy.get(url, accept=ACCEPT_HTML, politeness=ctx.source.politeness if ctx.source else None,
                     token=job.id, validators=known if record else None, check=refuse_non_html)
    if got is None:  # 304: the stored record is still the page
        rt.storage.finish_job(job.id, record_id=str(record.id),
                              duplicate_of=str(record.duplicate_of) if record.duplicate_of else None)
        return Ended("unchanged")
    page, body = page_of(got)
    deflated = None
    if rt.archive is not None:  # the page as received, kept; parse and store learn where
        # Compressed once, at the archive's level: the same blocks go into its record and its payload.
        deflated = deflate(body, rt.archive.gzip_level)
        page = page.model_copy(update={"archived": rt.archive.write(got, deflated)})
    # The validators go with the page, in the stage's last round trip: no page, no validators.
    return HandOn(FetchedPage(page, body, deflated), writes=(functools.partial(policy.validators.put, url, page),))
