import json
import subprocess
import sys

import pandas as pd
import pytest

import splink_er
from splink_er import TruthJudge
from splink_er.pairs import PAIR_KEY, pair_keys
from splink_er.sources import column_lookup


class RecordingJudge(TruthJudge):
    """The simulated truth judge, remembering every pair it was asked about."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = []

    async def judge_batch(self, pairs):
        self.asked += [p.key for p in pairs]
        return await super().judge_batch(pairs)


def make_truth(session):
    return column_lookup(session.con, session.loaded, session.settings.truth_column)


@pytest.mark.e2e
def test_demo_end_to_end(demo_dict, tmp_path):
    r = splink_er.run(demo_dict, quiet=True)
    # The same job without a judge: the judge's answers must add F1 (0.862 without, 0.938 with, measured).
    no_judge = splink_er.run(
        demo_dict
        | {
            "judge": {"kind": "none"},
            "output_dir": str(tmp_path / "none"),
            "labels": {"path": str(tmp_path / "none.jsonl")},
        },
        quiet=True,
    )
    assert r.metrics["f1"] >= no_judge.metrics["f1"] + 0.05, (r.metrics, no_judge.metrics)
    d = r.decisions
    assert list(d.columns[:4]) == PAIR_KEY
    assert set(d.decided_by) <= {"model_accept", "model_reject", "gate", "judge", "human", "needs_review"}
    assert r.run["judge"]["simulated"] and r.run["judge"]["pairs_judged"] <= demo_dict["judge"]["max_pairs"]
    assert r.metrics["f1"] > 0.85 and r.metrics["precision"] > 0.98
    assert r.clusters["unique_id"].nunique() == 1000  # every record gets an entity
    for f in ("decisions.parquet", "clusters.parquet", "run.json", "model.json", "labels_snapshot.jsonl"):
        assert (r.output_dir / f).exists()
    run = json.loads((r.output_dir / "run.json").read_text())
    assert run["rounds"][0]["sampled"] > 0 and run["settings_hash"] and run["input_hashes"]["fake_1000"]


@pytest.mark.e2e
def test_febrl4_truth_judge(febrl4_overrides):
    from conftest import REPO

    job = splink_er.prepare(
        REPO / "settings/febrl4.yaml",
        overrides=febrl4_overrides,
        quiet=True,
        judge=lambda session: RecordingJudge(make_truth(session), "entity"),
    )
    r = job.run()
    assert r.metrics["f1"] >= 0.995
    assert r.run["judge"]["pairs_judged"] <= 300
    # The judge saw only sampled, band and conflict pairs.
    labels = job.store.read_all()
    assert set(labels["reason"]) <= {"sample", "band", "conflict"}
    assert sorted(pair_keys(labels)) == sorted(job.judge.asked)
    sampled = set(pair_keys(job.designs.frame))
    assert {k for k, why in zip(pair_keys(labels), labels["reason"]) if why == "sample"} <= sampled


KILLER = """
import os, sys, splink_er
from splink_er import TruthJudge
from splink_er.sources import column_lookup
settings, out, labels = sys.argv[1:4]
class KillAfterTwoBatches(TruthJudge):
    calls = 0
    async def judge_batch(self, pairs):
        KillAfterTwoBatches.calls += 1
        if KillAfterTwoBatches.calls > 2:
            os._exit(9)   # killed mid-judging, like SIGKILL: no cleanup runs
        return await super().judge_batch(pairs)
job = splink_er.prepare(settings, overrides=[f"output_dir={out}", f"labels.path={labels}", "judge.concurrency=1"],
                        quiet=True, judge=lambda s: KillAfterTwoBatches(column_lookup(s.con, s.loaded, "cluster"), "cluster"))
