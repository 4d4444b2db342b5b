"""Compare once, re-weigh after training (engine/reweigh.py): the re-weighed prediction is Splink's own predict
with the same model, row by row and column by column, on every preset; and a run that re-weighs decides every
pair as a run that predicts again. Labels come from the SIMULATED truth judge."""

import copy

import pytest
from conftest import REPO, rows_differing

import splink_er
from splink_er.decision_log import compare_decisions
from splink_er.engine.reweigh import vectors_key
from splink_er.model import splink_settings_dict
from splink_er.model_file import null_shares, probability_form
from splink_er.settings import load_settings

PRESETS = sorted(p.stem for p in (REPO / "settings").glob("*.yaml"))
BIG = {"fake_20000", "historical_50k"}


def _trained_job(name: str, tmp_path, extra=()):
    """A preset (or the demo) after one round of (simulated) judging and training: its scores are a re-weighed
    prediction."""
    job = splink_er.prepare(
        splink_er.demo_settings_path() if name == "demo" else REPO / "settings" / f"{name}.yaml",
        quiet=True,
        overrides=[
            "judge.kind=truth",
            "blocking.adopt=false",
            "sampling.budget_per_round=150",
            f"output_dir={tmp_path}",
            f"labels.path={tmp_path / 'labels.jsonl'}",
            *extra,
        ],
    )
    job.bootstrap()
    job.score()
    job.run_rounds(sample_rounds=1, max_rounds=1)
    return job


@pytest.mark.e2e
@pytest.mark.parametrize("name", [pytest.param(p, marks=pytest.mark.slow) if p in BIG else p for p in PRESETS])
def test_reweighed_prediction_is_splinks_predict_to_the_last_bit(name, tmp_path):
    job = _trained_job(name, tmp_path)
    backend, current = job.session.backend, job.inference._prediction
    assert current.vectors is not None, "training changed the model, so the scores should be re-weighed"
    assert job.model != current.vectors.model
    reference = backend._splink_predict(job.model)  # Splink's own predict, blocking and comparing again
    con = job.con
    columns = [r[0] for r in con.execute(f"DESCRIBE {reference.source_sql}").fetchall()]
    assert [r[0] for r in con.execute(f"DESCRIBE {current.source_sql}").fetchall()] == columns
    assert rows_differing(con, current.source_sql, reference.source_sql) == 0


def _null_levels(model: dict) -> list[bool]:
    return [lv.get("is_null_level", False) for c in model["comparisons"] for lv in c["comparison_levels"]]


@pytest.mark.e2e
def test_reweighing_renumbers_the_levels_of_a_null_level_made_ordinary_and_keeps_term_frequencies(tmp_path):
    """fake_1000's model in its file form (model.json: null levels become ordinary levels, so every gamma of such
    a comparison moves) re-weighs the vectors of the run's own model; its name comparisons carry term-frequency
    adjustments. Both are read from the stored vectors as Splink computes them."""
    job = _trained_job("fake_1000", tmp_path)
    backend, current, con = job.session.backend, job.inference._prediction, job.con
    file_form = probability_form(job.model, null_shares(con, list(job.loaded.tables.values()), job.model))
    assert _null_levels(file_form) != _null_levels(job.model)
    reweighed = backend.predict(file_form, previous=current)
    assert reweighed.vectors is current.vectors
    assert any(r[0].startswith("tf_") for r in con.execute(f"DESCRIBE {reweighed.source_sql}").fetchall())
    reference = backend._splink_predict(file_form)
    assert rows_differing(con, reweighed.source_sql, reference.source_sql) == 0


@pytest.mark.e2e
def test_a_run_that_reweighs_decides_every_pair_as_one_that_predicts_again(tmp_path):
    """The demo with learned blocking (adopted rules change the blocking mid-run: the next prediction is Splink's
    again) and the truth judge, with engine.compare_once on and off: the same decisions, pair by pair."""
    results = {}
    for once in (True, False):
        out = tmp_path / str(once)
        results[once] = splink_er.run(
            splink_er.demo_settings_path(),
            quiet=True,
            overrides=[
                "judge.kind=truth",
                "blocking.adopt=true",
                f"engine.compare_once={str(once).lower()}",
                f"output_dir={out}",
                f"labels.path={out / 'labels.jsonl'}",
            ],
        )
    diff = compare_decisions(results[True].decisions, results[False].decisions)
    assert diff["same_pairs"] and diff["final_match_differs"] == 0 and diff["decided_by_differs"] == 0
    assert diff["max_abs_probability_difference"] == 0.0
    assert results[True].run["judge"]["pairs_judged"] == results[False].run["judge"]["pairs_judged"] > 0
    assert len(results[True].run["rounds"]) > 1


