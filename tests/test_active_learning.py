"""Active learning: learned blocking, query strategies, logistic training, the round structure and stopping rule."""

import copy
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

import splink_er
from splink_er import load_settings
from splink_er.blocking import AddedPairs, Candidate, proposed_pairs
from splink_er.judging import Answers
from splink_er.model import make_linker
from splink_er.normalize.names import phonetic_code
from splink_er.pairs import PAIR_KEY, pair_keys
from splink_er.sampling import draw_sample
from splink_er.training import weight_shift_sql


def _narrow(demo_dict, tmp_path, **extra):
    """The demo with only two blocking rules (blocking recall ~0.6) and a few derived keys to learn rules from."""
    d = copy.deepcopy(demo_dict)
    d["blocking_rules"] = [["first_name"], ["surname"]]
    d["sources"][0]["derive"] = {"yob": "left(dob, 4)", "email_user": "split_part(email, '@', 1)"}
    d["sources"][0]["prepare"] = [{"column": "surname", "kind": "phonetic"}]
    for k, v in extra.items():
        d.setdefault(k.split(".")[0], {})[k.split(".")[1]] = v
    return d


def test_phonetic_codes_group_misspellings():
    assert phonetic_code("Smith") == phonetic_code("Smyth") == "SM0"
    assert phonetic_code("Raúl") == phonetic_code("Raul")
    assert phonetic_code("Tylr") == phonetic_code("Tyler")
    assert phonetic_code("") is None and phonetic_code("123") is None
    assert phonetic_code("Smith", "soundex") == "S530"


@pytest.mark.e2e
def test_proposed_pairs_is_the_exact_pair_count(demo_dict, tmp_path):
    job = splink_er.prepare(_narrow(demo_dict, tmp_path), quiet=True)
    recs = job.con.execute("SELECT unique_id, city, yob FROM input_fake_1000").df()
    m = recs.dropna(subset=["city", "yob"]).merge(recs.dropna(subset=["city", "yob"]), on=["city", "yob"])
    brute = int((m.unique_id_x < m.unique_id_y).sum())
    assert proposed_pairs(job.con, job.settings, job.loaded, ["city", "yob"]) == brute


@pytest.mark.e2e
def test_suggested_rules_add_only_new_pairs_within_budget_and_raise_blocking_recall(demo_dict, tmp_path):
    job = splink_er.prepare(_narrow(demo_dict, tmp_path, **{"blocking.max_comparisons": 20000}), quiet=True)
    job.bootstrap()
    job.score()
    before = job.metrics_for_scores("scores", "match_probability >= 0.5")
    (blocked,) = job.con.execute("SELECT count(*) FROM scores").fetchall()[0]
    report = job.suggest_blocking()
    assert "surname_phonetic" in job.loaded.columns["fake_1000"]  # prepared columns are candidates
    assert report["chosen"] and report["added_pairs"] <= 20000 - blocked
    # A candidate's added pairs are exactly its pairs that the current rules do not propose.
    top = next(c for c in report["candidates"] if c["rule"] == report["chosen"][0])
    recs = job.con.execute("SELECT * FROM input_fake_1000").df()
    cols = top["rule"]
    m = recs.dropna(subset=cols).merge(recs.dropna(subset=cols), on=cols)
    m = m[m.unique_id_x < m.unique_id_y]
    old = (m.first_name_x == m.first_name_y) | (m.surname_x == m.surname_y)
    assert top["added_pairs"] == int((~old).sum())
    job.adopt_blocking(report["chosen"])
    after = job.metrics_for_scores("scores", "match_probability >= 0.5")
    assert after["blocking_recall"] > before["blocking_recall"] + 0.1
    assert job.settings.blocking_rules[-len(report["chosen"]) :] == report["chosen"]


def _splink_added(job, rule: list[str]) -> tuple[int, float]:
    """A candidate's added pairs and their expected matches the direct way: a Splink predict of
    `candidate AND NOT current rules` with the job's model."""
    current = " ".join(
        f"AND NOT coalesce(({r['blocking_rule']}), false)" for r in job.model["blocking_rules_to_generate_predictions"]
    )
    scoring = copy.deepcopy(job.model)
    scoring["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": f"{Candidate(rule, 0).sql} {current}", "sql_dialect": "duckdb"}
    ]
    pred = make_linker(job.session.sdfs, scoring).inference.predict()
    n, expected = job.con.execute(
        f"SELECT count(*), coalesce(sum(match_probability), 0) FROM {pred.physical_name}"
    ).fetchall()[0]
    return n, expected


