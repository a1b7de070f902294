"""Who runs the jobs: worker threads in the API process (embedded default) or worker processes over Redis (RQ).

Both keep the job table (`JobStore`) as the source of truth and never run model work on the event loop.

- `LocalWorkerPool`: N threads, each holding its own pipeline; the job table is the queue (`JobStore.claim_next`).
- `RedisQueue`: the API puts each job (its id, photos and parameters) on an RQ queue; `mvvton worker` processes
  (any number, on any machine that reaches Redis) run them with `perform_redis_job` and report each sampler step in
  the RQ job's meta. A collector thread in the API copies progress and results from Redis into the job table. A
  cancel is a Redis key the worker checks between sampler steps. While a job runs, its worker refreshes a heartbeat
  key; a started job whose heartbeat is gone (the worker was killed or lost its machine) is queued again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable

from mvvton.errors import MVVTONError
from mvvton.serving.errors import QueueUnavailableError, WorkerLostError
from mvvton.serving.jobs import (
    DEAD_WORKER_GRACE_SECONDS,
    DEFAULT_QUEUE_NAME,
    HEARTBEAT_SECONDS,
    JobCancelledError,
    JobOutput,
    JobParameters,
    TryOnRunner,
)
from mvvton.serving.metrics import ServiceMetrics
from mvvton.serving.middleware import request_id_var
from mvvton.serving.store import JobRecord, JobStore

logger = logging.getLogger("mvvton.serving")
CANCEL_KEY = "mvvton:cancel:{}"
HEARTBEAT_KEY = "mvvton:alive:{}"
MAX_ATTEMPTS = 3
CLEANUP_INTERVAL_SECONDS = 60.0


class JobEvents:
    """Wakes `await wait(job_id)` callers (on the event loop) when a worker thread changes that job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def notify(self, job_id: str) -> None:
        with self._lock:
            waiters = self._waiters.get(job_id, [])
            for loop, event in waiters:
                loop.call_soon_threadsafe(event.set)

    async def wait(self, job_id: str, timeout: float) -> None:
        """Return after the next change of `job_id` or after `timeout` seconds."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(job_id, []).append(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id, [])
                if entry in waiters:
                    waiters.remove(entry)
                if not waiters:
                    self._waiters.pop(job_id, None)


def _record_output(store: JobStore, job_id: str, output: JobOutput) -> bool:
    return store.finish(
        job_id, result_png=output.result_png, debug_pngs=output.debug_pngs, person_view=output.person_view,
        routed_garment=output.routed_garment, warnings=output.warnings,
    )  # fmt: skip


class _Janitor:
    """Applies the store's retention and size cap every `interval` seconds in a background thread."""

    def __init__(self, store: JobStore, stopping: threading.Event, interval: float = CLEANUP_INTERVAL_SECONDS):
        self.store, self.stopping, self.interval = store, stopping, interval
        self.thread = threading.Thread(target=self._loop, name="mvvton-janitor", daemon=True)

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                removed = self.store.cleanup()
                if removed:
                    logger.info("retention: removed %d finished jobs", removed)
            except Exception:  # the janitor must outlive a transient disk error; it is logged with its traceback
                logger.exception("retention sweep failed")


