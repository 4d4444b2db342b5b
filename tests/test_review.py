"""Review round trip: export the queue, answer some rows in the CSV, import, retrain."""

import pandas as pd
import pytest
from typer.testing import CliRunner

import splink_er
from splink_er.cli import app
from splink_er.pairs import PAIR_KEY


@pytest.mark.e2e
def test_review_round_trip_changes_exactly_the_answered_pairs(demo_dict, tmp_path):
    demo_dict["judge"]["max_pairs"] = 150  # leaves band pairs for review
    splink_er.run(demo_dict, quiet=True)
    # Retrain once with the labels as they are: the model then uses every stored answer, like the next one will.
    first = splink_er.retrain(demo_dict, quiet=True)
    settings = tmp_path / "s.yaml"
    import yaml

    settings.write_text(yaml.safe_dump(demo_dict))
    res = CliRunner().invoke(app, ["review", "export", str(settings)])
    assert res.exit_code == 0, res.output
    csv = first.output_dir / "review" / "review_queue.csv"
    queue = pd.read_csv(csv, dtype=str, keep_default_na=False)
    needs = first.decisions[first.decisions["needs_review"]]
    assert len(queue) == len(needs) > 3 and (first.output_dir / "review" / "review_queue.html").exists()
    assert {"left_first_name", "right_first_name", "judge_reasoning", "model_guess"} <= set(queue.columns)
    assert "left_cluster" not in queue.columns  # the truth is never shown
    # Answer three rows with the opposite of the model's guess; leave the rest blank.
    answered = queue.head(3).copy()
    flip = {"True": "non-match", "False": "match"}
    queue.loc[answered.index, "answer"] = [flip[g] for g in answered["model_guess"]]
    queue.loc[answered.index[0], "note"] = "checked the registry"
    queue.to_csv(csv, index=False)
    res = CliRunner().invoke(app, ["review", "import", str(settings), str(csv)])
    assert res.exit_code == 0 and "3 human labels" in res.output, res.output
    second = splink_er.retrain(demo_dict, quiet=True)
    merged = first.decisions.merge(second.decisions, on=PAIR_KEY, suffixes=("_1", "_2"))
    changed = merged[merged["final_match_1"] != merged["final_match_2"]]
    answered_keys = set(map(tuple, answered[PAIR_KEY].values))
    # Every answered pair takes the person's answer. The answers also retrain the model (logistic training fits
    # every label), so a few pairs only the model decided may move with them; no judged pair ever does.
    assert answered_keys <= set(map(tuple, changed[PAIR_KEY].values))
    others = changed[~changed[PAIR_KEY].apply(tuple, axis=1).isin(answered_keys)]
    assert set(others["decided_by_1"]) <= {"model_accept", "model_reject", "needs_review"}
    assert len(others) < 0.01 * len(merged)
    human = second.decisions[second.decisions["decided_by"].eq("human")]
    assert set(map(tuple, human[PAIR_KEY].values)) == answered_keys
    assert "checked the registry" in set(human["judge_reasoning"])


def test_review_import_rejects_unclear_answers(demo_dict, tmp_path):
    csv = tmp_path / "answers.csv"
    pd.DataFrame(
        {
            "source_dataset_l": ["fake_1000"] * 2,
            "unique_id_l": ["1", "2"],
            "source_dataset_r": ["fake_1000"] * 2,
            "unique_id_r": ["3", "4"],
            "answer": ["match", "perhaps"],
        }
    ).to_csv(csv, index=False)
    from splink_er.review import ReviewFileError, import_answers

    with pytest.raises(ReviewFileError, match=r"row 3 \('perhaps'\)"):
        import_answers(demo_dict, csv)
