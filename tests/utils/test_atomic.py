"""mvvton.utils.atomic: sealed folders, atomic swaps, leftover cleanup, the pause hook."""

import json
import os
import time

import pytest

from mvvton.utils.atomic import (
    COMPLETE_MARKER,
    atomic_write_text,
    incomplete_reason,
    partial_path,
    pause_point,
    publish_files,
    read_completion_marker,
    remove_leftovers,
    remove_tree,
    write_completion_marker,
    write_folder_atomically,
)


def fill(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_marker_lists_sizes_and_detects_missing_truncated_and_unsealed(tmp_path):
    folder = fill(tmp_path / "ckpt", **{"a.bin": "12345", "sub/b.json": "{}"})
    assert "no complete.json" in incomplete_reason(folder)
    write_completion_marker(folder, step=7)
    assert incomplete_reason(folder) is None
    record = read_completion_marker(folder)
    assert record["step"] == 7 and record["files"] == {"a.bin": 5, "sub/b.json": 2}
    (folder / "a.bin").write_text("12")  # truncated after sealing
    assert incomplete_reason(folder) == "a.bin has 2 bytes, 5 expected"
    (folder / "sub" / "b.json").unlink()
    (folder / "a.bin").write_text("12345")
    assert incomplete_reason(folder) == "sub/b.json is missing"
    (folder / COMPLETE_MARKER).write_text("{not json")
    assert incomplete_reason(folder).startswith("unreadable complete.json")


def test_write_folder_atomically_replaces_and_cleans_leftovers(tmp_path):
    target = fill(tmp_path / "final", **{"old.txt": "old", "model_index.json": "{}"})
    # what a killed earlier save left behind: a partial folder, an old copy, a half-deleted folder, a temp file
    fill(partial_path(target), **{"stray.tmp": ""})
    fill(tmp_path / ".final.old", **{"x": "1"})
    fill(tmp_path / ".final.deleting", **{"x": "1"})
    (tmp_path / ".final.abc123.tmp").write_text("")
    keep = fill(tmp_path / "final_other", **{"x": "1"})

    def write(staging):
        assert staging == partial_path(target) and not any(staging.iterdir())  # the stale partial was removed
        fill(staging, **{"model_index.json": '{"new": 1}', "vae/config.json": "{}"})

    write_folder_atomically(target, write)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "model_index.json",
        "vae/config.json",
    ]
    assert json.loads((target / "model_index.json").read_text()) == {"new": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "final_other"]
    assert keep.is_dir()


def test_write_folder_atomically_keeps_the_old_folder_when_the_writer_fails(tmp_path):
    target = fill(tmp_path / "final", **{"model_index.json": "old"})

    def failing(staging):
        (staging / "model_index.json").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_folder_atomically(target, failing)
    assert (target / "model_index.json").read_text() == "old"
    assert remove_leftovers(tmp_path, "final") == [partial_path(target)]


def test_publish_files_moves_the_loader_file_last(tmp_path):
    target = fill(tmp_path / "run", **{"config.json": "old", "weights.safetensors": "old", "log.jsonl": "keep"})
    staging = fill(tmp_path / "run" / ".vae.partial", **{"config.json": "new", "weights.safetensors": "new"})
    publish_files(staging, target, last="config.json")
    assert {p.name: p.read_text() for p in target.iterdir() if p.is_file()} == {
        "config.json": "new",
        "weights.safetensors": "new",
        "log.jsonl": "keep",
    }
    assert not staging.exists()


def test_remove_tree_and_atomic_write_text(tmp_path):
    folder = fill(tmp_path / "checkpoint-2", **{"a": "1"})
    remove_tree(folder)
    assert list(tmp_path.iterdir()) == []
    path = atomic_write_text(tmp_path / "x" / "config.yaml", "a: 1\n")
    assert path.read_text() == "a: 1\n" and [p.name for p in path.parent.iterdir()] == ["config.yaml"]


def test_pause_point_announces_and_sleeps_only_at_the_named_point(tmp_path, monkeypatch):
    announce = tmp_path / "pause.json"
    monkeypatch.setenv("MVVTON_PAUSE_AT", "save:3")
    monkeypatch.setenv("MVVTON_PAUSE_FILE", str(announce))
    monkeypatch.setenv("MVVTON_PAUSE_SECONDS", "0.5")
    started = time.perf_counter()
    pause_point("other", 3)
    pause_point("save", 2)
    assert time.perf_counter() - started < 0.4 and not announce.exists()
    pause_point("save", 3)
    assert time.perf_counter() - started >= 0.5
    record = json.loads(announce.read_text())
    assert record == {"point": "save", "step": 3, "pid": os.getpid()}