class LocalWorkerPool:
    """Worker threads in this process, one `TryOnRunner` (pipeline) each."""

    mode = "embedded"

    def __init__(self, store: JobStore, runners: list[TryOnRunner], metrics: ServiceMetrics, events: JobEvents):
        self.store, self.runners, self.metrics, self.events = store, runners, metrics, events
        self.workers = len(runners)
        self._wakeup = threading.Condition()
        self._stopping = threading.Event()
        self._cancelled: set[str] = set()
        self._threads = [
            threading.Thread(target=self._work, args=(runner,), name=f"mvvton-worker-{index}", daemon=True)
            for index, runner in enumerate(runners)
        ]
        self._janitor = _Janitor(store, self._stopping)

    def start(self) -> None:
        # the sampler's Python code holds the GIL between torch kernels; a 1 ms switch interval (default 5 ms) lets
        # the event loop thread in often enough that /health and the API answer in milliseconds while jobs run
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        requeued = self.store.requeue_interrupted()
        if requeued:
            logger.info("re-queued %d job(s) interrupted by the previous shutdown: %s", len(requeued), requeued)
        for thread in [*self._threads, self._janitor.thread]:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; a running job is interrupted at its next step and put back in the queue."""
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def submitted(self, record: JobRecord) -> None:
        with self._wakeup:
            self._wakeup.notify()

    def cancel(self, record: JobRecord) -> None:
        if record.status == "running":
            self._cancelled.add(record.id)

    def _work(self, runner: TryOnRunner) -> None:
        while not self._stopping.is_set():
            record = self.store.claim_next()
            if record is None:
                with self._wakeup:
                    self._wakeup.wait(timeout=1.0)
                continue
            self.events.notify(record.id)
            self._run(runner, record)

    def _run(self, runner: TryOnRunner, record: JobRecord) -> None:
        job_id = record.id

        def on_step(step: int, total: int) -> None:
            self.store.set_progress(job_id, step)
            self.events.notify(job_id)

        def should_cancel() -> bool:
            return self._stopping.is_set() or job_id in self._cancelled

        request_id = request_id_var.set(record.request_id)  # the job's log lines carry its request's id
        logger.info("job %s: running (%s)", job_id, record.params)
        started = time.time()
        try:
            output = runner.run(
                self.store.read_inputs(job_id), JobParameters.from_dict(record.params), on_step=on_step,
                should_cancel=should_cancel,
            )  # fmt: skip
        except JobCancelledError:
            if job_id in self._cancelled:
                self.store.mark_cancelled(job_id)
                self._finished(record, "cancelled", started)
            else:  # shutting down: the job runs again after the restart
                self.store.requeue(job_id)
                logger.info("job %s: interrupted by shutdown, re-queued", job_id)
        except MVVTONError as error:
            self.store.fail(job_id, type(error).__name__, str(error))
            self._finished(record, "failed", started)
        except Exception as error:  # a bug or a runtime failure: logged in full, the client gets a typed summary
            logger.exception("job %s failed", job_id)
            self.store.fail(job_id, "InternalError", f"the job failed unexpectedly ({type(error).__name__}); "
                                                     f"the server log has the details for job {job_id}")  # fmt: skip
            self._finished(record, "failed", started)
        else:
            for seconds in output.step_seconds:
                self.metrics.step_seconds.observe(seconds)
            status = "done" if _record_output(self.store, job_id, output) else "cancelled"
            self._finished(record, status, started)
        finally:
            self._cancelled.discard(job_id)
            self.events.notify(job_id)
            request_id_var.reset(request_id)

    def _finished(self, record: JobRecord, status: str, started: float) -> None:
        logger.info("job %s: %s after %.2f s", record.id, status, time.time() - started)
        self.metrics.observe_finished(status, submitted_at=record.created_at, started_at=started, now=time.time())


# -- Redis (RQ) -----------------------------------------------------------------------------------------------


def _redis_connection(url: str):
    try:
        import redis
    except ImportError as error:
        from mvvton.errors import MissingDependencyError

        raise MissingDependencyError("the Redis queue needs rq and redis: pip install 'mvvton[serve]'") from error
    connection = redis.Redis.from_url(url)
    try:
        connection.ping()
    except redis.exceptions.RedisError as error:
        raise QueueUnavailableError(
            f"cannot reach Redis at {url} ({error}); start redis-server or fix --queue"
        ) from error
    return connection


class RedisQueue:
    """Jobs on an RQ queue in Redis, run by `mvvton worker` processes; the job table stays in this process."""

    mode = "redis"

    def __init__(
        self,
        store: JobStore,
        url: str,
        metrics: ServiceMetrics,
        events: JobEvents,
        *,
        queue_name: str = DEFAULT_QUEUE_NAME,
        poll_interval: float = 0.2,
        job_timeout: int = 3600,
        dead_worker_grace: float = DEAD_WORKER_GRACE_SECONDS,
    ) -> None:
        from rq import Queue

        self.store, self.url, self.metrics, self.events = store, url, metrics, events
        self.connection = _redis_connection(url)
        self.queue = Queue(queue_name, connection=self.connection)
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.dead_worker_grace = dead_worker_grace
        self._heartbeat_missing_since: dict[str, float] = {}
        self._stopping = threading.Event()
        self._collector = threading.Thread(target=self._collect_loop, name="mvvton-collector", daemon=True)
        self._janitor = _Janitor(store, self._stopping)
        self._steps: dict[str, int] = {}

    @property
    def workers(self) -> int:
        from rq import Worker

        return max(1, Worker.count(queue=self.queue))

    def start(self) -> None:
        # the job table is the truth: every unfinished job must be on the queue (Redis may have lost it)
        for job_id in self.store.unfinished_ids():
            if self._rq_job(job_id) is None:
                self.store.requeue(job_id)
                self._enqueue(self.store.get(job_id))
        self._collector.start()
        self._janitor.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._collector.join(timeout)

    def alive(self) -> bool:
        return self._collector.is_alive()

    def _rq_job(self, job_id: str):
        from rq.job import Job

        return Job.fetch_many([job_id], connection=self.connection)[0]

    def _enqueue(self, record: JobRecord) -> None:
        self.queue.enqueue_call(
            perform_redis_job, args=(record.id, self.store.read_inputs(record.id), record.params), job_id=record.id,
            timeout=self.job_timeout, result_ttl=24 * 3600, failure_ttl=24 * 3600,
        )  # fmt: skip

    def submitted(self, record: JobRecord) -> None:
        try:
            self._enqueue(record)
        except Exception as error:
            self.store.fail(record.id, "QueueUnavailableError", f"could not put the job on Redis: {error}")
            raise QueueUnavailableError(f"cannot reach Redis at {self.url} ({error}); retry later") from error

    def cancel(self, record: JobRecord) -> None:
        # the key also covers a job a worker took between the table's `queued` and this call
        self.connection.set(CANCEL_KEY.format(record.id), 1, ex=self.job_timeout)
        job = self._rq_job(record.id)
        if record.status == "cancelled" and job is not None and job.get_status(refresh=False) == "queued":
            job.cancel()

    def _collect_loop(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            try:
                self.collect()
            except Exception:  # Redis restarting or a transient error: logged, retried at the next poll
                logger.exception("collecting job states from Redis failed")

    def collect(self) -> None:
        """Copy the state of every unfinished job from Redis into the job table."""
        from rq.job import Job, JobStatus

        job_ids = self.store.unfinished_ids()
        for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=self.connection)):
            record = self.store.get(job_id)
            if job is None:
                if record.status == "running" or time.time() - record.created_at > 5.0:
                    self.store.requeue(job_id)  # Redis lost it (flushed or restarted without persistence)
                    self._enqueue(self.store.get(job_id))
                continue
            status = job.get_status(refresh=False)
            if status == JobStatus.STARTED:
                if self._worker_is_dead(job_id):
                    self._run_again(record, job, "its worker stopped sending heartbeats")
                    continue
                changed = self.store.mark_running(job_id)
                step = int(job.meta.get("step", 0))
                if step != self._steps.get(job_id):
                    self._steps[job_id] = step
                    self.store.set_progress(job_id, step)
                    changed = True
                if changed:
                    self.events.notify(job_id)
            elif status == JobStatus.FINISHED:
                self._finish(record, job.return_value() or {})
            elif status == JobStatus.FAILED:
                self._failed(record, job.exc_info or "")
            elif status in (JobStatus.STOPPED, JobStatus.CANCELED):
                self.store.mark_cancelled(job_id)
                self._done(record, "cancelled")

    def _finish(self, record: JobRecord, result: dict) -> None:
        outcome = result.get("status")
        if outcome == "done":
            self.store.mark_running(record.id)  # a job can finish between two polls
            output = JobOutput(**{key: value for key, value in result.items() if key != "status"})
            for seconds in output.step_seconds:
                self.metrics.step_seconds.observe(seconds)
            self._done(record, "done" if _record_output(self.store, record.id, output) else "cancelled")
        elif outcome == "cancelled":
            self.store.mark_cancelled(record.id)
            self._done(record, "cancelled")
        else:
            self.store.fail(record.id, result.get("error", "InternalError"), result.get("message", "no message"))
            self._done(record, "failed")

    def _worker_is_dead(self, job_id: str) -> bool:
        """True once a started job's heartbeat key has been missing for `dead_worker_grace` seconds."""
        if self.connection.exists(HEARTBEAT_KEY.format(job_id)):
            self._heartbeat_missing_since.pop(job_id, None)
            return False
        # the key appears a moment after RQ marks the job started, so one missing look is not enough
        since = self._heartbeat_missing_since.setdefault(job_id, time.monotonic())
        return time.monotonic() - since >= self.dead_worker_grace

    def _run_again(self, record: JobRecord, job, reason: str) -> None:
        """Put a job whose worker died back on the queue (at most `MAX_ATTEMPTS` runs), else fail it."""
        from rq.registry import StartedJobRegistry

        self._heartbeat_missing_since.pop(record.id, None)
        current = self.store.get(record.id)
        # RQ must never later mark the new run abandoned: drop the dead run's execution and job hash first
        StartedJobRegistry(queue=self.queue).remove_executions(job)
        job.delete(remove_from_queue=True)
        if current.attempts >= MAX_ATTEMPTS:
            self.store.fail(record.id, WorkerLostError.__name__, f"{reason}; it was tried {current.attempts} times, "
                            "check the workers' logs (out of memory?) before submitting it again")  # fmt: skip
            self._done(record, "failed")
            return
        logger.warning("job %s: %s (attempt %d), re-queued", record.id, reason, current.attempts)
        self.store.requeue(record.id)
        self._enqueue(self.store.get(record.id))
        self.events.notify(record.id)

    def _failed(self, record: JobRecord, exc_info: str) -> None:
        if "AbandonedJobError" in exc_info:  # RQ's own check found its worker dead
            from rq.job import Job

            self._run_again(record, Job.fetch(record.id, connection=self.connection), "its worker died")
            return
        last_line = exc_info.strip().splitlines()[-1] if exc_info.strip() else "the worker failed"
        self.store.fail(record.id, "InternalError", f"the worker failed: {last_line}")
        self._done(record, "failed")

    def _done(self, record: JobRecord, status: str) -> None:
        self._steps.pop(record.id, None)
        self.connection.delete(CANCEL_KEY.format(record.id))
        final = self.store.get(record.id)
        logger.info("job %s: %s", record.id, final.status)
        self.metrics.observe_finished(status, submitted_at=record.created_at, started_at=final.started_at,
                                      now=time.time())  # fmt: skip
        self.events.notify(record.id)


