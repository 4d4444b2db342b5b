"""Audit estimates without ground truth: stratified sample, judge answers, intervals; never trains or routes."""

import numpy as np
import pandas as pd
import pytest

import splink_er
from splink_er.audit import estimate
from splink_er.pairs import PAIR_KEY


def _audit_frame(strata: dict) -> pd.DataFrame:
    """strata: name -> (size, final_match, matches among sampled, sampled)."""
    rows = []
    for h, (size, final, matches, n) in strata.items():
        for i in range(n):
            rows.append(
                {
                    "source_dataset_l": "a",
                    "unique_id_l": f"{h}{i}",
                    "source_dataset_r": "a",
                    "unique_id_r": f"{h}{i}x",
                    "stratum": h,
                    "stratum_size": size,
                    "final_match": final,
                    "match": i < matches,
                    "blocked": False,
                }
            )
    return pd.DataFrame(rows)


def test_estimate_recovers_known_totals_and_brackets_them():
    # 1,000 accepted pairs, 10% false; 10,000 rejected pairs, 1% missed: TP 900, FP 100, FN 100.
    audit = _audit_frame({"acc": (1000, True, 180, 200), "rej": (10000, False, 2, 200)})
    est = estimate(audit)
    assert est["estimated_pairs"] == {"true_positives": 900, "false_positives": 100, "false_negatives": 100}
    assert est["precision"]["estimate"] == 0.9 and est["recall"]["estimate"] == 0.9
    lo, hi = est["f1"]["ci95"]
    assert lo < 0.9 < hi and hi - lo < 0.2


def test_no_error_sampled_still_leaves_an_honest_interval():
    est = estimate(_audit_frame({"acc": (5000, True, 50, 50), "rej": (100000, False, 0, 50)}))
    assert est["precision"]["estimate"] == 1.0 and est["precision"]["ci95"][1] == 1.0
    assert est["recall"]["ci95"][0] < 0.9  # 50 of 100,000 rejected pairs cannot rule out many misses


def test_interval_covers_the_truth_in_repeated_samples():
    """Frequentist check of the method: true F1 inside the 95% interval in most of 60 simulated audits."""
    rng = np.random.default_rng(1)
    true_f1, inside = 2 * 900 / (2 * 900 + 100 + 100), 0
    for _ in range(60):
        acc = rng.random(150) < 0.9
        rej = rng.random(150) < 0.01
        audit = _audit_frame({"acc": (1000, True, int(acc.sum()), 150), "rej": (10000, False, int(rej.sum()), 150)})
        lo, hi = estimate(audit, reps=500)["f1"]["ci95"]
        inside += lo <= true_f1 <= hi
    assert inside >= 52  # 95% nominal; allow for 60 draws


@pytest.mark.e2e
def test_audit_in_a_run_changes_no_decision(tmp_path, demo_dict):
    runs = {}
    for size in (0, 200):
        d = dict(
            demo_dict,
            output_dir=str(tmp_path / f"a{size}"),
            audit={"size": size},
            judge={"kind": "truth", "max_pairs": 300},
            labels={"path": str(tmp_path / f"l{size}.jsonl")},
        )
        runs[size] = splink_er.run(d, quiet=True)
    a0, a1 = (r.decisions.sort_values(PAIR_KEY).reset_index(drop=True) for r in (runs[0], runs[200]))
    pd.testing.assert_frame_equal(a0, a1)
    audit = runs[200].run["audit"]
    assert audit["pairs"] >= 150 and runs[200].run["judge"]["pairs_by_reason"].get("audit", 0) > 0
    truth = runs[200].metrics
    assert audit["precision"]["ci95"][0] <= truth["precision"] <= audit["precision"]["ci95"][1]
    assert runs[0].run["audit"] == {}


@pytest.mark.e2e
def test_report_shows_the_audit(tmp_path, demo_dict):
    d = dict(
        demo_dict,
        output_dir=str(tmp_path / "out"),
        audit={"size": 150},
        judge={"kind": "truth", "max_pairs": 200},
        labels={"path": str(tmp_path / "l.jsonl")},
    )
    page = (splink_er.run(d, quiet=True).output_dir / "report.html").read_text()
    section = page[page.index('id="accuracy"') : page.index('id="model"')]
    assert "Estimated from the audit sample" in section and "<svg" in section


