"""What any model over a preset's blocked pairs could reach, measured with full truth (no labels, no judge).

    python -m benchmarks.ceilings fake_20000 [--set key=value ...] [--name stem]

Scores every blocked pair with the bootstrap (plain Splink) model, joins the truth, and reports pairwise F1 (recall
over every true pair, so blocking misses count) of:
- plain Splink at p >= 0.5;
- a perfect judge deciding the whole band (routing.low < p < routing.high), the model the rest;
- the best decision per comparison-vector pattern: the ceiling of any Fellegi-Sunter model on these comparisons;
- logistic regression on the comparison levels and the match weight, fitted on all pairs (in-sample);
- gradient boosting on the comparison levels and term frequencies (in-sample; not expressible as a Splink model).
Writes benchmarks/results/ceilings_<preset>.{json,md} (or --name). Dedupe presets only (one source, a truth column).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import splink_er
from benchmarks.common import machine, write_results
from splink_er.evaluate import true_pair_count

REPO = Path(__file__).resolve().parents[1]


def f1(predicted: np.ndarray, y: np.ndarray, n_true: int) -> dict:
    tp = int((predicted & y).sum())
    p, r = tp / max(int(predicted.sum()), 1), tp / n_true
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if tp else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--name", help="Results stem (default ceilings_<preset>).")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    job = splink_er.prepare(
        REPO / "settings" / f"{args.preset}.yaml",
        quiet=True,
        overrides=["judge.kind=none", f"output_dir={tmp}", f"labels.path={tmp}/labels.jsonl", *args.sets],
    )
    s = job.settings
    if s.link_type != "dedupe_only" or not s.truth_column:
        raise SystemExit("ceilings.py takes dedupe presets with a truth_column")
    job.bootstrap()
    scores = job.score()
    table, truth = next(iter(job.loaded.tables.values())), s.truth_column
    gammas = [c for c in scores.df("SELECT * FROM {this} LIMIT 0").columns if c.startswith(("gamma_", "tf_"))]
    d = scores.df(f"""
        SELECT s.match_probability, s.match_weight, {", ".join("s." + g for g in gammas)},
               (a.{truth} = b.{truth}) AS y
        FROM {{this}} s JOIN {table} a ON a.unique_id = s.unique_id_l JOIN {table} b ON b.unique_id = s.unique_id_r
    """)
    n_true = true_pair_count(job.con, job.loaded, s, truth)
    y, p = d["y"].fillna(False).to_numpy(bool), d["match_probability"].to_numpy()
    band = (p > s.routing.low) & (p < s.routing.high)
    levels = [g for g in gammas if g.startswith("gamma_")]
    pattern = d.groupby(levels)["y"].transform("mean").to_numpy()
    out = {
        "preset": args.preset,
        "blocked_pairs": len(d),
        "true_pairs": n_true,
        "blocking_recall": round(int(y.sum()) / n_true, 4),
        "plain_splink": f1(p >= 0.5, y, n_true),
        "perfect_judge_on_band": f1(np.where(band, y, p >= 0.5), y, n_true) | {"band_pairs": int(band.sum())},
        "best_per_pattern": f1(pattern > 0.5, y, n_true) | {"patterns": int(d.groupby(levels).ngroups)},
    }
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    onehot = pd.get_dummies(d[levels].astype(str)).to_numpy(float)
    x = np.column_stack([onehot, d["match_weight"].clip(-40, 40)])
    lr = LogisticRegression(C=10, max_iter=3000).fit(x, y)
    out["logistic_on_levels"] = f1(lr.predict_proba(x)[:, 1] >= 0.5, y, n_true)
    xg = d[gammas + ["match_weight"]].fillna(-1).to_numpy(float)
    gb = HistGradientBoostingClassifier(max_iter=200, categorical_features=list(range(len(levels)))).fit(xg, y)
    out["boosting_in_sample"] = f1(gb.predict_proba(xg)[:, 1] >= 0.5, y, n_true)
    md = [f"| {args.preset} | F1 | P | R |", "|---|---|---|---|"]
    md += [f"| {k} | {v['f1']} | {v['precision']} | {v['recall']} |" for k, v in out.items() if isinstance(v, dict)]
    md += ["", f"blocked pairs {len(d):,}, blocking recall {out['blocking_recall']}; machine {machine()}"]
    write_results(
        args.name or f"ceilings_{args.preset}", out | {"settings_overrides": args.sets, "machine": machine()}, md
    )


if __name__ == "__main__":
    main()
