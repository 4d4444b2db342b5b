"""Compare two runs' output directories pair by pair: the check that a refactor kept every decision.

    python -m benchmarks.compare_runs BEFORE_DIR AFTER_DIR [NAME ...]

With names, BEFORE_DIR/NAME is compared with AFTER_DIR/NAME for each. Per run: whether both decided the same
blocked pairs, how many final matches and decided_by values differ, the largest probability difference, and
F1 and judged pairs from run.json. Exits 1 if any decision differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from splink_er.decision_log import compare_decisions


def compare(before: Path, after: Path) -> dict:
    a, b = (pd.read_parquet(d / "decisions.parquet") for d in (before, after))
    ra, rb = (json.loads((d / "run.json").read_text()) for d in (before, after))
    out = compare_decisions(a, b)
    for tag, r in (("before", ra), ("after", rb)):
        out[f"f1_{tag}"] = r.get("metrics", {}).get("f1")
        out[f"judged_{tag}"] = r["judge"]["pairs_judged"]
        out[f"matches_{tag}"] = r["final_matches"]
    return out


def main(argv: list[str]) -> int:
    before, after, *names = argv
    pairs = [(Path(before) / n, Path(after) / n, n) for n in names] or [(Path(before), Path(after), after)]
    same = True
    for a, b, name in pairs:
        res = compare(a, b)
        ok = (
            res["same_pairs"]
            and not res["final_match_differs"]
            and not res["decided_by_differs"]
            and res["f1_before"] == res["f1_after"]
            and res["judged_before"] == res["judged_after"]
        )
        same &= ok
        print(f"{'same' if ok else 'DIFFERENT'}  {name}: {res}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