def test_allocation_favours_large_strata_but_keeps_the_small_ones():
    from splink_er.audit import allocate

    plan = allocate(
        500,
        {
            "accepted_sure": 18000,
            "accepted_other": 400,
            "rejected_band": 250,
            "rejected_low": 10,
            "rejected_sure": 56000,
        },
    )
    assert plan["rejected_sure"] > plan["accepted_sure"] > plan["accepted_other"] >= 20
    assert plan["rejected_low"] == 10  # a stratum smaller than its share is taken whole


def _population(rng, n_acc=1000, n_rej=10000):
    """Accepted pairs the model calls 0.95 (90% true: it is too sure); rejected pairs mostly near 0 with a few at
    0.4, true at exactly those rates."""
    q_acc = np.full(n_acc, 0.95)
    y_acc = rng.random(n_acc) < 0.90
    q_rej = np.where(np.arange(n_rej) < 200, 0.4, 0.001)
    y_rej = rng.random(n_rej) < q_rej
    return (q_acc, y_acc), (q_rej, y_rej)


def _assisted_frame(rng, pop, n=150) -> pd.DataFrame:
    rows = []
    for h, final, (q, y) in (("acc", True, pop[0]), ("rej", False, pop[1])):
        take = rng.choice(len(q), n, replace=False)
        for i in take:
            rows.append(
                {
                    "source_dataset_l": "a",
                    "unique_id_l": f"{h}{i}",
                    "source_dataset_r": "a",
                    "unique_id_r": f"{h}{i}x",
                    "stratum": h,
                    "stratum_size": len(q),
                    "final_match": final,
                    "match": bool(y[i]),
                    "expected": q[i],
                    "stratum_expected": q.sum(),
                    "blocked": False,
                }
            )
    return pd.DataFrame(rows)


def test_model_assisted_estimate_corrects_an_overconfident_model_and_covers_the_truth():
    rng = np.random.default_rng(7)
    pop = _population(rng)
    tp, fp, fn = pop[0][1].sum(), (~pop[0][1]).sum(), pop[1][1].sum()
    true_f1 = 2 * tp / (2 * tp + fp + fn)
    inside, widths, design_widths = 0, [], []
    for _ in range(60):
        est = estimate(_assisted_frame(rng, pop), reps=400)
        lo, hi = est["f1"]["ci95"]
        inside += lo <= true_f1 <= hi
        widths.append(hi - lo)
        design_widths.append(est["design_only"]["f1"]["ci95"][1] - est["design_only"]["f1"]["ci95"][0])
        assert est["method"].startswith("model-assisted")
    assert inside >= 52  # 95% nominal, although the model says 0.95 where the truth is 0.90
    assert np.mean(widths) < 0.8 * np.mean(design_widths)  # the model's probabilities narrow the interval


def test_a_vast_stratum_without_a_sampled_match_is_not_claimed_known():
    """1M rejects the run puts at p = 0.0002 (200 expected misses); 100 audited, none a match. Without the floor the
    stratum would look known exactly; with it the interval keeps the run's own doubt."""
    rows = []
    for h, size, final, n, q in (("acc", 5000, True, 100, 0.99), ("rej", 1_000_000, False, 100, 0.0002)):
        for i in range(n):
            rows.append(
                {
                    "source_dataset_l": "a",
                    "unique_id_l": f"{h}{i}",
                    "source_dataset_r": "a",
                    "unique_id_r": f"{h}{i}x",
                    "stratum": h,
                    "stratum_size": size,
                    "final_match": final,
                    "match": final,
                    "expected": q,
                    "stratum_expected": q * size,
                    "stratum_variance": q * (1 - q),
                    "blocked": False,
                }
            )
    frame = pd.DataFrame(rows)
    floored = estimate(frame, reps=1000)
    bare = estimate(frame.assign(stratum_variance=0.0), reps=1000)
    # The sample saw no miss, so the point estimate corrects the expected 200 down to 0 ...
    assert floored["estimated_pairs"]["false_negatives"] == bare["estimated_pairs"]["false_negatives"] == 0
    # ... but only the floored interval still admits the ~200 misses the run expected (recall ~0.96).
    assert floored["recall"]["ci95"][0] < 0.97 and bare["recall"]["ci95"][0] > 0.99
