import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from splink_er.cli import app

runner = CliRunner()


def test_help_shows_examples():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "splink-er run settings/febrl4.yaml" in r.output


@pytest.mark.e2e
def test_bad_settings_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlink_type: dedupe_everything\n")
    r = runner.invoke(app, ["run", str(bad)])
    assert r.exit_code == 2 and "link_type" in r.output


@pytest.mark.e2e
def test_demo_run_label_retrain_explain(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "splink_er.cli", "demo", "--out", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "F1" in r.stderr and "calls" in r.stderr and "SIMULATED" in r.stderr
    # stderr is a pipe here, as under a scheduler: plain time-stamped lines, progress included, nothing redrawn.
    lines = r.stderr.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines if line.strip()), r.stderr
    assert re.search(r"judging \(band\): \d+/400", r.stderr) and "\r" not in r.stderr
    # Splink's advice is said once, in this library's settings; its raw blocks are not shown.
    assert "You have called predict()" not in r.stderr and "WARNING" not in r.stderr
    assert r.stderr.count("level 'Jaro-Winkler >0.88 on username'") == 1 and "bootstrap.em_blocking_rules" in r.stderr
    # How pairs were decided, as a table with the reason, and what each output file is.
    assert re.search(
        r"needs_review +\d+ +between routing.low and routing.high but not judged: the judge's budget", r.stderr
    )
    assert re.search(r"decisions\.parquet +every blocked pair", r.stderr) and "review export" in r.stderr
    from splink_er import demo_settings_path

    common = [str(demo_settings_path()), "--set", f"labels.path={out}/labels.jsonl"]
    r = runner.invoke(app, ["label", *common, "--pair", "0", "1", "--non-match"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["retrain", *common, "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["explain", *common, "--out", str(out), "--pair", "0", "1"])
    assert r.exit_code == 0, r.output
    assert "decided by human" in r.output and "human override:" in r.output
    pngs = list((out / "explain").glob("*.png"))
    assert pngs and pngs[0].stat().st_size > 1000
    page = next((out / "explain").glob("fake_1000__0__*.html")).read_text()
    assert "waterfall" in page and "human_override" in page and "decided_by" in page
    r = runner.invoke(app, ["explain", *common, "--out", str(out), "--uncertain", "3"])
    assert r.exit_code == 0, r.output
    batch = (out / "explain" / "uncertain.html").read_text()
    assert batch.count("<svg") == 3 and batch.count('class="pair"') == 3
    # The demo and the retrain are two runs in the decision log; the output directory holds the retrain.
    r = runner.invoke(app, ["runs", *common, "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    demo_run, retrain_run = found["runs"]
    assert demo_run["answers"] == 500 and demo_run["simulated"] and not demo_run["published"]
    assert retrain_run["answers"] == 0 and retrain_run["published"]
    assert found["published"]["run_id"] == retrain_run["run_id"] == json.loads((out / "run.json").read_text())["run_id"]
    r = runner.invoke(app, ["runs", *common, "--out", str(out)])
    assert r.exit_code == 0 and demo_run["run_id"] in r.stdout and "judge.run=RUN_ID" in r.output


@pytest.mark.e2e
def test_explain_before_run_exit_code_4(tmp_path):
    from splink_er import demo_settings_path

    r = runner.invoke(app, ["explain", str(demo_settings_path()), "--out", str(tmp_path / "none"), "--pair", "0", "1"])
    assert r.exit_code == 4 and "run" in r.output


@pytest.mark.e2e
def test_input_error_exit_code_3_keeps_bracketed_paths(tmp_path):
    """Messages name `sources[demo].derive`; the console must not eat the brackets as markup."""
    from splink_er import demo_settings_path

    r = runner.invoke(
        app, ["run", str(demo_settings_path()), "--set", "sources.0.derive.x=1 +* 2", "--out", str(tmp_path), "-q"]
    )
    assert r.exit_code == 3 and "sources[fake_1000].derive" in " ".join(r.output.split())