job.run()
"""


@pytest.mark.e2e
def test_killed_run_loses_nothing_and_reasks_nothing(tmp_path):
    settings = str(splink_er.demo_settings_path())
    killed = subprocess.run([sys.executable, "-c", KILLER, settings, str(tmp_path / "k"), str(tmp_path / "k.jsonl")])
    assert killed.returncode == 9
    stored = splink_er.LabelStore(tmp_path / "k.jsonl").read_all()
    assert len(stored) == 40  # two batches of 20 were answered before the kill, and both are kept
    before = set(pair_keys(stored))

    o = ["judge.concurrency=1"]
    job = splink_er.prepare(
        settings,
        overrides=o + [f"output_dir={tmp_path / 'k'}", f"labels.path={tmp_path / 'k.jsonl'}"],
        quiet=True,
        judge=lambda session: RecordingJudge(make_truth(session), "cluster"),
    )
    resumed = job.run()
    assert not before & set(job.judge.asked)  # nothing re-asked

    clean = splink_er.run(
        settings, overrides=o + [f"output_dir={tmp_path / 'c'}", f"labels.path={tmp_path / 'c.jsonl'}"], quiet=True
    )
    cols = PAIR_KEY + ["final_match", "decided_by"]
    a = resumed.decisions[cols].sort_values(PAIR_KEY).reset_index(drop=True)
    b = clean.decisions[cols].sort_values(PAIR_KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.e2e
def test_retrain_applies_human_labels(demo_dict):
    first = splink_er.run(demo_dict, quiet=True)
    d = first.decisions
    accepted = d[d.decided_by == "model_accept"].iloc[0]
    store = splink_er.LabelStore(demo_dict["labels"]["path"])
    store.append([splink_er.make_label(tuple(accepted[PAIR_KEY]), False, 1.0, "human", "human", reason="human")])
    again = splink_er.retrain(demo_dict, quiet=True)
    row = again.decisions.set_index(PAIR_KEY).loc[tuple(accepted[PAIR_KEY])]
    assert row.decided_by == "human" and not row.final_match
    assert len(again.decisions) == len(d)
    # No re-asking: every band pair answered before is reused.
    assert again.run["judge"]["pairs_judged"] <= again.run["rounds"][0]["band"]


@pytest.mark.e2e
def test_the_truth_judge_answers_not_a_match_for_a_record_the_truth_does_not_place(demo_dict, tmp_path):
    """A record without a truth value is an entity of its own (SIMULATED judge): its pairs are answered "not a
    match", none waits for review, and pairs_judged counts answers only."""
    rows = pd.read_csv(demo_dict["sources"][0]["path"], dtype=str)
    unplaced = rows.sample(frac=0.15, random_state=3).index
    rows.loc[unplaced, "cluster"] = None
    rows.to_csv(tmp_path / "partly_placed.csv", index=False)
    demo_dict["sources"][0]["path"] = str(tmp_path / "partly_placed.csv")
    r = splink_er.run(demo_dict, quiet=True)
    ids = set(rows.loc[unplaced, "unique_id"])
    judged = r.decisions[r.decisions.decided_by.str.startswith("judge")]
    theirs = judged[judged.unique_id_l.isin(ids) | judged.unique_id_r.isin(ids)]
    assert len(theirs) >= 5 and not theirs.final_match.any() and not theirs.needs_review.any()
    from splink_er.decision_log import lines_by_run

    asked = lines_by_run(r.output_dir / "decision_log.jsonl", ("judge",))[r.run["run_id"]]
    assert len(asked) == r.run["judge"]["pairs_sent"] and all(x["match"] is not None for x in asked)
    assert r.run["judge"]["pairs_judged"] == len(splink_er.LabelStore(demo_dict["labels"]["path"]).read_all())


@pytest.mark.e2e
def test_no_judge_sends_band_to_review(demo_dict):
    demo_dict["judge"] = {"kind": "none"}
    r = splink_er.run(demo_dict, quiet=True)
    assert r.run["judge"]["pairs_judged"] == 0
    d = r.decisions
    band = d[(d.match_probability > 0.10) & (d.match_probability < 0.95)]
    assert len(band) and (band.decided_by == "needs_review").all() and band.needs_review.all()


@pytest.mark.e2e
def test_parquet_materialisation_and_memory_limit_give_the_same_decisions(tmp_path, demo_dict):
    """engine settings change where Splink keeps its tables, not what it decides; scratch files are removed."""
    runs = []
    for name, engine in [("table", {}), ("parquet", {"materialisation": "parquet", "memory_limit": "500MB"})]:
        d = dict(
            demo_dict,
            engine=engine,
            output_dir=str(tmp_path / name),
            judge={"kind": "truth", "max_pairs": 100},
            labels={"path": str(tmp_path / f"{name}.jsonl")},
        )
        result = splink_er.run(d, quiet=True)
        runs.append(
            pd.read_parquet(result.output_dir / "decisions.parquet").sort_values(PAIR_KEY).reset_index(drop=True)
        )
        assert not (tmp_path / name / ".splink_tmp").exists()
    pd.testing.assert_frame_equal(runs[0], runs[1])


