"""Crash- and concurrency-safe dataset folders (DESIGN.md, "Scale": "A folder being written
is marked as such; readers refuse it"; issue 9, item 7).

While `lcfm ingest` or `lcfm simulate` writes a folder, the folder holds the marker file
`.lcfm-writing` (JSON: command, pid, host, start time). The marker is created atomically
(hard link of a complete temporary file, which fails when the name exists), so a second
writer into the same folder fails at once, naming the first. Readers (`lcfm.shards`) refuse
a marked folder. The marker is removed last, after the shards and `report.json` (and, from
simulate, `simulation.json`) are in place: a folder without the marker is complete.

Clean restart: when a run is killed (SIGKILL, power loss) its marker stays. Rerunning the
same command into the folder finds the marker, sees that its pid no longer runs on this
host, deletes the partial outputs (shards, temporary files, report) and starts again from
the beginning. A marker left by another host cannot be checked and is refused with a line
saying which file to delete once that run is known to be gone. A run that fails with an
error removes its partial outputs and its marker itself.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lcfm.exceptions import DataError

MARKER = ".lcfm-writing"
#: scratch space of a run in progress (e.g. merge buckets), removed on completion
WORK_DIR = ".lcfm-work"
#: what a run writes and a clean restart (or a failed run) removes
OUTPUT_GLOBS = ("part-*.parquet", ".part-*.tmp", ".pending-*.parquet", ".pending-*.tmp",
                "report.json", "simulation.json", ".report.json.*", ".simulation.json.*",
                "README.md", ".README.md.*")
SHARD_GLOB = "part-*.parquet"


def file_mode() -> int:
    """0666 less the process umask: what `open()` would give (0644 under umask 022),
    where `mkstemp` gives 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_file(path: Path) -> Iterator[str]:
    """A temporary file beside `path` (mode as `open()` gives, not mkstemp's 0600) for the
    caller to write; renamed over `path` when the block ends, deleted if it fails, so a
    reader sees the old content or the new, never part of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically (`atomic_file`)."""
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def read_marker(folder: Path) -> dict | None:
    """The marker's content, {} when it exists but cannot be parsed, None without one."""
    try:
        text = (Path(folder) / MARKER).read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def describe_writer(info: dict) -> str:
    if not info:
        return "an unknown writer"
    return (f"{info.get('command', 'a writer')} (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, started {info.get('started', '?')})")


def refuse_if_being_written(folder: Path) -> None:
    """Raise `DataError` when `folder` is marked as being written (readers call this)."""
    info = read_marker(folder)
    if info is not None:
        raise DataError(f"{folder}: being written by {describe_writer(info)} or left by an "
                        "interrupted ingest/simulate; rerun that command into this folder "
                        "(it restarts cleanly) or wait for it to finish")


def _pid_running(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (TypeError, ValueError, OverflowError):
        return True  # unreadable pid: do not guess that the run is gone
    return True


def _stale(info: dict) -> bool:
    """A marker whose run is certainly gone: same host, pid no longer running."""
    return bool(info) and info.get("host") == socket.gethostname() \
        and not _pid_running(info.get("pid"))


def _create_marker(folder: Path, command: str) -> bool:
    """Create the marker atomically with its content; False when one exists already."""
    info = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fd, tmp = tempfile.mkstemp(prefix=".lcfm-marker.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(info) + "\n")
        try:
            os.link(tmp, folder / MARKER)  # fails with FileExistsError: the O_EXCL of links
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: O_EXCL, then the content
            try:
                fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(info) + "\n")
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_outputs(folder: Path) -> None:
    """Delete what a run writes (see OUTPUT_GLOBS) and its scratch folder."""
    for pattern in OUTPUT_GLOBS:
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)
    shutil.rmtree(folder / WORK_DIR, ignore_errors=True)


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder; --output needs a folder "
                        "for the shards")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{folder}: cannot create the output folder "
                        f"({exc.strerror or exc})") from None


@contextmanager
def writing(folder: Path, command: str) -> Iterator[Path]:
    """Mark `folder` as being written by `command` for the duration of the block; yields
    the scratch folder of the run (`folder/.lcfm-work`, created on demand by its users).

    Refuses (`DataError`, one line) a path that is a file, a folder marked by a live
    writer, and a folder that already holds a dataset's shards. On an error inside the
    block the partial outputs and the marker are removed; on success only the marker and
    the scratch folder, last.
    """
    folder = Path(folder)
    _prepare_folder(folder)
    if not _create_marker(folder, command):
        info = read_marker(folder) or {}
        if not _stale(info):
            raise DataError(f"{folder}: already being written by {describe_writer(info)}; "
                            "wait for it to finish or choose another --output (if no such "
                            f"run exists any more, delete {folder / MARKER})")
        # clean restart: the run that left the marker is dead (same host, pid gone)
        remove_outputs(folder)
        (folder / MARKER).unlink(missing_ok=True)
        if not _create_marker(folder, command):  # lost a race with another rerun
            info = read_marker(folder) or {}
            raise DataError(f"{folder}: already being written by {describe_writer(info)}")
    shards = sorted(folder.glob(SHARD_GLOB))
    if shards:  # a complete dataset: never overwritten, never cleaned
        (folder / MARKER).unlink(missing_ok=True)
        raise DataError(f"{folder}: already holds {len(shards)} shard(s) of a dataset; "
                        "choose an empty output folder")
    try:
        yield folder / WORK_DIR
    except BaseException:
        remove_outputs(folder)
        (folder / MARKER).unlink(missing_ok=True)
        raise
    shutil.rmtree(folder / WORK_DIR, ignore_errors=True)
    (folder / MARKER).unlink()
