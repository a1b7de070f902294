"""The service as a real uvicorn process: restart recovery after SIGKILL, disconnect cancels, streamed uploads."""

from __future__ import annotations

import signal

import pytest

from mvvton.serving.store import JobStore
from tests.serving.conftest import FINISHED, free_port, mvvton_process, stop, wait_for, wait_until_healthy
from tests.serving.test_app import metric_value

httpx = pytest.importorskip("httpx")


@pytest.mark.slow
def test_restart_recovery_disconnect_and_streamed_limit(tiny_model_dir, photos, tmp_path):
    store_dir, log, port = tmp_path / "store", tmp_path / "server.log", free_port()
    base_url = f"http://127.0.0.1:{port}"
    args = ["serve", "--model", str(tiny_model_dir), "--store", str(store_dir), "--port", str(port),
            "--max-steps", "400", "--max-upload-mb", "1"]  # fmt: skip
    server = mvvton_process(args, log)
    try:
        wait_until_healthy(base_url, server, log)
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            interrupted = client.post("/v1/jobs", files=photos, data={"steps": "12"}).json()
            waiting = client.post("/v1/jobs", files=photos, data={"steps": "2"}).json()
            wait_for(client, interrupted["id"], lambda j: j.get("step", 0) >= 2)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        store = JobStore(store_dir)
        assert store.get(interrupted["id"]).status == "running" and store.get(waiting["id"]).status == "queued"

        server = mvvton_process(args, log)
        wait_until_healthy(base_url, server, log)
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            for job in (interrupted, waiting):
                final = wait_for(client, job["id"], lambda j: j["status"] in FINISHED, timeout=300)
                assert final["status"] == "done", final
                assert client.get(final["result_url"]).headers["content-type"] == "image/png"
            assert store.get(interrupted["id"]).attempts == 2, "the interrupted job ran again after the restart"

            # a client that gives up on /v1/try-on cancels its job
            with pytest.raises(httpx.TimeoutException):
                client.post("/v1/try-on", files=photos, data={"steps": "400"}, timeout=4.0)
            abandoned = client.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]
            assert wait_for(client, abandoned["id"], lambda j: j["status"] in FINISHED)["status"] == "cancelled"

            # a chunked body (no Content-Length) is cut at the limit while it streams
            def chunks():
                yield b'--b\r\nContent-Disposition: form-data; name="person"; filename="p.jpg"\r\n\r\n'
                for _ in range(400):
                    yield b"1" * 16384  # 6.25 MiB in all

            before = metric_value(client.get("/metrics").text, "mvvton_request_body_bytes_total")
            try:
                response = client.post("/v1/jobs", content=chunks(),
                                       headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
                assert response.status_code == 413 and response.json()["error"] == "UploadTooLargeError"
            except (httpx.WriteError, httpx.RemoteProtocolError):
                pass  # the server answered 413 and closed while the client was still sending
            received = metric_value(client.get("/metrics").text, "mvvton_request_body_bytes_total") - before
            assert 0 < received <= 1024**2, received
        assert not list((store_dir / "tmp").iterdir())
    finally:
        stop(server)
    assert "re-queued 1 job(s)" in log.read_text()
