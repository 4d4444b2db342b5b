"""What every benchmark script shares: the machine description and writing its results (JSON and Markdown)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# SPLINK_ER_BENCH_RESULTS: where results go instead (the smoke runs in CI write to a scratch directory).
RESULTS = Path(os.environ.get("SPLINK_ER_BENCH_RESULTS") or REPO / "benchmarks" / "results")
PACKAGES = ("splink_er", "splink", "duckdb", "pandas", "pyarrow", "scikit-learn")


def machine() -> dict:
    """The machine a result was measured on; timings are only comparable within one run on one machine."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
    }


def provenance() -> dict:
    """Which code, which packages, which command and when: stamped on every result."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "unknown", False
    return {
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "versions": {p: version(p) for p in PACKAGES},
        "command": " ".join(
            [
                "python -m",
                sys.modules["__main__"].__spec__.name
                if getattr(sys.modules["__main__"], "__spec__", None)
                else sys.argv[0],
                *sys.argv[1:],
            ]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_results(stem: str, payload: dict, markdown: list[str] | None = None) -> None:
    """benchmarks/results/<stem>.json (and .md when given), stamped with `provenance()`, and the Markdown on
    stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = provenance()
    (RESULTS / f"{stem}.json").write_text(json.dumps({"provenance": stamp} | payload, indent=2, default=str))
    if markdown is not None:
        footer = [
            "",
            f"_{stamp['command']} at commit {stamp['commit']}, {stamp['date']}; "
            + ", ".join(f"{k} {v}" for k, v in stamp["versions"].items())
            + "_",
        ]
        (RESULTS / f"{stem}.md").write_text("\n".join(markdown + footer) + "\n")
        print("\n".join(markdown))
