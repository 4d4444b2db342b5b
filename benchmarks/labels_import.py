"""Benchmark: a run that starts from labels a team already has judges fewer pairs for the same F1 (issue 19).

    python -m benchmarks.labels_import                       # fake_1000 and candidate_to_results
    python -m benchmarks.labels_import --presets febrl4

Per preset, with the SIMULATED truth judge: run 1 starts from an empty label store; its judge answers
(decisions.parquet rows decided by the judge: pair, judge_match, judge_confidence) are the "earlier answers"
file. Run 2 starts from another empty label store, imports that file with `splink_er.import_labels` (confidence
>= 0.9, as the design documents recommend), and runs again. Printed: pairs judged and F1 of both runs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import splink_er
from benchmarks.common import machine, write_results
from splink_er.pairs import PAIR_KEY

REPO = Path(__file__).resolve().parents[1]


def one_preset(preset: str, tmp: Path) -> dict:
    settings = REPO / "settings" / f"{preset}.yaml"

    def run(tag: str):
        o = [f"output_dir={tmp / tag}", f"labels.path={tmp / tag / 'labels.jsonl'}", "judge.kind=truth"]
        o.append(f"entities.path={tmp / tag / 'entities.duckdb'}")
        return o

    first = splink_er.run(settings, overrides=run("first"), quiet=True)
    d = first.decisions
    earlier = d[d.decided_by == "judge"][PAIR_KEY + ["judge_match", "judge_confidence"]]
    path = tmp / "earlier_answers.parquet"
    earlier.to_parquet(path, index=False)
    imported = splink_er.import_labels(
        settings,
        path,
        source="earlier_run",
        left_source="source_dataset_l",
        right_source="source_dataset_r",
        match="judge_match",
        confidence_column="judge_confidence",
        min_confidence=0.9,
        overrides=run("second"),
    )
    second = splink_er.run(settings, overrides=run("second"), quiet=True)
    return {
        "preset": preset,
        "earlier_answers": len(earlier),
        "import": {k: v for k, v in imported.items() if isinstance(v, (int, float, str))},
        "first": {"pairs_judged": first.run["judge"]["pairs_judged"], "f1": first.metrics.get("f1")},
        "second": {
            "pairs_judged": second.run["judge"]["pairs_judged"],
            "f1": second.metrics.get("f1"),
            "decided_by_imported": int((second.decisions.decided_by == "imported").sum()),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["fake_1000", "candidate_to_results"])
    a = ap.parse_args()
    rows = []
    for preset in a.presets:
        with tempfile.TemporaryDirectory() as d:
            rows.append(one_preset(preset, Path(d)))
    md = [
        "| preset | earlier answers | run 1: pairs judged | run 1: F1 | run 2 (imported): pairs judged | run 2: F1 |"
        " pairs decided by an imported label |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, s = r["first"], r["second"]
        md.append(
            f"| {r['preset']} | {r['earlier_answers']:,} | {f['pairs_judged']:,} | {f['f1']:.6f} | "
            f"{s['pairs_judged']:,} | {s['f1']:.6f} | {s['decided_by_imported']:,} |"
        )
    md.append("")
    for r in rows:
        f, s = r["first"], r["second"]
        fewer = s["pairs_judged"] < f["pairs_judged"]
        kept = s["f1"] >= f["f1"] - 0.003  # the same F1 or better
        md.append(
            f"- {r['preset']}: run 2 judged {'fewer' if fewer else 'NOT fewer'} pairs ({s['pairs_judged']:,} vs "
            f"{f['pairs_judged']:,}); F1 {'kept' if kept else 'NOT kept'} (>= run 1 - 0.003: {s['f1']:.6f} vs {f['f1']:.6f})"
        )
    md.append("")
    md.append(f"Machine: {machine()}. Judge: SIMULATED from ground truth (no LLM).")
    write_results("labels_import", {"machine": machine(), "results": rows}, md)


if __name__ == "__main__":
    main()