@pytest.mark.e2e
def test_candidate_gains_are_splinks_predict_of_their_added_pairs_exactly_or_from_a_scored_share(demo_dict, tmp_path):
    """Learned blocking scores the union of every candidate's added pairs once. Its counts and sums are those of
    a Splink predict per candidate; with `blocking.max_scored_pairs` below the union, added pairs stay exact and
    expected matches are estimated from the same share of pairs for every candidate."""
    rules = [["dob", "email_user"], ["dob", "yob"], ["city", "dob"], ["email", "yob"], ["city", "email_user"]]
    counted = {}
    for cap in (None, 300):
        extra = {"blocking.max_scored_pairs": cap} if cap else {}
        job = splink_er.prepare(_narrow(demo_dict, tmp_path, **extra), quiet=True)
        job.bootstrap()
        job.score()
        cands = [Candidate(r, 0) for r in rules]
        added = AddedPairs(job.con, job.session.sdfs, job.model, cands, "scores", job.settings)
        added.count(cands)
        counted[cap] = (added.share, cands)
    share, exact = counted[None]
    assert share == 1.0
    for c in exact:
        n, expected = _splink_added(job, c.rule)
        assert c.added_pairs == n and c.expected_matches == pytest.approx(expected, abs=1e-6)
    share, estimates = counted[300]
    assert 0.1 < share < 1
    for c, e in zip(exact, estimates):
        assert e.added_pairs == c.added_pairs
        assert e.expected_matches == pytest.approx(c.expected_matches, rel=0.35)


@pytest.mark.e2e
def test_weight_shift_sql_is_the_difference_splink_predicts(demo_dict):
    job = splink_er.prepare(demo_dict, quiet=True)
    job.bootstrap()
    job.score()
    after = copy.deepcopy(job.bootstrap_model)
    after["probability_two_random_records_match"] *= 3
    after["comparisons"][0]["comparison_levels"][1]["m_probability"] *= 2.5
    after["comparisons"][2]["comparison_levels"][-1]["m_probability"] /= 4
    pred = make_linker(job.session.sdfs, after).inference.predict()
    diff = job.con.execute(f"""
        WITH a AS (SELECT unique_id_l, unique_id_r, match_weight,
                          {weight_shift_sql(job.bootstrap_model, after)} AS shift FROM scores)
        SELECT max(abs((b.match_weight - a.match_weight) - a.shift))
        FROM a JOIN {pred.physical_name} b USING (unique_id_l, unique_id_r)""").fetchall()[0][0]
    assert diff < 1e-9


def _scores_with_patterns(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 8, n)
    return pd.DataFrame(
        {
            "source_dataset_l": "a",
            "unique_id_l": [f"{i:05d}" for i in range(n)],
            "source_dataset_r": "a",
            "unique_id_r": [f"{i + n:05d}" for i in range(n)],
            "match_weight": w,
            "match_probability": 1 / (1 + 2**-w),
            "gamma_a": rng.integers(0, 4, n),
            "gamma_b": rng.integers(0, 3, n),
        }
    )


def _scores_table(scores: pd.DataFrame):
    """A DuckDB connection with `scores` as table `scores`."""
    con = duckdb.connect()
    con.register("scores_df", scores)
    con.execute("CREATE TABLE scores AS SELECT * FROM scores_df")
    return con


@pytest.mark.parametrize("strategy", ["uncertainty", "diversity", "disagreement"])
def test_targeted_strategies_take_their_set_whole_and_keep_exact_probabilities(demo_dict, strategy):
    s = load_settings(demo_dict | {"sampling": {"budget_per_round": 200, "strategy": strategy}})
    scores = _scores_with_patterns()
    con = _scores_table(scores)
    shift = "CASE gamma_a WHEN 3 THEN 4.0 ELSE 0 END" if strategy == "disagreement" else None
    sample = draw_sample(con, "scores", s, 1, shift)
    target = sample[sample.drawn_by.str.endswith(strategy)]
    assert len(target) == 50 and (target.inclusion_probability == 1.0).all()  # the ambiguous share, 25%
    rest = sample[~sample.drawn_by.str.endswith(strategy)]
    assert (rest.inclusion_probability < 1).all() and len(rest) > 100
    chosen = scores.merge(target[PAIR_KEY], on=PAIR_KEY)
    if strategy == "uncertainty":  # exactly the 50 pairs nearest p = 0.5
        assert chosen.match_weight.abs().max() <= scores.match_weight.abs().nsmallest(50).max()
    if strategy == "diversity":  # round robin over the 12 comparison-vector patterns: 4 or 5 pairs each
        assert (
            set(chosen.groupby(["gamma_a", "gamma_b"]).size()) <= {4, 5}
            and len(chosen.groupby(["gamma_a", "gamma_b"])) == 12
        )
    if strategy == "disagreement":  # the pairs the shift moved most: all have gamma_a = 3
        assert (chosen.gamma_a == 3).all()
    # Re-drawing gives the same sample (seeded), so a resumed run asks the same pairs.
    assert draw_sample(con, "scores", s, 1, shift).equals(sample)


