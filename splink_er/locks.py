"""One writer at a time: an OS file lock beside each store a run writes (the label store, the output directory).

A second process that wants the same store waits up to `labels.wait_seconds`, then stops with `Busy` (exit 7)
naming the store, before it loads any input or pays for any answer. Locks are released when the run finishes
or fails, and by the operating system when a process dies, so a killed run never leaves a store locked.

Example (one process may take a lock again; another process gets Busy):
    >>> import tempfile, pathlib, subprocess, sys
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "labels.jsonl"
    >>> first = hold(store, "label store", 0)
    >>> again = hold(store, "label store", 0)
    >>> code = f"from splink_er.locks import hold; hold({str(store)!r}, 'label store', 0)"
    >>> other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    >>> other.returncode, "Busy: label store" in other.stderr
    (1, True)
    >>> again.release(); first.release()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import Busy


def lock_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".lock")


def hold(path: Path, what: str, wait_seconds: float | None) -> FileLock:
    """The lock of `path`, acquired (waiting up to `wait_seconds`; None waits as long as it takes)."""
    where = lock_path(path)
    where.parent.mkdir(parents=True, exist_ok=True)
    # One lock object per file in a process, counted: jobs of one notebook or script follow one another on the
    # same store (a cell run again builds the new job before the old one is dropped); processes exclude each other.
    lock = FileLock(str(where), is_singleton=True, thread_local=False)
    try:
        lock.acquire(timeout=-1 if wait_seconds is None else wait_seconds)
    except Timeout:
        raise Busy(
            f"{what} {path} is being written by another splink-er process (lock {where}); wait for it to finish, "
            "raise labels.wait_seconds to wait for it, or give this run its own labels.path / output directory"
        ) from None
    return lock


@contextmanager
def writing(path: Path, what: str, wait_seconds: float | None) -> Iterator[None]:
    """Hold the lock of `path` for one write (a human label, an imported review file)."""
    lock = hold(path, what, wait_seconds)
    try:
        yield
    finally:
        lock.release()
