"""``/metrics``: the Redis-held pipeline metrics in Prometheus' text format.

A custom collector reads Redis and SQL at each scrape, so the numbers are every worker's, not
this web process's. Names (all ``gleaner_*``):

    gleaner_stage_runs_total{stage,outcome}      counter: task runs by outcome (success, failure, retry)
    gleaner_stage_duration_seconds{stage}        histogram: how long a stage's runs took
    gleaner_queue_depth{queue}                   gauge: messages waiting in a stage's queue
    gleaner_in_flight_messages                   gauge: delivered to a worker, not yet acknowledged
    gleaner_retry_waiting_jobs                   gauge: jobs waiting out a backoff before a retry
    gleaner_jobs{state}                          gauge: jobs by state (queued, done, duplicate, failed)
    gleaner_records                              gauge: stored records, duplicates included
    gleaner_workers_online                       gauge: workers that answered the last broadcast
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from worker import inflight, metrics
from worker.delayed import DelayedJobs
from worker.pipeline import get_pipeline

__all__ = ["CONTENT_TYPE_LATEST", "GleanerCollector", "render"]


class GleanerCollector(Collector):
    def __init__(self, services) -> None:
        self.services = services

    def collect(self):
        s = self.services
        stages = get_pipeline().names()
        counts = metrics.stage_counts(s.redis, stages)
        runs = CounterMetricFamily("gleaner_stage_runs", "Pipeline task runs by stage and outcome.",
                                   labels=["stage", "outcome"])
        for stage, outcomes in sorted(counts.items()):
            for outcome, n in outcomes.items():
                runs.add_metric([stage, outcome], n)
        yield runs

        duration = HistogramMetricFamily("gleaner_stage_duration_seconds", "Time a stage's task runs took.",
                                         labels=["stage"], unit="seconds")
        for stage, hist in sorted(metrics.latency(s.redis, sorted(counts)).items()):
            duration.add_metric([stage], hist.buckets, sum_value=hist.total)
        yield duration

        depth = GaugeMetricFamily("gleaner_queue_depth", "Messages waiting in a stage's queue.", labels=["queue"])
        for queue, n in metrics.queue_depths(s.redis, stages).items():
            depth.add_metric([queue], n)
        yield depth

        yield GaugeMetricFamily("gleaner_in_flight_messages", "Messages delivered to a worker, not yet acknowledged.",
                                value=metrics.unacked(s.redis))

        yield GaugeMetricFamily("gleaner_retry_waiting_jobs", "Jobs waiting out a backoff before a retry.",
                                value=DelayedJobs(s.redis).pending())

        yield GaugeMetricFamily("gleaner_unfinished_jobs", "Jobs in the in-flight ledger: sent to a stage, not finished.",
                                value=inflight.unfinished(s.redis))
        yield CounterMetricFamily("gleaner_lost_messages_resent", "Messages the broker lost that the sweeper sent again.",
                                  value=inflight.resent_total(s.redis))

        jobs = GaugeMetricFamily("gleaner_jobs", "Jobs by state.", labels=["state"])
        known = s.storage.count_jobs()
        for state in ("queued", "done", "duplicate", "failed"):
            jobs.add_metric([state], known.get(state, 0))
        yield jobs

        yield GaugeMetricFamily("gleaner_records", "Stored records, duplicates included.",
                                value=s.storage.count_records())
        yield GaugeMetricFamily("gleaner_workers_online", "Celery workers that answered the last broadcast.",
                                value=len(s.workers()))


def render(services) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GleanerCollector(services))
    return generate_latest(registry)
