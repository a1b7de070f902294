"""Prometheus metrics of the service (`GET /metrics`, text format), one registry per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from mvvton.serving.store import JOB_STATES, JobStore

STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class _StoreCollector:
    """Queue depth and jobs by state, read from the job table at scrape time (one GROUP BY query)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self):
        counts = self.store.count_by_status()
        depth = GaugeMetricFamily("mvvton_queue_depth", "Jobs waiting in the queue")
        depth.add_metric([], counts["queued"])
        yield depth
        jobs = GaugeMetricFamily("mvvton_jobs", "Jobs in the job table by state", labels=["status"])
        for status in JOB_STATES:
            jobs.add_metric([status], counts[status])
        yield jobs


class ServiceMetrics:
    """The counters and histograms the app and its workers update."""

    def __init__(self, store: JobStore) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(store))
        self.requests = Counter(
            "mvvton_http_requests", "HTTP requests by method and status", ["method", "status"], registry=self.registry
        )
        self.body_bytes = Counter(
            "mvvton_request_body_bytes", "Request body bytes passed to the app (never beyond the upload limit)",
            registry=self.registry,
        )  # fmt: skip
        self.rejected = Counter("mvvton_queue_rejections", "Submissions refused with 429", registry=self.registry)
        self.submitted = Counter("mvvton_jobs_submitted", "Jobs accepted", registry=self.registry)
        self.finished = Counter("mvvton_jobs_finished", "Jobs finished by state", ["status"], registry=self.registry)
        self.step_seconds = Histogram(
            "mvvton_step_seconds", "Sampler step latency", buckets=STEP_BUCKETS, registry=self.registry
        )
        self.job_seconds = Histogram(
            "mvvton_job_seconds", "Job latency from submission to result", buckets=JOB_BUCKETS, registry=self.registry
        )
        self.run_seconds = Histogram(
            "mvvton_job_run_seconds", "Job run time on a worker", buckets=JOB_BUCKETS, registry=self.registry
        )
        self._mean_run_seconds: float | None = None

    def observe_finished(self, status: str, *, submitted_at: float, started_at: float | None, now: float) -> None:
        self.finished.labels(status).inc()
        if status != "done":
            return
        self.job_seconds.observe(max(0.0, now - submitted_at))
        if started_at is not None:
            run = max(0.0, now - started_at)
            self.run_seconds.observe(run)
            mean = self._mean_run_seconds
            self._mean_run_seconds = run if mean is None else 0.8 * mean + 0.2 * run

    def retry_after(self, queued: int, workers: int) -> int:
        """Seconds until a queue slot is likely free: the running mean job time x queued jobs / workers."""
        mean = self._mean_run_seconds or 5.0
        return int(min(600, max(1, round(mean * max(1, queued) / max(1, workers)))))
