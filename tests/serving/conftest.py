"""Fixtures of the service tests: a tiny saved pipeline, real photos, and a uvicorn server in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

FINISHED = ("done", "failed", "cancelled")
_MAIN = "import sys; from mvvton.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_model")
    MVVTONPipeline(**{**get_dummy_components(), "default_height": 128, "default_width": 128}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def photos(shared_dir) -> dict[str, bytes]:
    """A back-view person photo and a jersey's front and back product photos (the preprocessor needs mediapipe)."""
    pytest.importorskip("mediapipe")
    samples = shared_dir / "samples"
    return {
        "person": (samples / "person" / "pcdms_img6_back.jpg").read_bytes(),
        "garment_front": (samples / "garment" / "spree_jersey_front.jpg").read_bytes(),
        "garment_back": (samples / "garment" / "spree_jersey_back.jpg").read_bytes(),
    }


def wait_for(client, job_id: str, until, timeout: float = 120.0, interval: float = 0.1) -> dict:
    """Poll `GET /v1/jobs/{id}` until `until(job)` is true; returns that job JSON."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, f"timed out waiting for job {job_id}: {job}"
        assert job["status"] not in FINISHED, f"job {job_id} finished early: {job}"
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mvvton_process(args: list[str], log: Path) -> subprocess.Popen:
    """Start `mvvton ARGS` (this interpreter) with one torch thread, output to `log`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")])
    )
    stream = open(log, "ab")  # noqa: SIM115 - owned by the process for its lifetime
    return subprocess.Popen([sys.executable, "-c", _MAIN, *args], stdout=stream, stderr=subprocess.STDOUT, env=env)


def wait_until_healthy(base_url: str, process: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{base_url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
