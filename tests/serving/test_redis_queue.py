"""Scale-out over Redis: the API process (`--queue redis://...`) and two `mvvton worker` processes share one RQ
queue on a real redis-server started here (the Debian package `redis-server`)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from mvvton.serving.store import JobStore
from tests.serving.conftest import FINISHED, free_port, mvvton_process, stop, wait_for, wait_until_healthy

httpx = pytest.importorskip("httpx")
redis = pytest.importorskip("redis")
pytest.importorskip("rq")


@pytest.fixture
def redis_url(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed (apt-get install redis-server; no binary wheel on PyPI fits)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    connection = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            connection.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    yield url
    stop(server)


@pytest.mark.slow
def test_two_workers_share_the_queue(redis_url, tiny_model_dir, photos, tmp_path):
    from rq.job import Job

    store_dir, port = tmp_path / "store", free_port()
    base_url = f"http://127.0.0.1:{port}"
    api_log = tmp_path / "api.log"
    api = mvvton_process(["serve", "--queue", redis_url, "--store", str(store_dir), "--port", str(port),
                          "--max-steps", "400"], api_log)  # fmt: skip
    workers = [mvvton_process(["worker", "--queue", redis_url, "--model", str(tiny_model_dir)],
                              tmp_path / f"worker{index}.log") for index in range(2)]  # fmt: skip
    try:
        wait_until_healthy(base_url, api, api_log)
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            assert client.get("/health").json()["mode"] == "redis"
            jobs = [client.post("/v1/jobs", files=photos, data={"steps": "3", "seed": str(seed)}).json()
                    for seed in range(4)]  # fmt: skip
            for job in jobs:
                final = wait_for(client, job["id"], lambda j: j["status"] in FINISHED, timeout=300)
                assert final["status"] == "done" and final["progress"] == "3/3", final
                assert client.get(final["result_url"]).headers["content-type"] == "image/png"
                assert "inpaint_mask" in client.get(final["intermediates_url"]).json()["images"]
            connection = redis.Redis.from_url(redis_url)
            ran_on = {Job.fetch(job["id"], connection=connection).worker_name for job in jobs}
            assert len(ran_on) == 2, f"both workers take jobs from the one queue, got {ran_on}"

            # cancel a running job over Redis: the worker sees the flag between sampler steps
            long_job = client.post("/v1/jobs", files=photos, data={"steps": "400"}).json()
            wait_for(client, long_job["id"], lambda j: j.get("step", 0) >= 1, timeout=120)
            assert client.delete(f"/v1/jobs/{long_job['id']}").status_code == 202
            final = wait_for(client, long_job["id"], lambda j: j["status"] in FINISHED, timeout=60)
            assert final["status"] == "cancelled"
        assert JobStore(store_dir).count_by_status() == {"queued": 0, "running": 0, "done": 4, "failed": 0,
                                                          "cancelled": 1}  # fmt: skip
    finally:
        for process in [api, *workers]:
            stop(process)


@pytest.mark.slow
def test_jobs_survive_a_lost_redis_and_a_killed_worker(redis_url, tiny_model_dir, photos, tmp_path):
    """The job table is the truth: a job Redis lost while the API was down runs after the restart, and a job whose
    worker is killed mid-run (its heartbeat stops) is queued again and finished by another worker."""
    import signal

    from rq.registry import StartedJobRegistry

    store_dir, port = tmp_path / "store", free_port()
    base_url = f"http://127.0.0.1:{port}"
    api_args = ["serve", "--queue", redis_url, "--store", str(store_dir), "--port", str(port), "--max-steps", "400",
                "--dead-worker-grace", "3"]  # fmt: skip
    worker_args = ["worker", "--queue", redis_url, "--model", str(tiny_model_dir), "--heartbeat-seconds", "1"]
    connection = redis.Redis.from_url(redis_url)
    processes = []

    def start(args: list[str], log_name: str) -> subprocess.Popen:
        processes.append(mvvton_process(args, tmp_path / log_name))
        return processes[-1]

    try:
        api = start(api_args, "api1.log")
        wait_until_healthy(base_url, api, tmp_path / "api1.log")
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            lost = client.post("/v1/jobs", files=photos, data={"steps": "3"}).json()
        assert connection.exists(f"rq:job:{lost['id']}"), "the API puts each job on Redis"
        stop(api, signal.SIGKILL)
        connection.flushall()  # Redis restarted without persistence: the queued job is gone from the queue

        api = start(api_args, "api2.log")
        wait_until_healthy(base_url, api, tmp_path / "api2.log")
        first_worker = start(worker_args, "worker1.log")
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            final = wait_for(client, lost["id"], lambda j: j["status"] in FINISHED, timeout=300)
            assert final["status"] == "done", final

            long_job = client.post("/v1/jobs", files=photos, data={"steps": "300"}).json()
            wait_for(client, long_job["id"], lambda j: j.get("step", 0) >= 1, timeout=120)
            stop(first_worker, signal.SIGKILL)  # no clean-up: RQ still lists the job as started
            back = wait_for(client, long_job["id"], lambda j: j["status"] == "queued", timeout=60)
            assert "step" not in back, back
            registry = StartedJobRegistry(name="mvvton", connection=connection)
            assert long_job["id"] not in registry.get_job_ids(cleanup=False), "the dead run is dropped from RQ"

            start(worker_args, "worker2.log")
            final = wait_for(client, long_job["id"], lambda j: j["status"] in FINISHED, timeout=300)
            assert final["status"] == "done" and final["progress"] == "300/300", final
        record = JobStore(store_dir).get(long_job["id"])
        assert record.attempts == 2, record
        assert "re-queued" in (tmp_path / "api2.log").read_text()
    finally:
        for process in processes:
            stop(process)
