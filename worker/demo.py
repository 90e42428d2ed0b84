"""``gleaner demo``: the whole pipeline against a demo site served on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import click
import httpx

from tasks.discovery.feeds import parse_feed, parse_sitemap
from worker.pipeline import get_pipeline
from worker.processes import stop_children, worker_argv
from worker.settings import Settings

log = logging.getLogger("gleaner.demo")


def discover_site(sitemap_url: str, feed_url: str) -> list[str]:
    """The site's article URLs from its sitemap and feed, each once, sitemap order first."""
    with httpx.Client(timeout=10) as client:  # our own loopback site: no guard needed
        pages, _ = parse_sitemap(client.get(sitemap_url).content)
        items = parse_feed(client.get(feed_url).content)
    return list(dict.fromkeys(pages + items))


def _start_site(port: int):
    from worker.demo_site import DemoSite

    site = DemoSite(port=port)
    try:
        site.start()
    except OSError:
        log.info("port %d is taken; serving the demo site on another port", port)
        site = DemoSite(port=0)
        site.start()
    return site


def run_demo(settings: Settings, *, port: int, timeout: float) -> int:
    from worker import submit
    from worker.redis_server import EmbeddedRedis
    from worker.storage import Storage

    embedded = None
    env = dict(os.environ)
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir, settings.embedded_redis_port)
        url, started = embedded.ensure()
        embedded = embedded if started else None
        env["GLEANER_REDIS_URL"] = url
        click.echo(f"Redis: embedded redis-server at {url}", err=True)
    # The demo's worker may fetch from the demo site on loopback; nothing else is allowed.
    allow = [a for a in env.get("GLEANER_ALLOW_PRIVATE_URLS", "").split(",") if a]
    env["GLEANER_ALLOW_PRIVATE_URLS"] = ",".join(allow + ["127.0.0.1"])
    click.echo(f"Database: {settings.effective_database_url}", err=True)

    site = _start_site(port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker_log = settings.data_dir / "demo-worker.log"
    click.echo(f"Worker log: {worker_log}", err=True)
    with open(worker_log, "ab") as logfile:
        argv = worker_argv(get_pipeline().names(), pool="threads", concurrency=8, loglevel="INFO", name="demo")
        argv.insert(argv.index("worker"), "--quiet")  # no banner: the log file is for problems
        worker = subprocess.Popen(argv, env=env, start_new_session=True,
                                  stdout=logfile, stderr=subprocess.STDOUT)
    try:
        click.echo(f"Demo site: {site.base_url} (sitemap {site.sitemap_url}, feed {site.feed_url})", err=True)
        urls = discover_site(site.sitemap_url, site.feed_url)
        storage = Storage(settings.effective_database_url)
        job_ids = submit.submit(storage, urls, "demo")
        with click.progressbar(length=len(job_ids), label=f"ingesting {len(job_ids)} URLs", file=sys.stderr) as bar:
            results = submit.wait(storage, job_ids, timeout=timeout, progress=bar.update,
                                  give_up=lambda: worker.poll() is not None)
        code = 0
        if worker.poll() is not None:
            click.echo(f"the demo's worker exited with status {worker.returncode}; see {worker_log}", err=True)
        for outcome in results:
            if outcome.state == "done":
                record = storage.get_record(outcome.record_id)
                click.echo(f"\n{record.id}  {record.title}\n  {record.url}\n  {record.word_count} words, "
                           f"{len(record.body)} paragraphs\n  Summary: {record.summary}")
            elif outcome.state == "duplicate":
                click.echo(f"\n{outcome.url}\n  duplicate of {outcome.duplicate_of}")
            else:
                code = 1
                click.echo(f"\n{outcome.url}\n  {outcome.state}: {outcome.reason or 'did not finish in time'}")
        done = [o for o in results if o.state == "done"]
        click.echo(f"\n{len(done)} records, {sum(o.state == 'duplicate' for o in results)} duplicates, "
                   f"{sum(o.state == 'failed' for o in results)} failed.")
        if done:
            click.echo(f"Read one:  gleaner show {done[0].record_id}")
        click.echo("Run it all: gleaner up    (then gleaner enqueue --wait URL ...)")
        return code
    finally:
        stop_children([worker])
        site.stop()
        if embedded is not None:
            embedded.stop()
