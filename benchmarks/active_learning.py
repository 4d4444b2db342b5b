"""Benchmark: learning curves of the active-learning loop per query strategy, noisy judges, and audit estimates.

    python -m benchmarks.active_learning                       # fake_20000, historical_50k, the NC election sets
    python -m benchmarks.active_learning --datasets nc_ballot_legal --audit-size 1000

Per dataset, in one run on one machine:
- plain unsupervised Splink (the bootstrap model at p >= 0.5) on the preset's settings;
- the loop with each query strategy (stratified, uncertainty, disagreement, diversity; two sampling rounds so
  disagreement has a previous model to disagree with), the SIMULATED truth judge at 0% error: true F1 and the
  model's own F1 estimate after every round, against pairs judged so far (the learning curve);
- the default strategy with the SIMULATED judge flipping 5% and 10% of its answers;
- every run ends with an audit (audit.size pairs, judged separately, never trained on): its F1 estimate and 95%
  interval within blocking, next to the true F1 within blocking.
Writes benchmarks/results/active_learning.{json,md,png}.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import splink_er
from benchmarks.common import RESULTS, machine, write_results

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["fake_20000", "historical_50k", "nc_ballot_legal", "candidate_to_results"]
STRATEGIES = ["stratified", "uncertainty", "disagreement", "diversity"]
ERROR_RATES = [0.05, 0.10]
REPEATS = 3  # the noisiest judge again, asked REPEATS times per pair (majority; REPEATS x the asks)


def within_blocking_f1(m: dict) -> float:
    """True F1 of the decisions over blocked pairs only (what the audit estimates)."""
    blocked_true = m["blocking_recall"] * m["true_pairs"]
    fn = blocked_true - m["true_positives"]
    return round(2 * m["true_positives"] / (2 * m["true_positives"] + m["false_positives"] + fn), 4)


def one(name: str, overrides: list[str], label: str) -> dict:
    tmp = Path(tempfile.mkdtemp())
    o = [f"output_dir={tmp / 'out'}", f"labels.path={tmp / 'labels.jsonl'}", "judge.kind=truth", *overrides]
    t0 = time.perf_counter()
    job = splink_er.prepare(REPO / "settings" / f"{name}.yaml", overrides=o, quiet=True)
    job.bootstrap()
    job.score()
    plain = job.metrics_for_scores("scores", "match_probability >= 0.5") | {
        "seconds": round(time.perf_counter() - t0, 2)
    }
    job.run_rounds()
    result = job.finish()
    shutil.rmtree(tmp, ignore_errors=True)
    m, audit = result.metrics, result.run.get("audit") or {}
    curve, judged = [], 0
    for r in result.run["rounds"]:
        judged += r["new_labels"]
        curve.append(
            {
                "round": r["round"],
                "pairs_judged": judged,
                "true_f1": r["metrics"]["f1"],
                "model_estimated_f1": r["estimated"]["f1"],
                "band": r["band"],
                "training_only": bool(r.get("training_only")),
            }
        )
    f1_audit, design = audit.get("f1") or {}, (audit.get("design_only") or {}).get("f1") or {}
    truth_in = within_blocking_f1(m)
    lo, hi = f1_audit.get("ci95") or [None, None]
    return {
        "dataset": name,
        "run": label,
        "overrides": overrides,
        "plain_splink": plain,
        "final": {k: m[k] for k in ("precision", "recall", "f1", "blocking_recall")} | {"f1_within_blocking": truth_in},
        "pairs_judged": result.run["judge"]["pairs_by_reason"],
        "blocking": result.run.get("blocking", {}).get("chosen"),
        "audit": {
            "f1": f1_audit.get("estimate"),
            "ci95": [lo, hi],
            "pairs_judged": audit.get("pairs_judged"),
            "contains_truth": lo is not None and lo <= truth_in <= hi,
            "half_width": round((hi - lo) / 2, 4) if lo is not None else None,
            "method": audit.get("method"),
            "design_only_f1": design.get("estimate"),
            "design_only_ci95": design.get("ci95"),
        },
        "judge_usage": {k: result.run["judge"]["usage"].get(k) for k in ("calls", "pairs", "split_votes")},
        "curve": curve,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def chart(runs: list[dict], path: Path) -> None:
    import altair as alt
    import pandas as pd

    rows = [
        {"dataset": r["dataset"], "run": r["run"], "pairs judged": c["pairs_judged"], "F1": c[k], "measure": what}
        for r in runs
        for c in r["curve"]
        for k, what in (("true_f1", "true"), ("model_estimated_f1", "model's estimate"))
    ]
    # Plain Splink as a flat line at 0 and at the most pairs judged, in the same data so the layers facet together.
    most = max(row["pairs judged"] for row in rows)
    rows += [
        {
            "dataset": r["dataset"],
            "run": "plain Splink",
            "pairs judged": x,
            "F1": r["plain_splink"]["f1"],
            "measure": "true",
        }
        for r in runs
        if r["run"] == "stratified"
        for x in (0, most)
    ]
    curves = (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x="pairs judged:Q",
            y=alt.Y("F1:Q", scale=alt.Scale(zero=False)),
            color="run:N",
            strokeDash=alt.StrokeDash(
                "measure:N", scale=alt.Scale(domain=["true", "model's estimate"], range=[[1, 0], [4, 4]])
            ),
            tooltip=["run", "pairs judged", "F1", "measure"],
        )
        .properties(width=300, height=220)
        .facet(facet="dataset:N", columns=2)
        .resolve_scale(y="independent", x="independent")
    )
    audits = pd.DataFrame(
        [
            {
                "dataset": r["dataset"],
                "run": r["run"],
                "true F1 within blocking": r["final"]["f1_within_blocking"],
                "audit estimate": r["audit"]["f1"],
                "lo": r["audit"]["ci95"][0],
                "hi": r["audit"]["ci95"][1],
            }
            for r in runs
            if r["audit"]["f1"] is not None
        ]
    )
    est = alt.Chart(audits).encode(x=alt.X("true F1 within blocking:Q", scale=alt.Scale(zero=False)), color="dataset:N")
    diag = (
        alt.Chart(pd.DataFrame({"t": [audits[["lo", "true F1 within blocking"]].min().min(), 1.0]}))
        .mark_line(color="grey", strokeDash=[4, 4])
        .encode(x="t:Q", y="t:Q")
    )
    audit_chart = alt.layer(
        diag,
        est.mark_rule().encode(y=alt.Y("lo:Q", scale=alt.Scale(zero=False)), y2="hi:Q"),
        est.mark_point(filled=True).encode(y="audit estimate:Q", tooltip=["dataset", "run"]),
    ).properties(width=300, height=260, title="audit estimate (95% interval) vs true F1")
    alt.vconcat(
        curves.properties(
            title="F1 against pairs judged after each round (solid: true F1 over all true "
            "pairs; dashed: the model's own estimate, within blocking)"
        ),
        audit_chart,
    ).resolve_scale(color="independent").save(str(path), scale_factor=1.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES)
    ap.add_argument("--error-rates", nargs="*", type=float, default=ERROR_RATES)
    ap.add_argument("--audit-size", type=int, default=2500)
    args = ap.parse_args()
    runs = []
    for name in args.datasets:
        common = [f"audit.size={args.audit_size}", "sampling.rounds=2"]
        for strategy in args.strategies:
            runs.append(one(name, common + [f"sampling.strategy={strategy}"], strategy))
            print(name, strategy, runs[-1]["final"], runs[-1]["audit"], runs[-1]["seconds"], "s", flush=True)
        for rate in args.error_rates:
            runs.append(one(name, common + [f"judge.error_rate={rate}"], f"stratified, judge {rate:.0%} wrong"))
            print(name, rate, runs[-1]["final"], runs[-1]["audit"], flush=True)
        if args.error_rates:
            rate = max(args.error_rates)
            runs.append(
                one(
                    name,
                    common + [f"judge.error_rate={rate}", f"judge.repeats={REPEATS}"],
                    f"stratified, judge {rate:.0%} wrong, majority of {REPEATS}",
                )
            )
            print(name, rate, REPEATS, runs[-1]["final"], runs[-1]["audit"], flush=True)
    md = [
        "| dataset | run | plain Splink F1 | loop F1 | P | R | blocking recall | pairs judged | audit F1 [95%] | "
        "true F1 within blocking | in interval | half-width | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        f, a = r["final"], r["audit"]
        ci = f"{a['f1']} [{a['ci95'][0]}, {a['ci95'][1]}]" if a["f1"] is not None else "-"
        md.append(
            f"| {r['dataset']} | {r['run']} | {r['plain_splink']['f1']:.4f} | **{f['f1']:.4f}** | {f['precision']:.4f} | "
            f"{f['recall']:.4f} | {f['blocking_recall']:.4f} | {sum(r['pairs_judged'].values()) - r['pairs_judged'].get('audit', 0)} "
            f"(+{r['pairs_judged'].get('audit', 0)} audit) | {ci} | {f['f1_within_blocking']:.4f} | {a['contains_truth']} | "
            f"{a['half_width']} | {r['seconds']} |"
        )
    md += [
        "",
        f"Machine: {machine()}. Judge: SIMULATED from ground truth (no LLM); 'judge x% wrong' flips a seeded "
        "x% of its answers. Audit pairs are judged on top of the budget and never trained on.",
        "",
        "![learning curves](active_learning.png)",
    ]
    write_results("active_learning", {"machine": machine(), "audit_size": args.audit_size, "runs": runs}, md)
    chart(runs, RESULTS / "active_learning.png")


if __name__ == "__main__":
    main()
