"""The service's storage: a SQLite job table plus a content-addressed file store, in one folder.

    store/
        jobs.sqlite3        job table (WAL mode; every state change is one transaction)
        blobs/ab/abcdef...  inputs and outputs, named by the SHA-256 of their bytes (written once, atomically)
        tmp/                staging for atomic writes (temp file + fsync + os.replace into blobs/)

A job row becomes `done` only after all its files are in `blobs/`, so a reader never sees a half-written result.
In the embedded mode the table is also the queue: workers claim the oldest `queued` row in a transaction. On
start-up, rows left `running` by a killed process are put back to `queued` (`requeue_interrupted`).
Retention: finished jobs older than `retention_seconds` are deleted, and the oldest finished jobs go first while the
blobs exceed `max_bytes`; a blob is deleted when no job references it any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mvvton.serving.errors import JobNotFoundError, JobStateError, QueueFullError

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")
DEFAULT_RETENTION_SECONDS = 24 * 3600
DEFAULT_MAX_STORE_BYTES = 2 * 1024**3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    person_view TEXT,
    routed_garment TEXT,
    warnings TEXT,
    error TEXT,
    message TEXT,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE TABLE IF NOT EXISTS files (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (job_id, role)
);
CREATE INDEX IF NOT EXISTS files_by_digest ON files (digest);
"""
_JOB_COLUMNS = (
    "seq, id, status, params, created_at, started_at, finished_at, step, total_steps, attempts, cancel_requested, "
    "person_view, routed_garment, warnings, error, message, request_id"
)


@dataclass
class JobRecord:
    """One row of the job table (times are Unix seconds; `position` is 0 for the next job to run)."""

    id: str
    status: str
    created_at: float
    finished_at: float | None
    person_view: str | None
    routed_garment: str | None
    error: str | None
    result_path: Path | None
    message: str | None = None
    started_at: float | None = None
    step: int = 0
    total_steps: int = 0
    attempts: int = 0
    cancel_requested: bool = False
    params: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    request_id: str | None = None
    position: int | None = None
    seq: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES


class BlobStore:
    """Content-addressed files: `put(data) -> sha256 hex`, written atomically, never rewritten."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.blob_dir / digest[:2] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if path.is_file():
            return digest
        path.parent.mkdir(exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f"{digest[:8]}.", suffix=".tmp", dir=self.tmp_dir)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return digest

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.blob_dir.glob("*/*"))

    def digests(self) -> list[str]:
        return [path.name for path in self.blob_dir.glob("*/*")]


class JobStore:
    """The job table and file store under `path` (a folder, created if missing).

    Args:
        path: the store folder (`jobs.sqlite3`, `blobs/`, `tmp/` inside).
        retention_seconds: finished jobs older than this are removed by `cleanup` (default 24 h).
        max_bytes: `cleanup` removes the oldest finished jobs while the blobs are larger than this (default 2 GiB).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        max_bytes: int = DEFAULT_MAX_STORE_BYTES,
    ) -> None:
        self.root = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.root)
        self.db_path = self.root / "jobs.sqlite3"
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._blob_lock = threading.Lock()  # blob writes + their rows vs. the orphan sweep
        self._connect().executescript(_SCHEMA)

    # -- connections and transactions -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- reading ----------------------------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row, db: sqlite3.Connection) -> JobRecord:
        result_path = None
        if row["status"] == "done":
            found = db.execute(
                "SELECT digest FROM files WHERE job_id = ? AND role = 'result'", (row["id"],)
            ).fetchone()
            result_path = self.blobs.path(found["digest"]) if found else None
        position = None
        if row["status"] == "queued":
            position = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < ?", (row["seq"],)
            ).fetchone()[0]
        return JobRecord(
            id=row["id"],
            status=row["status"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            person_view=row["person_view"],
            routed_garment=row["routed_garment"],
            error=row["error"],
            result_path=result_path,
            message=row["message"],
            started_at=row["started_at"],
            step=row["step"],
            total_steps=row["total_steps"],
            attempts=row["attempts"],
            cancel_requested=bool(row["cancel_requested"]),
            params=json.loads(row["params"]),
            warnings=json.loads(row["warnings"] or "[]"),
            request_id=row["request_id"],
            position=position,
            seq=row["seq"],
        )

    def get(self, job_id: str) -> JobRecord:
        """The job `job_id`; raises `JobNotFoundError`."""
        db = self._connect()
        row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(
                f"no job {job_id!r}: it was never submitted or was removed after the retention time "
                f"({self.retention_seconds / 3600:g} h); submit it again"
            )
        return self._record(row, db)

    def list_jobs(self, limit: int = 20, status: str | None = None) -> list[JobRecord]:
        """The most recent jobs first, optionally only those in `status` (one of `JOB_STATES`)."""
        if status is not None and status not in JOB_STATES:
            from mvvton.errors import InvalidArgumentError

            raise InvalidArgumentError(f"status must be one of {', '.join(JOB_STATES)}, got {status!r}")
        db = self._connect()
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY seq DESC LIMIT ?", (*args, int(limit)))
        return [self._record(row, db) for row in rows.fetchall()]

    def count_by_status(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        counts = dict.fromkeys(JOB_STATES, 0)
        counts.update({status: count for status, count in rows})
        return counts

    def unfinished_ids(self) -> list[str]:
        rows = self._connect().execute("SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq")
        return [row[0] for row in rows.fetchall()]

    def file_digest(self, job_id: str, role: str) -> str | None:
        row = (
            self._connect()
            .execute("SELECT digest FROM files WHERE job_id = ? AND role = ?", (job_id, role))
            .fetchone()
        )
        return None if row is None else row[0]

    def file_path(self, job_id: str, role: str) -> Path | None:
        digest = self.file_digest(job_id, role)
        return None if digest is None else self.blobs.path(digest)

    def file_roles(self, job_id: str, prefix: str = "") -> list[str]:
        rows = self._connect().execute(
            "SELECT role FROM files WHERE job_id = ? AND role LIKE ? ORDER BY role", (job_id, f"{prefix}%")
        )
        return [row[0] for row in rows.fetchall()]

    def read_inputs(self, job_id: str) -> dict[str, bytes]:
        """The uploaded photos of a job, `{"person": bytes, "garment_front": bytes, ...}`."""
        return {role.removeprefix("input:"): self.file_path(job_id, role).read_bytes()
                for role in self.file_roles(job_id, "input:")}  # fmt: skip

    # -- writing ----------------------------------------------------------------------------------------------

    def create_job(
        self,
        inputs: dict[str, bytes],
        params: dict,
        *,
        total_steps: int,
        max_queued: int | None = None,
        request_id: str | None = None,
    ) -> JobRecord:
        """Store the inputs and insert a `queued` job; raises `QueueFullError` when `max_queued` jobs are waiting."""
        if max_queued is not None:
            self._check_queue(self._connect(), max_queued)  # fail fast, before writing any file
        job_id = uuid.uuid4().hex
        with self._blob_lock:
            digests = {name: (self.blobs.put(data), len(data)) for name, data in inputs.items()}
            with self._transaction() as db:
                if max_queued is not None:
                    self._check_queue(db, max_queued)
                db.execute(
                    "INSERT INTO jobs (id, status, params, created_at, total_steps, request_id) "
                    "VALUES (?, 'queued', ?, ?, ?, ?)",
                    (job_id, json.dumps(params), time.time(), total_steps, request_id),
                )
                db.executemany(
                    "INSERT INTO files (job_id, role, digest, size) VALUES (?, ?, ?, ?)",
                    [(job_id, f"input:{name}", digest, size) for name, (digest, size) in digests.items()],
                )
        return self.get(job_id)

    @staticmethod
    def _check_queue(db: sqlite3.Connection, max_queued: int) -> None:
        queued = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
        if queued >= max_queued:
            raise QueueFullError(f"{queued} jobs are waiting, the queue's bound; retry later")

    def claim_next(self) -> JobRecord | None:
        """Mark the oldest `queued` job `running` and return it (None when nothing waits)."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, step = 0, attempts = attempts + 1 WHERE id = ?",
                (time.time(), row[0]),
            )
        return self.get(row[0])

    def mark_running(self, job_id: str) -> bool:
        """`queued -> running` (the Redis mode's worker picked it up); False if the job is no longer queued."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1 "
                "WHERE id = ? AND status = 'queued'",
                (time.time(), job_id),
            ).rowcount
        return changed == 1

    def set_progress(self, job_id: str, step: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET step = ? WHERE id = ? AND status = 'running'", (step, job_id))

    def finish(
        self,
        job_id: str,
        *,
        result_png: bytes,
        debug_pngs: dict[str, bytes],
        person_view: str | None,
        routed_garment: str | None,
        warnings: list[str],
    ) -> bool:
        """Store the outputs, then mark the job `done` in the same transaction as its file rows.

        Returns False (and stores nothing) when the job is no longer running (cancelled meanwhile)."""
        files = {"result": result_png, **{f"debug:{name}": data for name, data in debug_pngs.items()}}
        with self._blob_lock:
            digests = {role: (self.blobs.put(data), len(data)) for role, data in files.items()}
            with self._transaction() as db:
                changed = db.execute(
                    "UPDATE jobs SET status = 'done', finished_at = ?, step = total_steps, person_view = ?, "
                    "routed_garment = ?, warnings = ? WHERE id = ? AND status = 'running'",
                    (time.time(), person_view, routed_garment, json.dumps(warnings), job_id),
                ).rowcount
                if changed:
                    db.executemany(
                        "INSERT OR REPLACE INTO files (job_id, role, digest, size) VALUES (?, ?, ?, ?)",
                        [(job_id, role, digest, size) for role, (digest, size) in digests.items()],
                    )
        return changed == 1

    def fail(self, job_id: str, error: str, message: str) -> bool:
        """`queued/running -> failed` with the typed error's class name and message."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, error = ?, message = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (time.time(), error, message, job_id),
            ).rowcount
        return changed == 1

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel a job: a queued one at once, a running one is flagged (`cancel_requested`) and stopped by its
        worker at the next sampler step. Raises `JobStateError` for a finished job."""
        with self._transaction() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"no job {job_id!r}")
            if row[0] in FINISHED_STATES:
                raise JobStateError(f"job {job_id} is already {row[0]}; only queued or running jobs can be cancelled")
            if row[0] == "queued":
                db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?, cancel_requested = 1 WHERE id = ?",
                    (time.time(), job_id),
                )
            else:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def mark_cancelled(self, job_id: str) -> bool:
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
                (time.time(), job_id),
            ).rowcount
        return changed == 1

    def requeue(self, job_id: str) -> bool:
        """`running -> queued` (its worker stopped before finishing); keeps its place by `seq`."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = 'queued', step = 0, started_at = NULL WHERE id = ? AND status = 'running'",
                (job_id,),
            ).rowcount
        return changed == 1

    def requeue_interrupted(self) -> list[str]:
        """At start-up: jobs left `running` by a process that died are queued again (cancelled if that was asked).

        Returns the ids put back in the queue."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE status = 'running' AND cancel_requested = 1",
                (time.time(),),
            )
            rows = db.execute("SELECT id FROM jobs WHERE status = 'running'").fetchall()
            db.execute("UPDATE jobs SET status = 'queued', step = 0, started_at = NULL WHERE status = 'running'")
        return [row[0] for row in rows]

    # -- retention --------------------------------------------------------------------------------------------

    def cleanup(self, now: float | None = None) -> int:
        """Apply the retention time and the size cap; returns the number of jobs removed."""
        now = time.time() if now is None else now
        removed = 0
        with self._blob_lock:
            with self._transaction() as db:
                removed += db.execute(
                    "DELETE FROM jobs WHERE status IN ('done', 'failed', 'cancelled') AND finished_at < ?",
                    (now - self.retention_seconds,),
                ).rowcount
            size = self.blobs.total_bytes()
            while size > self.max_bytes:
                with self._transaction() as db:
                    row = db.execute(
                        "SELECT id FROM jobs WHERE status IN ('done', 'failed', 'cancelled') ORDER BY seq LIMIT 1"
                    ).fetchone()
                    if row is None:
                        break
                    db.execute("DELETE FROM jobs WHERE id = ?", (row[0],))
                    removed += 1
                self._delete_orphans()
                size = self.blobs.total_bytes()
            self._delete_orphans()
        return removed

    def _delete_orphans(self) -> None:
        # blob writes and their rows happen under `_blob_lock`, which the caller holds: an unreferenced blob or a
        # staging file now is left over (a rejected submission, a crash mid-write) and can go
        referenced = {row[0] for row in self._connect().execute("SELECT DISTINCT digest FROM files").fetchall()}
        for digest in self.blobs.digests():
            if digest not in referenced:
                self.blobs.delete(digest)
        for leftover in self.blobs.tmp_dir.glob("*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
