"""Every benchmark runs at a smoke size, so none of them can rot between the (long) real runs.

Each runs as its README command does (`python -m benchmarks.NAME`), with tiny inputs and its results written to a
scratch directory (SPLINK_ER_BENCH_RESULTS), never over benchmarks/results. The numbers are not checked here:
only that each script still runs end to end on the current code and writes its stamped result.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMOKE = {
    "run_benchmarks": (["--presets", "fake_1000"], "loop_vs_plain.json"),
    "active_learning": (
        ["--datasets", "fake_1000", "--strategies", "stratified", "--error-rates", "--audit-size", "100"],
        "active_learning.json",
    ),
    "audit_coverage": (["fake_1000", "--sizes", "100", "--repeats", "2"], "audit_coverage_fake_1000.json"),
    "ceilings": (["fake_1000"], "ceilings_fake_1000.json"),
    "judge_throughput": (["--batches", "20", "--concurrency", "16", "--fault-pairs", "100"], "judge_throughput.json"),
    "normalize_names": (["2000"], "normalize_names.json"),
    "labels_import": (["--presets", "fake_1000"], "labels_import.json"),
    "scale": (["--sizes", "2000"], "scale.json"),
    "entity_store": (["--records", "2000", "--repeat", "1"], "entity_store.json"),
    "incremental": (
        ["--sizes", "2000", "--new", "50", "--repeat", "1", "--requests", "8", "--skip-real"],
        "incremental.json",
    ),
}
# Run by other tests: tests/test_spark.py runs its DuckDB-Spark equality checks through spark_vs_duckdb.run_both
# (a smoke run here would repeat the fake_1000 one, 2 minutes on 2 cores).
COVERED_ELSEWHERE = {"spark_vs_duckdb", "compare_runs"}


def run_module(name: str, args: list[str], results: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPLINK_ER_BENCH_RESULTS=str(results))
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMOKE))
def test_benchmark_runs_at_smoke_size(name, tmp_path):
    args, result_file = SMOKE[name]
    committed = {p.name: p.stat().st_mtime_ns for p in (REPO / "benchmarks" / "results").iterdir()}
    done = run_module(name, args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / result_file).read_text())
    assert result, f"{result_file} is empty"
    # The committed results are left alone: smoke numbers go to the scratch directory only.
    assert {p.name: p.stat().st_mtime_ns for p in (REPO / "benchmarks" / "results").iterdir()} == committed


def test_every_benchmark_module_has_a_smoke_run():
    modules = {p.stem for p in (REPO / "benchmarks").glob("*.py")} - {"__init__", "common", "synthetic_persons"}
    assert modules - COVERED_ELSEWHERE == set(SMOKE), "add the new benchmark to SMOKE"


@pytest.mark.e2e
def test_compare_runs_finds_a_run_equal_to_itself_and_a_changed_one_different(finished_demo, tmp_path):
    import pandas as pd

    result, _ = finished_demo
    out = Path(result.output_dir)
    same = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare_runs", str(out.parent), str(out.parent), out.name],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0 and "same" in same.stdout, same.stdout + same.stderr
    changed = tmp_path / out.name
    changed.mkdir()
    (changed / "run.json").write_text((out / "run.json").read_text())
    d = pd.read_parquet(out / "decisions.parquet")
    d.loc[d.index[0], "final_match"] = not d.loc[d.index[0], "final_match"]
    d.to_parquet(changed / "decisions.parquet")
    differ = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare_runs", str(out.parent), str(tmp_path), out.name],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert differ.returncode == 1, differ.stdout + differ.stderr
