"""What every benchmark script shares: the machine description and writing its results (JSON and Markdown)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """The machine a result was measured on; timings are only comparable within one run on one machine."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3, 1)}


def write_results(stem: str, payload: dict, markdown: list[str] | None = None) -> None:
    """benchmarks/results/<stem>.json (and .md when given), and the Markdown on stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str))
    if markdown is not None:
        (RESULTS / f"{stem}.md").write_text("\n".join(markdown) + "\n")
        print("\n".join(markdown))