_WORKER_RUNNER: TryOnRunner | None = None
_WORKER_HEARTBEAT_SECONDS = HEARTBEAT_SECONDS


class _Heartbeat:
    """While a job runs: a thread refreshing `mvvton:alive:<job id>` (expiring after `seconds`) every seconds / 4."""

    def __init__(self, connection, job_id: str, seconds: float) -> None:
        self.connection, self.key, self.seconds = connection, HEARTBEAT_KEY.format(job_id), seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mvvton-heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                self.connection.set(self.key, 1, px=max(1, int(self.seconds * 1000)))
            except Exception:  # a Redis hiccup: the next beat retries; the API waits a grace time before acting
                logger.warning("heartbeat of %s failed", self.key, exc_info=True)
            if self._stop.wait(self.seconds / 4):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.delete(self.key)


def perform_redis_job(job_id: str, inputs: dict[str, bytes], params: dict) -> dict:
    """The RQ job function, run by `mvvton worker`: one try-on, progress in the RQ job's meta."""
    from rq import get_current_job

    if _WORKER_RUNNER is None:
        raise RuntimeError("perform_redis_job runs inside `mvvton worker`, which loads the pipeline first")
    job = get_current_job()
    cancel_key = CANCEL_KEY.format(job_id)

    def on_step(step: int, total: int) -> None:
        job.meta.update(step=step, total=total)
        job.save_meta()

    def should_cancel() -> bool:
        return bool(job.connection.exists(cancel_key))

    try:
        with _Heartbeat(job.connection, job_id, _WORKER_HEARTBEAT_SECONDS):
            output = _WORKER_RUNNER.run(inputs, JobParameters.from_dict(params), on_step=on_step,
                                        should_cancel=should_cancel)  # fmt: skip
    except JobCancelledError:
        return {"status": "cancelled"}
    except MVVTONError as error:
        return {"status": "failed", "error": type(error).__name__, "message": str(error)}
    return {"status": "done", **output.__dict__}


def run_worker(
    url: str,
    *,
    runner_factory: Callable[[], TryOnRunner],
    queue_name: str = DEFAULT_QUEUE_NAME,
    burst: bool = False,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> bool:
    """Load the pipeline once, then take jobs from the RQ queue until stopped (SIGTERM / Ctrl-C).

    `heartbeat_seconds`: lifetime of the job's heartbeat key (refreshed four times as often); keep it below the
    API's `dead_worker_grace` so that a live worker is never taken for dead."""
    from rq import Queue, SimpleWorker

    global _WORKER_RUNNER, _WORKER_HEARTBEAT_SECONDS
    if not heartbeat_seconds > 0:
        from mvvton.errors import InvalidArgumentError

        raise InvalidArgumentError(f"heartbeat_seconds must be > 0, got {heartbeat_seconds}")
    _WORKER_HEARTBEAT_SECONDS = float(heartbeat_seconds)
    connection = _redis_connection(url)
    _WORKER_RUNNER = runner_factory()
    # SimpleWorker runs jobs in this process (no fork per job), so the loaded pipeline is reused
    worker = SimpleWorker([Queue(queue_name, connection=connection)], connection=connection)
    return worker.work(burst=burst, logging_level="INFO")
