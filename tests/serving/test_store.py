"""JobStore on a real SQLite file and folder: queue order, recovery, cancel, retention and the size cap."""

from __future__ import annotations

import time

import pytest

from mvvton.serving.errors import JobStateError, QueueFullError
from mvvton.serving.store import JobStore

PHOTOS = {"person": b"person-bytes", "garment_front": b"front-bytes"}


def finish(store: JobStore, job_id: str, result: bytes) -> None:
    assert store.claim_next().id == job_id
    assert store.finish(job_id, result_png=result, debug_pngs={"mask": b"m"}, person_view="front",
                        routed_garment="front", warnings=[])  # fmt: skip


def test_queue_order_positions_and_bound(tmp_path):
    store = JobStore(tmp_path)
    first, second = (store.create_job(PHOTOS, {"steps": 2}, total_steps=2, max_queued=2) for _ in range(2))
    assert (first.position, second.position) == (0, 1)
    with pytest.raises(QueueFullError):
        store.create_job(PHOTOS, {}, total_steps=2, max_queued=2)
    assert store.claim_next().id == first.id and store.get(second.id).position == 0
    assert store.read_inputs(first.id) == PHOTOS
    # identical uploads are stored once (content-addressed)
    assert len(list((tmp_path / "blobs").glob("*/*"))) == 2


def test_restart_recovery_and_cancel(tmp_path):
    store = JobStore(tmp_path)
    running, cancelled_running, queued = (store.create_job(PHOTOS, {}, total_steps=5) for _ in range(3))
    store.claim_next(), store.claim_next()
    store.request_cancel(cancelled_running.id)
    assert store.get(cancelled_running.id).status == "running", "a running job stops at its next step"
    assert store.request_cancel(queued.id).status == "cancelled"
    with pytest.raises(JobStateError):
        store.request_cancel(queued.id)

    reopened = JobStore(tmp_path)  # as after a crash: rows left running
    assert reopened.requeue_interrupted() == [running.id]
    assert reopened.get(running.id).status == "queued" and reopened.get(cancelled_running.id).status == "cancelled"
    assert reopened.claim_next().attempts == 2


def test_finish_is_atomic_and_skipped_after_cancel(tmp_path):
    store = JobStore(tmp_path)
    job = store.create_job(PHOTOS, {}, total_steps=1)
    store.claim_next()
    store.request_cancel(job.id)
    store.mark_cancelled(job.id)
    assert not store.finish(job.id, result_png=b"late", debug_pngs={}, person_view=None, routed_garment=None,
                            warnings=[])  # fmt: skip
    assert store.get(job.id).result_path is None
    assert not list((tmp_path / "tmp").iterdir())


def test_retention_and_size_cap(tmp_path):
    store = JobStore(tmp_path, retention_seconds=3600, max_bytes=10_000)
    old, middle, new = (store.create_job({"person": bytes([n]) * 10, "garment_front": b"f"}, {}, total_steps=1)
                        for n in range(3))  # fmt: skip
    for job, size in ((old, 4000), (middle, 4000), (new, 4000)):
        finish(store, job.id, bytes([len(job.id) % 7]) * size + job.id.encode())
    listed = store.list_jobs(limit=2, status="done")
    assert [record.id for record in listed] == [new.id, middle.id] and listed[0].result_path.is_file()

    assert store.cleanup() == 1, "12 kB of results over a 10 kB cap: the oldest finished job goes"
    assert [record.id for record in store.list_jobs()] == [new.id, middle.id]
    assert store.blobs.total_bytes() <= 10_000
    assert store.cleanup(now=time.time() + 7200) == 2, "past the retention time every finished job goes"
    assert store.list_jobs() == [] and store.blobs.total_bytes() == 0
