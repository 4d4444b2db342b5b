"""`splink-er labels import`: labels a team already has, stored as imported labels that train like judge answers,
decide their pairs without the judge, and yield to a human label or a judge answer. Offline: the bundled demo with
its SIMULATED truth judge."""

import copy
import shutil

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import splink_er
from splink_er.cli import app
from splink_er.labels import LabelStore, make_label
from splink_er.pairs import PAIR_KEY, pair_keys


@pytest.fixture(scope="module")
def demo_base(tmp_path_factory):
    path = splink_er.demo_settings_path()
    data = yaml.safe_load(path.read_text())
    data["sources"][0]["path"] = str(path.parent / data["sources"][0]["path"])
    return data


def settings_in(base: dict, folder) -> dict:
    d = copy.deepcopy(base)
    d["output_dir"] = str(folder / "out")
    d["labels"] = {"path": str(folder / "labels.jsonl")}
    return d


@pytest.fixture(scope="module")
def earlier(demo_base, tmp_path_factory):
    """An earlier run of the demo: (its settings, its decisions, a Parquet file of its judge answers)."""
    folder = tmp_path_factory.mktemp("earlier")
    settings = settings_in(demo_base, folder)
    result = splink_er.run(settings, quiet=True)
    decisions = result.decisions
    answers = folder / "answers.parquet"
    decisions[decisions["decided_by"].eq("judge")].to_parquet(answers)
    return settings, decisions, answers


def test_imported_answers_spare_the_judge_for_about_the_same_f1(earlier, demo_base, tmp_path):
    _, _, answers = earlier
    n_imported = len(pd.read_parquet(answers))
    runs = {}
    for name in ("without", "with"):
        s = settings_in(demo_base, tmp_path / name)
        s["judge"]["max_pairs"] = 1000  # room to judge the whole band, so the runs differ in what they need
        if name == "with":
            res = splink_er.import_labels(s, answers, match="judge_match", source="earlier run")
            assert res["pairs"] == n_imported and res["unknown_records"] == 0
        runs[name] = splink_er.run(s, quiet=True)
    without, with_ = (runs[k].run for k in ("without", "with"))
    # The imported answers are already decided: at least half of them no longer need the judge.
    assert with_["judge"]["pairs_judged"] <= without["judge"]["pairs_judged"] - n_imported // 2
    assert abs(with_["metrics"]["f1"] - without["metrics"]["f1"]) < 0.02
    decisions = runs["with"].decisions
    imported = decisions[decisions["decided_by"].eq("imported")]
    assert len(imported) == n_imported
    assert imported["label_source"].eq("earlier run").all()
    assert (imported["final_match"] == imported["judge_match"]).all()
    assert "imported" not in without["decided_by"]


def test_min_confidence_skips_and_counts_rows_below_it(demo_dict, tmp_path):
    file = tmp_path / "earlier.csv"
    pd.DataFrame(
        {
            "id_a": ["0", "0", "2", "3", "5"],
            "id_b": ["1", "2", "3", "4", "6"],
            "is_same": ["yes", "no", "true", "0", "1"],
            "llm_confidence": ["95", "90", "89.5", "", "70"],
        }
    ).to_csv(file, index=False)
    res = splink_er.import_labels(
        demo_dict,
        file,
        left_id="id_a",
        right_id="id_b",
        match="is_same",
        confidence_column="llm_confidence",
        min_confidence=90,
        source="llm 2023",
    )
    assert (res["pairs"], res["below_confidence"], res["no_confidence"]) == (2, 2, 1)
    labels = LabelStore(demo_dict["labels"]["path"]).effective()
    assert set(zip(labels["unique_id_l"], labels["unique_id_r"], labels["match"])) == {
        ("0", "1", True),
        ("0", "2", False),
    }
    assert labels["source"].eq("llm 2023").all() and labels["source_kind"].eq("imported").all()
    # A threshold in other units than the column would keep or drop everything: an error that names the fix.
    with pytest.raises(splink_er.InputError, match=r"in percent .* --min-confidence is 0.9; .* \(e.g. 90\)"):
        splink_er.import_labels(
            demo_dict, file, left_id="id_a", right_id="id_b", match="is_same",
            confidence_column="llm_confidence", min_confidence=0.9,
        )  # fmt: skip
    assert sorted(labels["confidence"]) == [0.9, 0.95]  # a percent column is stored on 0..1


def test_a_record_with_no_match_becomes_non_matches_against_its_blocked_candidates(earlier, demo_dict, tmp_path):
    _, decisions, _ = earlier  # every blocked pair of the demo (rejects are written)
    on_record = decisions[decisions["unique_id_l"].eq("5") | decisions["unique_id_r"].eq("5")]
    candidates = set(pair_keys(on_record))
    assert len(candidates) > 1
    kept = sorted(candidates)[0]  # the file also names one candidate pair as a match: that row wins
    other = kept[1] if kept[3] == "5" else kept[3]
    file = tmp_path / "earlier.csv"
    pd.DataFrame({"unique_id_l": ["5", "5"], "unique_id_r": ["", other], "match": ["false", "true"]}).to_csv(
        file, index=False
    )
    res = splink_er.import_labels(demo_dict, file)
    assert (res["no_match_records"], res["expanded"]) == (1, len(candidates) - 1)
    labels = LabelStore(demo_dict["labels"]["path"]).effective()
    assert set(pair_keys(labels)) == candidates
    by_key = dict(zip(pair_keys(labels), labels["match"]))
    assert by_key.pop(kept) is True and not any(by_key.values())