@pytest.mark.e2e
def test_model_rejects_as_counts_change_no_decision_and_diff_reads_them_as_rejects(tmp_path, demo_dict):
    """outputs.model_rejects: counts leaves model rejects out of decisions.parquet only: the counts, matches,
    entities and metrics are those of a run that writes every pair, and `decisions diff` sees no change."""
    from splink_er.decision_log import diff
    from splink_er.explain import decision_record

    runs = {}
    for mode in ("rows", "counts"):
        d = dict(
            demo_dict,
            outputs={"model_rejects": mode},
            output_dir=str(tmp_path / mode),
            judge={"kind": "truth", "max_pairs": 100},
            labels={"path": str(tmp_path / f"{mode}.jsonl")},
        )
        runs[mode] = splink_er.run(d, quiet=True)
    rows, counts = runs["rows"], runs["counts"]
    assert rows.run["model_rejects_written"] and not counts.run["model_rejects_written"]
    n_rejects = rows.run["decided_by"]["model_reject"]
    assert n_rejects > 1000
    assert len(rows.decisions) == rows.run["blocked_pairs"]
    assert len(counts.decisions) == counts.run["blocked_pairs"] - n_rejects
    assert "model_reject" not in set(counts.decisions["decided_by"])
    kept = rows.decisions[rows.decisions["decided_by"] != "model_reject"].sort_values(PAIR_KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, counts.decisions.sort_values(PAIR_KEY).reset_index(drop=True))
    for key in ("decided_by", "final_matches", "entities", "metrics", "weight_histogram"):
        assert rows.run[key] == counts.run[key], key
    assert sum(h["pairs"] for h in counts.run["weight_histogram"]) == counts.run["blocked_pairs"]
    pd.testing.assert_frame_equal(rows.matches, counts.matches)
    assert diff(rows.output_dir / "decision_log.jsonl", counts.output_dir / "decision_log.jsonl").empty
    # explain says what happened to a pair that is not in the file
    reject = tuple(rows.decisions[rows.decisions["decided_by"] == "model_reject"][PAIR_KEY].iloc[0])
    job = splink_er.prepare(
        dict(demo_dict, outputs={"model_rejects": "counts"}, output_dir=str(tmp_path / "counts")), quiet=True
    )
    assert decision_record(job, reject)["decided_by"].startswith("model_reject")


@pytest.mark.e2e
def test_model_rejects_auto_counts_above_the_limit(tmp_path, demo_dict):
    d = dict(demo_dict, outputs={"model_rejects": "auto", "auto_rows_limit": 1000}, judge={"kind": "none"})
    r = splink_er.run(d, quiet=True)
    assert r.run["blocked_pairs"] > 1000 and not r.run["model_rejects_written"]
    assert len(r.decisions) == r.run["blocked_pairs"] - r.run["decided_by"]["model_reject"]


@pytest.mark.e2e
def test_accept_rules_decide_for_free_and_are_never_sampled(demo_dict):
    """An exact key accepts before any judge (decided_by rule, confidence 1.0); gated and accepted pairs are left
    out of sampling, so the judge is never paid for a decided pair."""
    demo_dict["routing"] = {
        "accept_rules": [{"name": "same_email", "sql": "email_l = email_r"}],
        "gates": [
            {
                "name": "far_dob",
                "sql": "abs(year(try_strptime(dob_l, '%Y-%m-%d')) - year(try_strptime(dob_r, '%Y-%m-%d'))) > 30",
            }
        ],
    }
    demo_dict["sampling"] = {"budget_per_round": 300, "rounds": 1}
    job = splink_er.prepare(demo_dict, quiet=True)
    r = job.run()
    d = r.decisions
    rule = d[d.decided_by == "rule"]
    assert len(rule) >= 50 and rule.final_match.all() and (rule.judge_confidence == 1.0).all()
    assert set(rule.judge_reasoning) == {"rule: same_email"}
    decided = job.con.execute(
        f"SELECT {', '.join(PAIR_KEY)} FROM scores WHERE email_l = email_r OR "
        f"coalesce({demo_dict['routing']['gates'][0]['sql']}, false)"
    ).df()
    assert set(pair_keys(decided)) >= set(pair_keys(rule)) and len(decided) > len(rule)  # gates too
    sampled = set(pair_keys(job.designs.frame))
    assert len(sampled) >= 250 and not (sampled & set(pair_keys(decided)))
    asked = set(pair_keys(job.store.read_all()))
    assert not (asked & set(pair_keys(decided)))


@pytest.mark.e2e
def test_unsure_judge_answers_wait_for_review_and_do_not_train(demo_dict):
    """A SIMULATED judge with 40% of answers flipped reports confidence 0.6, below the 0.70 floor: every answer
    is needs_review (final_match the judge's answer, the reasoning says why) and no answer trains the model."""
    demo_dict["judge"] = {"kind": "truth", "max_pairs": 300, "error_rate": 0.4}
    r = splink_er.run(demo_dict, quiet=True)
    d = r.decisions
    answered = d[d.judge_match.notna()]
    assert len(answered) >= 100 and (answered.decided_by == "needs_review").all() and answered.needs_review.all()
    assert answered.judge_reasoning.str.startswith("judge confidence 0.6 below routing.min_judge_confidence").all()
    assert (answered.final_match == answered.judge_match.astype(bool)).all()
    assert not any(t["used_labels"] for t in r.run["training"])
    demo_dict["routing"] = {"min_judge_confidence": 0.5}  # a lower floor: the same answers are final and train
    demo_dict["output_dir"] += "_floor"
    r2 = splink_er.run(demo_dict, quiet=True)
    assert (r2.decisions.decided_by == "judge").sum() >= 100 and any(t["used_labels"] for t in r2.run["training"])
