"""The recent-jobs gallery against the JobStore interface of issue 12 (`list_jobs(limit, status)` -> records).

`mvvton.serving.store` is built on another branch, so the store here is a small object of our own with the same
method and record fields; the page only uses those.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import PIL.Image

from mvvton.ui.jobs import JOB_COLUMNS, THUMBNAIL_SIDE, format_time, recent_jobs


@dataclass
class Record:  # the fields of mvvton.serving.store.JobRecord
    id: str
    status: str
    created_at: float | None
    finished_at: float | None
    person_view: str | None
    routed_garment: str | None
    error: str | None
    result_path: str | None


class ListStore:
    """Newest first, as the service's store returns them; remembers the arguments it was called with."""

    def __init__(self, records: list[Record]):
        self.records = records
        self.calls: list[tuple[int, str | None]] = []

    def list_jobs(self, limit: int = 20, status: str | None = None) -> list[Record]:
        self.calls.append((limit, status))
        return [r for r in self.records if status is None or r.status == status][:limit]


def _png(path: Path, size: tuple[int, int], color: tuple[int, int, int]) -> str:
    PIL.Image.new("RGB", size, color).save(path)
    return str(path)


def test_recent_jobs_table_and_gallery(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    store = ListStore([
        Record("a" * 32, "done", 1_800_000_000.0, 1_800_000_012.5, "back", "back", None,
               _png(tmp_path / "a.png", (384, 512), (10, 200, 30))),
        Record("b" * 32, "failed", 1_799_999_000.0, 1_799_999_001.0, None, None, "InvalidImageError: corrupt", None),
        Record("c" * 32, "running", 1_799_998_000.0, None, "side", "front", None, str(tmp_path / "not_yet.png")),
        Record("d" * 32, "done", 1_799_997_000.0, 1_799_997_009.0, "front", "front", None, str(corrupt)),
    ])  # fmt: skip
    rows, gallery = recent_jobs(store, limit=20)
    assert store.calls == [(20, None)]
    assert [len(row) for row in rows] == [len(JOB_COLUMNS)] * 4
    assert rows[0][:4] == ["a" * 32, "done", "2027-01-15 08:00:00", "2027-01-15 08:00:12"]
    assert rows[1][1] == "failed" and rows[1][-1] == "InvalidImageError: corrupt" and rows[1][4] == ""
    assert rows[2][3] == ""  # not finished
    # only the readable result makes it into the gallery, shrunk, with its routing in the caption
    assert len(gallery) == 1
    image, caption = gallery[0]
    assert image.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 3 // 4, 3) and image[0, 0].tolist() == [10, 200, 30]
    assert caption == "aaaaaaaa · done · back → back"


def test_recent_jobs_respects_the_limit():
    store = ListStore([Record(str(i), "queued", None, None, None, None, None, None) for i in range(30)])
    rows, gallery = recent_jobs(store, limit=5)
    assert len(rows) == 5 and gallery == [] and store.calls == [(5, None)]


def test_format_time_accepts_what_a_store_may_hold():
    moment = datetime.datetime(2026, 12, 2, 16, 0, 5, tzinfo=datetime.timezone.utc)
    assert format_time(moment.timestamp()) == "2026-12-02 16:00:05"
    assert format_time(moment.astimezone(datetime.timezone(datetime.timedelta(hours=2)))) == "2026-12-02 16:00:05"
    assert format_time("2026-12-02T16:00:05Z") == "2026-12-02T16:00:05Z"
    assert format_time(None) == ""
    assert format_time(0) == "1970-01-01 00:00:00"
