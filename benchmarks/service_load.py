"""Load test of `mvvton serve` on the embedded default model: N concurrent async clients, each submits one job.

Starts the server in a subprocess (fresh job store in a temp folder), then runs `--clients` httpx clients at once:
each POSTs /v1/jobs (a 429 is counted and retried after its Retry-After), polls the job once a second until it
finishes and records submit-to-done latency. Meanwhile a separate process GETs /health every 50 ms. Reports
unexpected 5xx, job latency p50/p99, /health p50/p99, 429s and the server's RSS before and after. Run:

    python benchmarks/service_load.py --clients 50 --steps 2 [--output service_load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
PAIRS = (  # person photo, garment front, garment back
    ("person/pcdms_img6_back.jpg", "garment/spree_jersey_front.jpg", "garment/spree_jersey_back.jpg"),
    ("person/posetransfer_MEN-Shirts-Polos-id0000136605_side.jpg", "garment/solidus_ruby-polo_front.jpg",
     "garment/solidus_ruby-polo_back.jpg"),
    ("person/idmvton_00034_00_front.jpg", "garment/solidus_tshirt-blue_front.jpg",
     "garment/solidus_tshirt-blue_back.jpg"),
)  # fmt: skip
FINISHED = ("done", "failed", "cancelled")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Tally:
    def __init__(self) -> None:
        self.job_seconds: list[float] = []
        self.health_seconds: list[float] = []
        self.statuses: dict[str, int] = {}
        self.rejected = 0
        self.server_errors: list[str] = []
        self.transport_errors = 0


async def send(client: httpx.AsyncClient, tally: Tally, method: str, url: str, **kwargs) -> httpx.Response:
    """One request, retried (and counted) when the connection drops, e.g. a keep-alive connection the server had
    just closed."""
    for attempt in range(3):
        try:
            return await client.request(method, url, **kwargs)
        except httpx.TransportError:
            tally.transport_errors += 1
            if attempt == 2:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def client_run(client: httpx.AsyncClient, index: int, steps: int, samples: Path, tally: Tally) -> None:
    person, front, back = PAIRS[index % len(PAIRS)]
    files = {"person": (samples / person).read_bytes(), "garment_front": (samples / front).read_bytes(),
             "garment_back": (samples / back).read_bytes()}  # fmt: skip
    start = time.perf_counter()
    while True:
        response = await send(client, tally, "POST", "/v1/jobs", files=files,
                              data={"steps": str(steps), "seed": str(index)})  # fmt: skip
        if response.status_code == 429:
            tally.rejected += 1
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code >= 500:
            tally.server_errors.append(f"POST /v1/jobs {response.status_code} {response.text[:200]}")
            return
        response.raise_for_status()
        break
    job_id = response.json()["id"]
    while True:
        await asyncio.sleep(1.0)
        response = await send(client, tally, "GET", f"/v1/jobs/{job_id}")
        if response.status_code >= 500:
            tally.server_errors.append(f"GET /v1/jobs/{job_id} {response.status_code}")
            continue
        job = response.json()
        if job["status"] in FINISHED:
            break
    tally.statuses[job["status"]] = tally.statuses.get(job["status"], 0) + 1
    if job["status"] == "done":
        tally.job_seconds.append(time.perf_counter() - start)
        result = await send(client, tally, "GET", job["result_url"])
        if result.status_code >= 500:
            tally.server_errors.append(f"GET result {result.status_code}")
    elif job["status"] == "failed" and job["error"]["error"] == "InternalError":
        tally.server_errors.append(f"job {job_id} InternalError: {job['error']['message']}")


def probe_health(base_url: str, stop, output: Path) -> None:
    """GET /health every 50 ms until `stop` is set (in its own process, so the 50 clients' event loop does not
    delay it); writes the latencies (s) and the count of 5xx answers as JSON to `output`."""
    latencies, errors = [], 0
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                response = client.get("/health")
                errors += response.status_code >= 500
            except httpx.TransportError:
                errors += 1
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
    output.write_text(json.dumps({"latencies": latencies, "errors": errors}))


async def run_load(base_url: str, clients: int, steps: int, samples: Path, probe_file: Path) -> tuple[Tally, float]:
    tally = Tally()
    stop = multiprocessing.Event()
    prober = multiprocessing.Process(target=probe_health, args=(base_url, stop, probe_file))
    prober.start()
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=600.0, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_run(client, index, steps, samples, tally) for index in range(clients)))
        wall = time.perf_counter() - start
    stop.set()
    prober.join()
    probe = json.loads(probe_file.read_text())
    tally.health_seconds = probe["latencies"]
    tally.server_errors += [f"/health 5xx or dropped x{probe['errors']}"] if probe["errors"] else []
    return tally, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2, help="sampler steps per job (few, so the run takes minutes)")
    parser.add_argument("--workers", type=int, default=1, help="embedded worker threads of the server")
    parser.add_argument("--max-queued", type=int, default=32)
    parser.add_argument("--model", default=None, help="pipeline folder (default: the embedded default model)")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="folder with person/ and garment/ photos")
    parser.add_argument("--output", type=Path, default=None, help="write the numbers as JSON here")
    args = parser.parse_args()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="mvvton-load-") as tmp:
        command = [sys.executable, "-c", "import sys; from mvvton.cli import main; sys.exit(main(sys.argv[1:]))",
                   "serve", "--store", str(Path(tmp) / "store"), "--port", str(port), "--workers", str(args.workers),
                   "--max-queued", str(args.max_queued)] + (["--model", args.model] if args.model else [])  # fmt: skip
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start:\n{(Path(tmp) / 'server.log').read_text()[-3000:]}")
                try:
                    if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            rss_before = rss_mib(server.pid)
            tally, wall = asyncio.run(
                run_load(base_url, args.clients, args.steps, args.samples, Path(tmp) / "health.json")
            )
            rss_after = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()

    report = {
        "clients": args.clients, "steps": args.steps, "workers": args.workers, "max_queued": args.max_queued,
        "wall_seconds": round(wall, 1), "jobs": tally.statuses, "unexpected_5xx": len(tally.server_errors),
        "job_latency_p50_s": round(percentile(tally.job_seconds, 50), 2),
        "job_latency_p99_s": round(percentile(tally.job_seconds, 99), 2),
        "health_requests": len(tally.health_seconds),
        "health_p50_ms": round(percentile(tally.health_seconds, 50) * 1000, 1),
        "health_p99_ms": round(percentile(tally.health_seconds, 99) * 1000, 1),
        "health_max_ms": round(max(tally.health_seconds, default=float("nan")) * 1000, 1),
        "rejected_429": tally.rejected, "transport_errors_retried": tally.transport_errors, "rss_before_mib": round(rss_before, 1), "rss_after_mib": round(rss_after, 1),
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    for error in tally.server_errors[:10]:
        print("5xx:", error)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
