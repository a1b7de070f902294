"""Crash-safe files and folders: a `kill -9` at any moment leaves either the old complete version or the new one.

Folders are written under a temporary sibling name (`.<name>.partial`), fsynced, optionally sealed with a completion
marker (`complete.json`, written last, listing every file with its size), and then renamed into place. An existing
folder is swapped out with one `renameat2(RENAME_EXCHANGE)` on Linux (two renames elsewhere). Leftovers of interrupted
writes (`.<name>.partial`, `.<name>.old`, `.<name>.deleting`, `.*.tmp` files) are removed by the next write.

`pause_point` is a test hook: with `MVVTON_PAUSE_AT=<point>[:<step>]` the process announces itself in the file named by
`MVVTON_PAUSE_FILE` and sleeps there, so a test can `SIGKILL` it inside a save window deterministically.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "complete.json"
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
DELETING_SUFFIX = ".deleting"
TMP_SUFFIX = ".tmp"
PAUSE_AT_ENV = "MVVTON_PAUSE_AT"
PAUSE_FILE_ENV = "MVVTON_PAUSE_FILE"
PAUSE_SECONDS_ENV = "MVVTON_PAUSE_SECONDS"
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entry list's) data to disk; folders are skipped where the OS cannot open them."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:  # e.g. folders on Windows
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | Path) -> None:
    """fsync every file below `folder`, then every folder bottom-up (so a power cut cannot reorder the writes)."""
    folder = Path(folder)
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            _fsync_path(Path(root) / name)
        _fsync_path(Path(root))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder + fsync + `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_path(path.parent)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# completion markers


def _listed_files(folder: Path) -> dict[str, int]:
    """Relative path -> size of every file below `folder` except the marker."""
    listed = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != COMPLETE_MARKER:
            listed[path.relative_to(folder).as_posix()] = path.stat().st_size
    return listed


def write_completion_marker(folder: str | Path, **info: object) -> Path:
    """fsync everything below `folder`, then write `complete.json` (file sizes + `info`) last."""
    folder = Path(folder)
    fsync_tree(folder)
    record = {**info, "files": _listed_files(folder)}
    return atomic_write_text(folder / COMPLETE_MARKER, json.dumps(record, indent=1, sort_keys=True))


def incomplete_reason(folder: str | Path) -> str | None:
    """`None` when `folder` carries a marker and every listed file exists with its recorded size; else why not."""
    folder = Path(folder)
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        return f"no {COMPLETE_MARKER} (interrupted save, or written before completion markers existed)"
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable {COMPLETE_MARKER}: {error}"
    for relative, size in files.items():
        path = folder / relative
        if not path.is_file():
            return f"{relative} is missing"
        if path.stat().st_size != size:
            return f"{relative} has {path.stat().st_size} bytes, {size} expected"
    return None


def read_completion_marker(folder: str | Path) -> dict[str, object]:
    """The marker's record (`files` plus the `info` given to `write_completion_marker`)."""
    return json.loads((Path(folder) / COMPLETE_MARKER).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------------------
# folders


def partial_path(target: str | Path) -> Path:
    """The temporary sibling a folder is written to before it is renamed to `target`."""
    target = Path(target)
    return target.parent / f".{target.name}{PARTIAL_SUFFIX}"


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two existing paths (Linux `renameat2(RENAME_EXCHANGE)`); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def remove_tree(path: str | Path) -> None:
    """Delete a folder so a kill never leaves a half-deleted folder under its own name: rename, then delete."""
    path = Path(path)
    if not path.exists():
        return
    doomed = path.parent / f".{path.name}{DELETING_SUFFIX}"
    if doomed.exists():
        shutil.rmtree(doomed)
    os.replace(path, doomed)
    _fsync_path(path.parent)
    shutil.rmtree(doomed)


def publish_folder(staging: str | Path, target: str | Path) -> Path:
    """Move the complete folder `staging` to `target`, replacing an existing `target` in one atomic swap."""
    staging, target = Path(staging), Path(target)
    fsync_tree(staging)
    if not target.exists():
        os.replace(staging, target)
    elif _exchange(staging, target):
        pause_point("publish.swapped")
        shutil.rmtree(staging)  # now holds the previous version
    else:  # two renames: a kill in between leaves `.<name>.old` (complete), which the next write removes
        old = target.parent / f".{target.name}{OLD_SUFFIX}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old)
    _fsync_path(target.parent)
    return target


def publish_files(staging: str | Path, target: str | Path, last: str) -> Path:
    """Move the files of the folder `staging` into the folder `target` (for outputs that live at the top of a folder
    with other things, e.g. a VAE saved into its run's output_dir). `last`, the file a reader opens first (such as
    `config.json`), is removed first and moved in last, so `target` is never loadable with a mix of old and new."""
    staging, target = Path(staging), Path(target)
    fsync_tree(staging)
    (target / last).unlink(missing_ok=True)
    for path in sorted(staging.rglob("*")):
        if path.is_file() and path.name != last:
            destination = target / path.relative_to(staging)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
    pause_point(f"{last}.pending")
    os.replace(staging / last, target / last)
    _fsync_path(target)
    shutil.rmtree(staging)
    return target


def remove_leftovers(parent: str | Path, name: str = "*") -> list[Path]:
    """Delete what interrupted writes of `name` (a glob) left in `parent`; returns the removed paths."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for suffix in (PARTIAL_SUFFIX, OLD_SUFFIX, DELETING_SUFFIX):
        for path in parent.glob(f".{name}{suffix}"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(path)
    for path in parent.glob(f".{name}.*{TMP_SUFFIX}"):
        if path.is_file():
            path.unlink()
            removed.append(path)
    for path in removed:
        logger.info(f"removed leftover of an interrupted save: {path}")
    return removed


def write_folder_atomically(target: str | Path, write: Callable[[Path], object]) -> Path:
    """Remove leftovers of an earlier interrupted write, call `write(staging_folder)`, then swap it in as `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target.parent, target.name)
    staging = partial_path(target)
    staging.mkdir()
    write(staging)
    pause_point(f"{target.name}.staged")
    return publish_folder(staging, target)


# ----------------------------------------------------------------------------------------------------------------------
# test hook


def pause_point(point: str, step: int | None = None) -> None:
    """Test hook: sleep here when `MVVTON_PAUSE_AT` is `point` or `point:step` (after announcing it in the file
    `MVVTON_PAUSE_FILE` as JSON with the PID), so a test can kill the process inside this window. No-op otherwise."""
    wanted = os.environ.get(PAUSE_AT_ENV)
    if not wanted or wanted not in (point, f"{point}:{step}"):
        return
    announce = os.environ.get(PAUSE_FILE_ENV)
    if announce:
        atomic_write_text(announce, json.dumps({"point": point, "step": step, "pid": os.getpid()}))
    logger.warning(f"pausing at {point} (step {step}) for a kill test ({PAUSE_AT_ENV}={wanted})")
    time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "300")))
