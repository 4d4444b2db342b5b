"""Questions to a finished run from its RunResult: explain, a page of uncertain pairs, the review queue, diff."""

import pytest

import splink_er
from splink_er import PreviousRunMissing, session


@pytest.fixture
def loads(monkeypatch):
    """How many times inputs are loaded (Session -> load_sources)."""
    calls = []
    real = session.load_sources
    monkeypatch.setattr(session, "load_sources", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.e2e
def test_a_run_result_explains_without_loading_the_inputs_again(finished_demo, loads):
    result, _ = finished_demo
    pair = result.decisions.query("decided_by == 'judge'").iloc[0]
    e = result.explain(pair.unique_id_l, pair.unique_id_r)
    assert e["decision"]["decided_by"] == "judge" and e["png"].exists()
    assert "judge_reasoning" in e["decision"] and e["html"].exists()
    page = result.explain_pairs("uncertain", 3)
    queue = result.review(limit=5)
    assert page.exists() and queue["csv"].exists() and queue["pairs"] <= 5
    assert loads == []  # the finished job's inputs were used


@pytest.mark.e2e
def test_an_opened_run_loads_its_inputs_once_and_only_when_asked(finished_demo, loads):
    result, args = finished_demo
    overrides = [f"labels.path={args[1].split('=', 1)[1]}", f"output_dir={args[3]}"]
    opened = splink_er.open_run(splink_er.demo_settings_path(), overrides=overrides)
    assert opened.run["run_id"] == result.run["run_id"] and loads == []
    assert opened.decisions.equals(result.decisions) and len(opened.diff(result)) == 0
    pair = opened.decisions.iloc[0]
    one = opened.explain(pair.unique_id_l, pair.unique_id_r)
    two = result.explain(pair.unique_id_l, pair.unique_id_r)
    assert one["match_probability"] == two["match_probability"]
    opened.explain(pair.unique_id_l, pair.unique_id_r)
    assert loads == [1]


def test_opening_a_run_that_never_ran_says_what_to_run(tmp_path):
    with pytest.raises(PreviousRunMissing, match="run `splink-er run`"):
        splink_er.open_run(splink_er.demo_settings_path(), overrides=[f"output_dir={tmp_path}"])


@pytest.mark.e2e
def test_a_finished_job_still_reads_its_decisions(finished_demo):
    # The decisions views pointed at the staging folder, which publishing removes.
    result, _ = finished_demo
    assert result.job.metrics()["f1"] == result.metrics["f1"]
