"""How often the audit's 95% interval holds the true F1, and how wide it is: many simulated audits of one run.

    python -m benchmarks.audit_coverage fake_20000 --sizes 1350 2000 2500 --repeats 40

Runs the preset once (SIMULATED truth judge), keeps its decisions, then draws `--repeats` audits of each size from
them the way `audit.draw` does (same strata, Neyman allocation on the run's own uncertainty, simple random samples
within strata), answers them from the truth, and estimates F1 within blocking with `audit.estimate`. Reports the
share of intervals that contain the true F1 within blocking and the mean half-width, for the model-assisted
estimate and the design-only one. Writes benchmarks/results/audit_coverage_<preset>.{json,md}. Dedupe presets.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import splink_er
from benchmarks.common import machine, write_results
from splink_er.audit import EXPECTED_SQL, allocate, estimate, strata

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--sizes", nargs="+", type=int, default=[1350, 2000, 2500])
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    result = splink_er.run(
        REPO / "settings" / f"{args.preset}.yaml",
        quiet=True,
        overrides=[
            "judge.kind=truth",
            f"output_dir={tmp}",
            f"labels.path={tmp}/labels.jsonl",
            "outputs.model_rejects=rows",
        ],
    )
    job = splink_er.prepare(
        REPO / "settings" / f"{args.preset}.yaml",
        quiet=True,
        overrides=["judge.kind=none", f"output_dir={tmp}/x", f"labels.path={tmp}/x.jsonl"],
    )
    s, con = job.settings, job.con
    table, truth = next(iter(job.loaded.tables.values())), s.truth_column
    case = "CASE " + " ".join(f"WHEN {sql} THEN '{h}'" for h, sql in strata(s).items()) + " END"
    d = con.execute(f"""
        SELECT {case} AS stratum, final_match, {EXPECTED_SQL} AS expected, (a.{truth} = b.{truth}) AS y
        FROM read_parquet('{result.output_dir}/decisions.parquet') d
        JOIN {table} a ON a.unique_id = d.unique_id_l JOIN {table} b ON b.unique_id = d.unique_id_r""").df()
    d["y"] = d["y"].fillna(False).astype(bool)
    tp, fp, fn = (d.final_match & d.y).sum(), (d.final_match & ~d.y).sum(), (~d.final_match & d.y).sum()
    true_f1 = 2 * tp / (2 * tp + fp + fn)
    groups = d.groupby("stratum")
    sizes = groups.size().to_dict()
    expected = groups["expected"].sum().to_dict()
    variance = groups["expected"].apply(lambda q: float((q * (1 - q)).mean())).to_dict()
    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        plan = allocate(n, sizes, {h: v**0.5 for h, v in variance.items()})
        hits = {"model-assisted": [], "design-only": []}
        for _ in range(args.repeats):
            parts = []
            for h, k in plan.items():
                g = d[d.stratum == h].sample(k, random_state=int(rng.integers(2**31)))
                parts.append(
                    pd.DataFrame(
                        {
                            "source_dataset_l": "a",
                            "unique_id_l": range(k),
                            "source_dataset_r": "a",
                            "unique_id_r": range(k),
                            "stratum": h,
                            "stratum_size": sizes[h],
                            "final_match": g.final_match.to_numpy(),
                            "match": g.y.to_numpy(),
                            "expected": g.expected.to_numpy(),
                            "stratum_expected": expected[h],
                            "stratum_variance": variance[h],
                            "blocked": True,
                        }
                    )
                )
            e = estimate(pd.concat(parts, ignore_index=True), reps=500)
            for name, f in (("model-assisted", e["f1"]), ("design-only", e["design_only"]["f1"])):
                lo, hi = f["ci95"]
                hits[name].append((lo <= true_f1 <= hi, (hi - lo) / 2))
        for name, h in hits.items():
            rows.append(
                {
                    "audited_pairs": n,
                    "estimate": name,
                    "coverage": round(float(np.mean([x for x, _ in h])), 3),
                    "mean_half_width": round(float(np.mean([w for _, w in h])), 4),
                    "allocation": plan,
                }
            )
    md = [
        f"True F1 within blocking of one {args.preset} run: {true_f1:.4f} ({len(d):,} blocked pairs). "
        f"{args.repeats} simulated audits per size.",
        "",
        "| audited pairs (strata) | estimate | coverage of the 95% interval | mean half-width |",
        "|---|---|---|---|",
    ]
    md += [f"| {r['audited_pairs']} | {r['estimate']} | {r['coverage']} | {r['mean_half_width']} |" for r in rows]
    md += ["", f"Machine: {machine()}. Judge: SIMULATED from ground truth."]
    write_results(
        f"audit_coverage_{args.preset}",
        {
            "preset": args.preset,
            "true_f1_within_blocking": true_f1,
            "repeats": args.repeats,
            "rows": rows,
            "machine": machine(),
        },
        md,
    )


if __name__ == "__main__":
    main()
