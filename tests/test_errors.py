"""Every CLI failure mode exits with its documented code and a message that says what to change; and the bugs
found in the structure review stay fixed (each test here failed before its fix)."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

import splink_er
from splink_er import errors
from splink_er.cli import EXIT_CODES, app

runner = CliRunner()
DEMO = str(splink_er.demo_settings_path())


def said(r) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(r.output.split())


def test_every_error_class_has_one_documented_exit_code():
    codes = {cls.__name__: code for cls, code in EXIT_CODES.items()}
    assert codes == {
        "SettingsError": 2,
        "InputError": 3,
        "PreviousRunMissing": 4,
        "JudgeError": 5,
        "DependencyMissing": 6,
        "Busy": 7,
        "SplinkERError": 1,
    }
    for name in errors.__all__:  # every error is public and under the one base class
        assert issubclass(getattr(errors, name), errors.SplinkERError)
        assert getattr(splink_er, name) is getattr(errors, name)


def test_decisions_diff_of_a_log_without_decisions_is_an_input_error(tmp_path):
    empty = tmp_path / "decision_log.jsonl"
    empty.write_text("")
    r = runner.invoke(app, ["decisions", "diff", str(empty), str(empty)])
    assert r.exit_code == 3 and "has no decisions" in said(r), r.output


def test_decisions_diff_of_a_missing_log_is_an_input_error(tmp_path):
    r = runner.invoke(app, ["decisions", "diff", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    assert r.exit_code == 3 and "no such decision log" in said(r)


@pytest.mark.e2e
def test_explain_an_unknown_record_is_an_input_error(finished_demo):
    _, where = finished_demo
    r = runner.invoke(app, ["explain", DEMO, *where, "--pair", "0", "no-such-id"])
    assert r.exit_code == 3 and "'no-such-id' not found in source 'fake_1000'" in said(r), r.output


@pytest.mark.e2e
def test_a_missing_replay_log_is_a_judge_error(tmp_path):
    r = runner.invoke(
        app,
        [
            "run",
            DEMO,
            "--out",
            str(tmp_path),
            "-q",
            "--set",
            "judge.kind=replay",
            "--set",
            f"judge.log={tmp_path / 'nothing.jsonl'}",
        ],
    )
    assert r.exit_code == 5 and "judge.log" in said(r), r.output


@pytest.mark.e2e
def test_missing_pyspark_is_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` now raises ImportError
    r = runner.invoke(app, ["run", DEMO, "--out", str(tmp_path), "-q", "--set", "engine.kind=spark"])
    assert r.exit_code == 6 and "pip install" in said(r) and "engine.kind: duckdb" in said(r), r.output


@pytest.mark.e2e
def test_run_result_reads_each_file_once(finished_demo):
    result, _ = finished_demo
    assert result.decisions is result.decisions
    assert result.clusters is result.clusters and result.matches is result.matches


@pytest.mark.e2e
def test_reading_a_finished_run_needs_no_api_key(finished_demo, tmp_path):
    """explain, review export and blocking suggest build no judge: a Gemini job explains without a key."""
    _, where = finished_demo
    gemini = ["--set", "judge.kind=gemini"]
    r = runner.invoke(app, ["explain", DEMO, *where, *gemini, "--pair", "0", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["review", "export", DEMO, *where, *gemini])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["blocking", "suggest", DEMO, *where, *gemini, "--set", "blocking.max_comparisons=5000"])
    assert r.exit_code == 0 and "chosen" in said(r), r.output


@pytest.mark.e2e
def test_an_output_path_with_a_quote_works(tmp_path):
    out = tmp_path / "o'brien's run"
    result = splink_er.run(
        DEMO,
        quiet=True,
        overrides=[f"output_dir={out}", f"labels.path={out}/labels.jsonl", "judge.max_pairs=40", "sampling.rounds=1"],
    )
    assert (out / "decisions.parquet").exists() and len(result.decisions) == result.run["blocked_pairs"]


@pytest.mark.e2e
def test_quiet_means_quiet():
    code = (
        "import splink_er; splink_er.run(splink_er.demo_settings_path(), quiet=True, "
        "overrides=['output_dir=/tmp/se_quiet', 'labels.path=/tmp/se_quiet/l.jsonl', 'judge.max_pairs=40'])"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.e2e
def test_settings_are_frozen_and_a_run_leaves_the_callers_object_alone(demo_dict):
    s = splink_er.load_settings(demo_dict)
    with pytest.raises(Exception, match="frozen"):
        s.routing.high = 0.5
    job = splink_er.prepare(s, quiet=True)
    before = s.fingerprint()
    job.session.with_blocking_rules([["city", "dob"]])
    assert job.settings.blocking_rules[-1] == ["city", "dob"] and s.fingerprint() == before