def test_diversity_covers_every_pattern_before_any_twice():
    settings = {
        "name": "t",
        "link_type": "dedupe_only",
        "sources": [{"name": "a", "id_column": "id"}],
        "comparisons": [{"kind": "ExactMatch", "column": "x"}],
        "blocking_rules": [["x"]],
        "sampling": {
            "budget_per_round": 100,
            "strategy": "diversity",
            "strata": {"random": 0.0, "high": 0.0, "ambiguous": 1.0, "low": 0.0},
        },
    }
    s = load_settings(settings)
    scores = _scores_with_patterns()
    con = _scores_table(scores)
    chosen = scores.merge(draw_sample(con, "scores", s, 1)[PAIR_KEY], on=PAIR_KEY)
    per_pattern = chosen.groupby(["gamma_a", "gamma_b"]).size()
    assert len(chosen) == 100 and len(per_pattern) == 12 and set(per_pattern) <= {8, 9}


def _truth_labels(job, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` scored pairs of the demo the model is unsure of (a fixed pseudo-random pick), and their truth labels."""
    truth = dict(job.con.execute("SELECT unique_id, cluster FROM input_fake_1000").fetchall())
    labelled = job.con.execute(
        "SELECT * FROM scores WHERE match_probability BETWEEN 0.01 AND 0.99 "
        f"ORDER BY hash(unique_id_l || unique_id_r) LIMIT {n}"
    ).df()
    labels = labelled[PAIR_KEY].assign(
        match=[truth[a] == truth[b] for a, b in zip(labelled.unique_id_l, labelled.unique_id_r)]
    )
    return labelled, labels


@pytest.mark.e2e
def test_logistic_training_is_written_back_exactly_and_fits_the_labels(demo_dict, tmp_path):
    d = copy.deepcopy(demo_dict)
    d["training"] = {"method": "logistic", "weighting": "none"}
    job = splink_er.prepare(d, quiet=True)
    job.bootstrap()
    job.score()
    labelled, labels = _truth_labels(job, 400)
    job.judging.answers = Answers(
        {k: {"match": m} | dict(zip(PAIR_KEY, k)) for k, m in zip(pair_keys(labels), labels["match"])}
    )
    report = job.train()
    assert report["used_labels"] and "logistic" in report["reason"]
    # Splink's own predict with the trained model gives the fitted probabilities: log loss on the labels drops.
    job.score()
    p_after = labels.merge(job.con.execute("SELECT * FROM scores").df(), on=PAIR_KEY)

    def logloss(p, y):
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    y = p_after["match"].to_numpy(float)
    before = labels.merge(labelled, on=PAIR_KEY)["match_probability"].to_numpy()
    assert logloss(p_after["match_probability"].to_numpy(), y) < logloss(before, y) - 0.02
    # At the optimum the intercept's gradient is zero: predicted matches equal labelled matches.
    assert p_after["match_probability"].sum() == pytest.approx(y.sum(), rel=0.02)
    assert math.isclose(job.model["probability_two_random_records_match"], report["prior"], rel_tol=1e-9)
    # model.json's form: m values are probabilities and Splink predicts the same weight for every pair.
    from splink_er.model_file import null_shares, probability_form

    assert any(abs(sum(m) - 1) > 0.01 for m in _m_sums(job.model))  # training moved m off a distribution
    file_form = probability_form(job.model, null_shares(job.con, list(job.session.loaded.tables.values()), job.model))
    assert all(abs(sum(m) - 1) < 1e-9 and max(m) <= 1 for m in _m_sums(file_form))

    def weights(model):
        df = make_linker(job.session.sdfs, model).inference.predict().as_pandas_dataframe()
        return df.set_index(["unique_id_l", "unique_id_r"])["match_weight"].sort_index()

    in_memory, from_file = weights(job.model), weights(file_form)
    assert in_memory.index.equals(from_file.index) and len(in_memory) > 1000
    assert (in_memory - from_file).abs().max() < 1e-9


def _m_sums(model):
    return [
        [lv["m_probability"] for lv in c["comparison_levels"] if lv.get("m_probability") is not None]
        for c in model["comparisons"]
    ]


@pytest.mark.e2e
def test_rounds_judge_at_most_band_per_round_then_train_on_the_last_answers(demo_dict):
    d = copy.deepcopy(demo_dict)
    d["loop"] = {"max_rounds": 4, "band_per_round": 60}
    d["judge"]["max_pairs"] = 300
    r = splink_er.run(d, quiet=True)
    rounds = r.run["rounds"]
    assert all(x["band_asked"] <= 60 for x in rounds)
    assert rounds[-1].get("training_only") and rounds[-1]["new_labels"] == 0
    assert rounds[-1]["training"]["used_labels"] and rounds[-1]["labels_used"] == rounds[-2]["labels_used"]
    assert all(0 <= x["estimated"]["f1"] <= 1 for x in rounds)
    for x in rounds:  # the routes after the band's answers count them (not the counts from before the judge)
        answered = [x[k].get("judge", 0) + x[k].get("unsure", 0) for k in ("routes_before_judge", "routes")]
        assert answered[1] == answered[0] + x["band_asked"] + x["band_reused"]
    assert any(x["band_asked"] for x in rounds)


@pytest.mark.e2e
def test_stopping_rule_stops_when_the_expected_gain_is_small(demo_dict):
    d = copy.deepcopy(demo_dict)
    d["loop"] = {"max_rounds": 6, "band_per_round": 40, "min_f1_gain": 0.5}
    r = splink_er.run(d, quiet=True)
    judging = [x for x in r.run["rounds"] if not x.get("training_only")]
    assert len(judging) == 1 and "loop.min_f1_gain" in judging[0]["stopped"]
    assert judging[0]["estimated"]["next_round_f1_gain"] < 0.5


@pytest.mark.e2e
def test_majority_of_three_asks_outvotes_independent_errors(demo_dict):
    from splink_er.judges.base import PairContext, run_judge
    from splink_er.judges.factory import make_judge

    d = copy.deepcopy(demo_dict)
    d["judge"] |= {"error_rate": 0.2, "repeats": 3}
    job = splink_er.prepare(d, quiet=True)
    pairs = job.con.execute(
        "SELECT unique_id_l, unique_id_r FROM (SELECT a.unique_id AS unique_id_l, "
        "b.unique_id AS unique_id_r FROM input_fake_1000 a JOIN input_fake_1000 b "
        "ON a.cluster = b.cluster AND a.unique_id < b.unique_id) LIMIT 1000"
    ).fetchall()
    contexts = [PairContext(("fake_1000", left, "fake_1000", right), {}, {}, "band") for left, right in pairs]
    single, _ = make_judge(
        job.settings.model_copy(update={"judge": job.settings.judge.model_copy(update={"repeats": 1})}),
        job.con,
        job.loaded,
    )
    once = run_judge(single, contexts, 50, 4, lambda _: None)
    majority = run_judge(job.judge, contexts, 50, 4, lambda _: None)
    wrong_once = sum(not d.match for d in once) / len(once)  # every pair is a true match
    wrong_majority = sum(not d.match for d in majority) / len(majority)
    assert 0.15 < wrong_once < 0.25
    assert wrong_majority < 0.6 * wrong_once  # 3 * 0.2^2 * 0.8 + 0.2^3 = 0.104 in theory
    assert job.judge.usage.pairs == len(contexts) and job.judge.usage.calls == 3 * single.usage.calls
    split = [d for d in majority if len({v["match"] for v in d.votes}) > 1]
    assert job.judge.usage.split_votes == len(split) > 0
    assert all("of 3 asks agreed" in d.reasoning for d in split)
    assert job.judge.method["kind"] == "majority" and job.judge.simulated


def test_robust_fit_bounds_what_wrong_answers_on_sure_pairs_do():
    from splink_er.training import _fit

    rng = np.random.default_rng(3)
    n = 2000
    level = rng.integers(0, 2, n)  # one comparison with two levels; level 1 is worth +2 nats over the offset
    # A tenth of the level-1 pairs the model is sure of (an exact e-mail, say): offset +12.
    offset = rng.normal(0, 1, n) + np.where((level == 1) & (rng.random(n) < 0.2), 12.0, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-(offset + 2.0 * level)))).astype(float)
    sure = offset > 6
    y_noisy = np.where(sure & (rng.random(n) < 0.3), 1 - y, y)  # wrong answers on sure pairs
    x = np.column_stack([level == 0, level == 1]).astype(float)
    w = np.ones(n)

    def effect(labels, noise):  # the fitted worth of level 1 against level 0
        b = _fit(offset, x, labels, w, 1.0, noise=noise)
        return b[2] - b[1]

    moved_plain = abs(effect(y_noisy, 0.0) - effect(y, 0.0))
    moved_robust = abs(effect(y_noisy, 0.05) - effect(y, 0.05))
    assert moved_plain > 0.3 and moved_robust < 0.5 * moved_plain


@pytest.mark.e2e
def test_a_run_adopts_learned_rules_and_retrain_keeps_them(demo_dict, tmp_path):
    d = _narrow(demo_dict, tmp_path, **{"blocking.adopt": True, "blocking.max_comparisons": 20000})
    first = splink_er.run(d, quiet=True)
    chosen = first.run["blocking"]["chosen"]
    assert chosen and first.run["settings"]["blocking_rules"][2:] == chosen
    assert first.run["rounds"][0]["blocking_adopted"] == chosen
    assert first.metrics["blocking_recall"] > 0.75  # the two name rules alone reach ~0.6
    again = splink_er.retrain(d, quiet=True)
    assert again.run["blocking"]["chosen"] == chosen and again.run["blocked_pairs"] == first.run["blocked_pairs"]
    assert again.run["settings"]["blocking_rules"][2:] == chosen


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["logistic", "m_from_labels"])
def test_training_on_the_routing_copy_gives_the_model_the_scores_give(demo_dict, method):
    """Once the scores are routed, training reads the labelled pairs' scores off the routing copy (found by the
    key's hash, Inference.scores_of) instead of joining every scored pair: the same rows, so the same model."""
    from splink_er.training import train_from_labels, train_logistic

    cut = {}
    for copy_kind in ("view", "table"):  # engine.routing_scores: a view has no key hashes to cut from
        d = copy.deepcopy(demo_dict)
        d["engine"] = {"routing_scores": copy_kind}
        job = splink_er.prepare(d, quiet=True)
        job.bootstrap()
        job.score()
        labels = _truth_labels(job, 300)[1]
        assert job.inference.scores_of(labels).name == "scores"  # not routed yet: no copy
        job.route()
        cut[copy_kind] = job.inference.scores_of(labels)
    assert cut["view"].name == "scores"
    table = cut["table"]
    assert table.name != "scores" and table.count() == len(labels)
    s, designs = job.settings, job.designs.frame
    if method == "logistic":
        models = [
            train_logistic(job.con, name, labels, designs, job.bootstrap_model, job.model, s)[0]
            for name in ("scores", table.name)
        ]
    else:
        n = job.session.n_possible
        models = [
            train_from_labels(job.con, "scores", labels, designs, job.bootstrap_model, s, n, name)[0]
            for name in (None, table.name)
        ]
    assert models[0] == models[1] and models[0] != job.bootstrap_model


@pytest.mark.e2e
def test_metrics_count_the_true_blocked_pairs_again_when_the_blocking_grows(demo_dict, tmp_path):
    """The true pairs among the blocked ones are counted once per pair set: adopting rules makes a new one."""
    job = splink_er.prepare(_narrow(demo_dict, tmp_path, **{"blocking.max_comparisons": 20000}), quiet=True)
    job.bootstrap()
    job.score()
    job.route()
    job.inference.decide(1)
    before = job.metrics()
    report = job.suggest_blocking()
    assert report["chosen"]
    job.adopt_blocking(report["chosen"])
    job.route()
    job.inference.decide(1)
    after = job.metrics()
    assert after == job.evaluation.metrics_for_scores(job.inference.decisions, "final_match")  # counted afresh
    assert after["blocking_recall"] > before["blocking_recall"] + 0.1