def test_vectors_key_ignores_weights_but_not_blocking_or_comparisons():
    model = splink_settings_dict(load_settings(splink_er.demo_settings_path()))
    trained = copy.deepcopy(model)
    trained["probability_two_random_records_match"] = 0.123
    level = trained["comparisons"][0]["comparison_levels"][0]
    level["m_probability"], level["u_probability"], level["is_null_level"] = 0.3, 0.2, False
    assert vectors_key(trained) == vectors_key(model)
    reblocked = copy.deepcopy(model)
    reblocked["blocking_rules_to_generate_predictions"].append({"blocking_rule": "l.city = r.city"})
    assert vectors_key(reblocked) != vectors_key(model)
    recompared = copy.deepcopy(model)
    recompared["comparisons"][0]["comparison_levels"][1]["sql_condition"] += " AND true"
    assert vectors_key(recompared) != vectors_key(model)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name, learned",
    [("demo", True), ("demo", False), pytest.param("fake_20000", True, marks=pytest.mark.slow)],
    ids=["demo-learned", "demo-by-hand", "fake_20000-learned"],
)
def test_a_grown_blocking_compares_only_the_appended_rules_pairs_and_scores_as_splinks_predict(name, learned, tmp_path):
    """Rules appended to the blocking (by learned blocking after round 1, whose search already knows their pairs;
    or by hand, blocked by Splink): the stored vectors grow by Splink's predict of what the appended rules alone
    propose, and the scores re-weighed from that union are Splink's predict of the grown rules, to the last bit
    (match_key included: each appended rule keeps its place). One documented exception: a column Splink retains
    only because an appended rule reads it is null on the older rules' pairs."""
    if learned:
        room = ["blocking.max_comparisons=40000"] if name == "demo" else []  # the demo's one candidate (city) fits
        job = _trained_job(name, tmp_path, extra=["blocking.adopt=true", *room])
        assert job.blocking_report["chosen"], "the test needs learned blocking to adopt a rule"
    else:
        job = _trained_job(name, tmp_path)
        job.adopt_blocking([["city"], ["dob", "surname"]])
    backend, current, con = job.session.backend, job.inference._prediction, job.con
    old, added = current.vectors.parts
    assert len(job.model["blocking_rules_to_generate_predictions"]) > len(
        old.model["blocking_rules_to_generate_predictions"]
    )
    reference = backend._splink_predict(job.model)
    n_old, n_added, n_all = (
        con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
        for t in (old.source_sql, added.source_sql, reference.source_sql)
    )
    assert 0 < n_added < n_all and n_old + n_added == n_all  # only the appended rules' pairs were compared

    def columns(relation):
        return [r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()]

    assert columns(current.source_sql) == columns(reference.source_sql)
    appended_only = set(columns(added.source_sql)) - set(columns(old.source_sql))
    appended = job.settings.blocking_rules[len(old.model["blocking_rules_to_generate_predictions"]) :]
    adopted = {c for rule in appended for c in rule}
    assert {c.removesuffix("_l").removesuffix("_r") for c in appended_only} <= adopted
    same = ", ".join(c for c in columns(reference.source_sql) if c not in appended_only)
    assert "match_weight" in same and "match_key" in same
    assert (
        rows_differing(
            con, f"(SELECT {same} FROM {current.source_sql})", f"(SELECT {same} FROM {reference.source_sql})"
        )
        == 0
    )


@pytest.mark.e2e
def test_a_run_routing_from_a_copy_of_the_scores_decides_every_pair_as_one_routing_from_the_view(tmp_path):
    """engine.routing_scores: the rounds read a per-scoring copy (table) or compute at each read (view); the demo
    with the truth judge decides every pair alike either way, with the same judged pairs."""
    results = {}
    for kind in ("table", "view"):
        out = tmp_path / kind
        results[kind] = splink_er.run(
            splink_er.demo_settings_path(),
            quiet=True,
            overrides=[
                "judge.kind=truth",
                f"engine.routing_scores={kind}",
                f"output_dir={out}",
                f"labels.path={out / 'labels.jsonl'}",
            ],
        )
    diff = compare_decisions(results["table"].decisions, results["view"].decisions)
    assert diff["same_pairs"] and diff["final_match_differs"] == 0 and diff["decided_by_differs"] == 0
    assert diff["max_abs_probability_difference"] == 0.0
    assert results["table"].run["judge"]["pairs_judged"] == results["view"].run["judge"]["pairs_judged"] > 0


@pytest.mark.e2e
def test_decisions_after_a_scoring_no_step_routed_read_the_new_scores(tmp_path):
    """Steps run by hand: route, train on answers, score again, decide without routing. The routes read a copy of
    the scoring they were made from (engine.routing_scores=table); deciding routes the new scores again with the
    same labels, so no decision carries the earlier model's probability."""
    job = splink_er.prepare(
        splink_er.demo_settings_path(),
        quiet=True,
        overrides=[
            "judge.kind=truth",
            "engine.routing_scores=table",
            f"output_dir={tmp_path}",
            f"labels.path={tmp_path / 'labels.jsonl'}",
        ],
    )
    job.bootstrap()
    job.score()
    job.route()
    assert job.judge_band(limit=100)["asked"] > 0
    before = job.model
    job.train()
    assert job.model != before
    job.score()
    decisions = job.inference.decide(1)
    stale = job.con.execute(
        f"SELECT count(*) FROM {decisions} d JOIN scores s USING (source_dataset_l, unique_id_l, source_dataset_r, "
        "unique_id_r) WHERE d.match_probability <> s.match_probability"
    ).fetchall()[0][0]
    assert stale == 0 and decisions.count() == job.inference.scores.count()
    assert job.con.execute(f"SELECT count(*) FROM {decisions} WHERE decided_by = 'judge'").fetchall()[0][0] > 0
