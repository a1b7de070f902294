"""The page's "recent jobs" panel, read from the service's job store.

Written against the interface of `mvvton.serving.store.JobStore` (issue 12, built on another branch):
`list_jobs(limit=20, status=None) -> list[JobRecord]`, a record having `id, status, created_at, finished_at,
person_view, routed_garment, error, result_path`. Only that method and those attributes are used (duck typing,
see `JobStoreLike`), so this module never imports the store; the tests drive it with their own small store object.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

JOB_COLUMNS = ("id", "status", "created", "finished", "person view", "routed garment", "error")
THUMBNAIL_SIDE = 256  # gallery thumbnails are shrunk to this many pixels on their long side


class JobStoreLike(Protocol):
    """What the page needs from `mvvton.serving.store.JobStore`."""

    def list_jobs(self, limit: int = 20, status: str | None = None) -> list[Any]: ...


def format_time(value: Any) -> str:
    """A record time (epoch seconds, `datetime`, ISO string or None) -> `YYYY-MM-DD HH:MM:SS` UTC (or as given)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))  # enums (e.g. a status enum) by their value


def _thumbnail(path: Any) -> np.ndarray | None:
    """The job's result image as `(h, w, 3)` uint8, or None if it is missing or unreadable (logged)."""
    from mvvton.errors import MVVTONError
    from mvvton.preprocessing.io import load_image

    if path is None or not Path(path).is_file():
        return None
    try:
        image = load_image(path, name=f"job result {path}")
    except MVVTONError as error:
        logger.warning("skipping a job result in the gallery: %s", error)
        return None
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return np.asarray(image)


def recent_jobs(job_store: JobStoreLike, limit: int = 20) -> tuple[list[list[str]], list[tuple[np.ndarray, str]]]:
    """The newest `limit` jobs as table rows (`JOB_COLUMNS`) and gallery items `(result image, caption)`.

    Images are returned as arrays (not paths) so the page never has to serve files from the store's folder.
    """
    rows, gallery = [], []
    for record in job_store.list_jobs(limit=limit):
        job_id, status = _text(record.id), _text(record.status)
        person_view, routed = _text(record.person_view), _text(record.routed_garment)
        rows.append([job_id, status, format_time(record.created_at), format_time(record.finished_at), person_view,
                     routed, _text(record.error)])  # fmt: skip
        image = _thumbnail(record.result_path)
        if image is not None:
            routing = f" · {person_view} → {routed}" if person_view else ""
            gallery.append((image, f"{job_id[:8]} · {status}{routing}"))
    return rows, gallery
