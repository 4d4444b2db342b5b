"""Append-only JSONL files (the label store and the decision log): one writer, one reader.

Appends are flushed and fsynced per batch, so a process killed at any moment loses no line already written. A
torn last line (killed mid-write, disk full) is moved out of the file by the next append, into `<file>.torn`
beside it (kept for inspection, never read as a record), so the next record starts on a line of its own. A reader
that meets an unreadable line skips it and warns with the file and line number.

Example:
    >>> import tempfile, pathlib, warnings
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> append(path, [{"a": 1}])
    >>> _ = path.open("a").write('{"a": 2, "torn')  # a write cut short
    >>> append(path, [{"a": 3}])
    >>> [r["a"] for r in read(path)], (path.parent / "log.jsonl.torn").read_text()
    ([1, 3], '{"a": 2, "torn\\n')
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path


def _quarantine_torn_tail(path: Path) -> None:
    """Move bytes after the last newline (a write cut short) to `<path>.torn` and truncate them away."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        # Read back in blocks until a newline: a torn record is at most one line long.
        pos, tail = size, b""
        while pos > 0 and b"\n" not in tail:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
        cut = pos + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        f.seek(cut)
        torn = f.read()
        try:  # a whole record without its newline (a hand edit): keep it, end its line
            json.loads(torn)
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
            return
        except ValueError:
            pass
        with open(path.with_name(path.name + ".torn"), "ab") as q:
            q.write(torn + b"\n")
            q.flush()
            os.fsync(q.fileno())
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    warnings.warn(f"{path}: its last line was cut short (a write was killed); moved to {path.name}.torn", stacklevel=3)


def append(path: str | Path, records: list[dict]) -> None:
    """Append `records` as JSON lines, durable before this returns."""
    if not records:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _quarantine_torn_tail(path)
    text = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_numbered(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON value) for every readable line of `path`; unreadable lines are skipped with a
    warning that names the file and the line numbers."""
    bad: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        warnings.warn(
            f"{path}: skipped {len(bad)} unreadable line(s) (line {shown}): cut short by a killed write, or edited "
            "by hand",
            stacklevel=2,
        )


def read(path: str | Path) -> Iterator[dict]:
    """Every readable line of `path` that holds a JSON object, in order."""
    return (value for _, value in read_numbered(path) if isinstance(value, dict))
