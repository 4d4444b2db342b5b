"""Append-only JSONL files (the label store and the decision log): one writer, one reader.

Appends are flushed and fsynced per batch, so a process killed at any moment loses no line already written. A torn
last line (killed mid-write, disk full) is skipped with a warning when read, and the next append starts on a new
line, so the torn bytes never swallow the next record.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> append(path, [{"a": 1}])
    >>> _ = path.open("a").write('{"a": 2, "torn')  # a write cut short
    >>> append(path, [{"a": 3}])
    >>> import warnings; warnings.simplefilter("ignore")
    >>> [r["a"] for r in read(path)]
    [1, 3]
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except (FileNotFoundError, OSError):  # missing or empty file
        return False


def append(path: str | Path, records: list[dict]) -> None:
    """Append `records` as JSON lines, durable before this returns."""
    if not records:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records)
    if _ends_mid_line(path):
        text = "\n" + text
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read(path: str | Path) -> Iterator[dict]:
    """Every readable line of `path`, in order; unreadable (torn) lines are counted and warned about."""
    bad = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                bad += 1
    if bad:
        warnings.warn(f"{path}: skipped {bad} unreadable line(s) (a run was probably killed mid-write)", stacklevel=2)