def test_a_human_label_or_a_judge_answer_beats_an_imported_one(earlier, demo_base, tmp_path):
    first, decisions, _ = earlier
    s = settings_in(demo_base, tmp_path)
    shutil.copy(first["labels"]["path"], s["labels"]["path"])  # the earlier run's judge answers
    judged = decisions[decisions["decided_by"].eq("judge")].head(20)
    model_only = decisions[decisions["decided_by"].eq("model_accept")].head(20)
    file = tmp_path / "flipped.csv"
    flipped = pd.concat(
        [judged[PAIR_KEY].assign(match=~judged["judge_match"].astype(bool)), model_only[PAIR_KEY].assign(match=False)]
    )
    flipped.to_csv(file, index=False)
    splink_er.import_labels(s, file)
    store = LabelStore(s["labels"]["path"])
    person = tuple(model_only[PAIR_KEY].iloc[0])
    store.append([make_label(person, True, 1.0, "human", "human", reason="human")])
    effective = store.effective().set_index(PAIR_KEY)
    assert effective.loc[person, "source_kind"] == "human"
    assert effective.loc[[tuple(k) for k in judged[PAIR_KEY].values], "source_kind"].eq("judge").all()

    after = splink_er.run(s, quiet=True).decisions.set_index(PAIR_KEY)
    mine = after.loc[[tuple(k) for k in judged[PAIR_KEY].values]]
    assert not mine["decided_by"].eq("imported").any()  # the judge's answers, not the flipped imports, count
    answered = mine[mine["decided_by"].eq("judge")]
    expected = judged.set_index(PAIR_KEY)["judge_match"].loc[answered.index]
    assert len(answered) and (answered["final_match"] == expected).all()
    assert after.loc[person, "decided_by"] == "human" and bool(after.loc[person, "final_match"])
    rest = after.loc[[tuple(k) for k in model_only[PAIR_KEY].values[1:]]]
    assert rest["decided_by"].eq("imported").all() and not rest["final_match"].any()


def test_bad_files_are_clear_input_errors(demo_dict, tmp_path):
    missing = tmp_path / "missing.csv"
    pd.DataFrame({"left": ["0"], "right": ["1"], "match": ["true"]}).to_csv(missing, index=False)
    with pytest.raises(splink_er.InputError, match=r"unique_id_l, unique_id_r not found; the file has \['left'"):
        splink_er.import_labels(demo_dict, missing)
    bad = tmp_path / "bad.parquet"
    pd.DataFrame(
        {"unique_id_l": ["0", "0", "2"], "unique_id_r": ["1", "2", "3"], "match": ["maybe", "yes", "2"]}
    ).to_parquet(bad)
    with pytest.raises(splink_er.InputError, match=r"not understood: row 1 \('maybe'\), row 3 \('2'\)"):
        splink_er.import_labels(demo_dict, bad)
    assert not LabelStore(demo_dict["labels"]["path"]).path.exists()  # nothing stored from a bad file


def test_cli_imports_reports_unknown_records_and_never_shows_a_traceback(demo_dict, tmp_path):
    settings = tmp_path / "s.yaml"
    settings.write_text(yaml.safe_dump(demo_dict))
    file = tmp_path / "earlier.csv"
    pd.DataFrame(
        {"unique_id_l": ["0", "nope", "2"], "unique_id_r": ["1", "3", "gone"], "match": ["true", "false", "false"]}
    ).to_csv(file, index=False)
    runner = CliRunner()
    r = runner.invoke(app, ["labels", "import", str(settings), str(file), "--source", "crm"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())  # the console wraps long lines
    assert "1 imported labels" in said and "2 rows naming 2 records the inputs do not hold" in said
    listed = runner.invoke(app, ["labels", "list", str(settings), "--kind", "imported"])
    listed_said = " ".join(listed.output.split())
    assert "1 label(s) in force" in listed_said and "imported crm" in listed_said
    r = runner.invoke(app, ["labels", "import", str(settings), str(file), "--match", "answer"])
    assert r.exit_code == 3 and isinstance(r.exception, SystemExit)
    assert "answer not found; the file has" in " ".join(r.output.split())


def test_a_judge_answer_of_another_method_does_not_hide_an_import(earlier, demo_base, tmp_path):
    """Only this run's judge method's answers outrank an import: an answer some other judge gave (stored, but not
    one this run would reuse) must not leave the pair with no label at all."""
    _, decisions, _ = earlier
    s = settings_in(demo_base, tmp_path)
    pairs = decisions[decisions["decided_by"].eq("model_accept")].head(10)
    file = tmp_path / "imports.csv"
    pairs[PAIR_KEY].assign(match=False).to_csv(file, index=False)
    splink_er.import_labels(s, file)
    store = LabelStore(s["labels"]["path"])
    store.append(
        [
            make_label(tuple(k), True, 0.9, "other-llm", "judge", method_id="another-method")
            for k in pairs[PAIR_KEY].itertuples(index=False)
        ]
    )
    after = splink_er.run(s, quiet=True).decisions.set_index(PAIR_KEY)
    mine = after.loc[[tuple(k) for k in pairs[PAIR_KEY].values]]
    assert mine["decided_by"].eq("imported").all() and not mine["final_match"].any()
