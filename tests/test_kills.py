"""A run killed at 30 random moments (judging, training, writing outputs) loses nothing and mixes nothing.

After every kill: the output directory is either a complete run (every file its run.json lists) or refused with
PreviousRunMissing, never read as a mix; the run's label store reads, and holds every answer the run logged but at
most the one batch in flight at the kill (answers are logged, then stored, batch by batch). Then a run on a killed
run's store asks none of the stored pairs again. Two kinds of kill moment, seeded: random points over the length of a
whole run (measured first), and every third kill once the run's label store holds a random number of answers, so
kills land while judging however fast or loaded the machine is (timing alone missed judging on a loaded CI run).
The judge is the SIMULATED truth judge, slowed to 0.1 s a batch.
"""

import random
import signal
import subprocess
import sys
import time
import warnings

import pytest

import splink_er
from splink_er import PreviousRunMissing
from splink_er.decision_log import lines_by_run
from splink_er.pairs import PAIR_KEY, pair_keys

DEMO = str(splink_er.demo_settings_path())
KILLS = 30
BATCH = 20


def start(out, store) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "splink_er.cli", "run", DEMO, "--out", str(out), "-q", "--set", f"labels.path={store}"]
    # One batch in flight at a time, 0.1 s a batch: judging is a fair share of a run, so kills land in it too.
    for s in ("judge.concurrency=1", f"judge.batch_size={BATCH}", "judge.latency_seconds=0.1"):
        cmd += ["--set", s]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_answers(proc: subprocess.Popen, store, at_least: int, timeout: float) -> None:
    """Return once `store` holds `at_least` answers (lines), the run ended, or `timeout` passed."""
    end = time.perf_counter() + timeout
    while proc.poll() is None and time.perf_counter() < end:
        if store.exists() and store.read_bytes().count(b"\n") >= at_least:
            return
        time.sleep(0.01)


def judge_lines_by_run(log) -> dict[str, list[dict]]:
    return lines_by_run(log, ("judge",))


@pytest.mark.slow
@pytest.mark.e2e
def test_a_run_killed_at_random_moments_leaves_a_complete_run_or_a_refusal(tmp_path):
    out, log = tmp_path / "out", tmp_path / "out" / "decision_log.jsonl"
    t0 = time.perf_counter()
    assert start(out, tmp_path / "first.jsonl").wait() == 0  # kills land on a directory that holds a finished run
    whole = time.perf_counter() - t0
    rng = random.Random(20261201)
    seen_runs = set(judge_lines_by_run(log))
    outcomes = {"complete": 0, "refused": 0, "killed while judging": 0}
    for i in range(KILLS):
        store = tmp_path / f"labels_{i}.jsonl"  # each killed run judges from scratch
        proc = start(out, store)
        if i % 3 == 0:  # 25 batches of 20 at 0.1 s: polling every 10 ms kills well before the last batch
            wait_for_answers(proc, store, at_least=rng.randrange(1, 460), timeout=10 * whole)
        else:
            time.sleep(rng.uniform(0.2, whole))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a torn last line is reported by a warning
            stored = set(pair_keys(splink_er.LabelStore(store).read_all()))
        runs = judge_lines_by_run(log)
        new = [r for r in runs if r not in seen_runs]
        seen_runs |= set(new)
        logged = {tuple(x[k] for k in PAIR_KEY) for r in new for x in runs[r]}
        assert stored <= logged and len(logged - stored) <= BATCH  # at most the batch in flight is not stored
        outcomes["killed while judging"] += 0 < len(stored) < 500
        try:
            result = splink_er.open_run(DEMO, overrides=[f"output_dir={out}", f"labels.path={store}"])
            assert len(result.decisions) and len(result.clusters) and len(result.matches)
            outcomes["complete"] += 1
        except PreviousRunMissing as e:
            assert "incomplete run" in str(e) or "mixes runs" in str(e), e
            outcomes["refused"] += 1
    assert outcomes["killed while judging"] >= 1 and outcomes["complete"] >= 1, outcomes
    # The next run on a killed run's store finishes and asks none of its stored pairs again.
    store = next(tmp_path / f"labels_{i}.jsonl" for i in range(KILLS) if (tmp_path / f"labels_{i}.jsonl").exists())
    before = set(pair_keys(splink_er.LabelStore(store).read_all()))
    assert start(out, store).wait() == 0
    final = splink_er.open_run(DEMO, overrides=[f"output_dir={out}", f"labels.path={store}"])
    fresh = {tuple(x[k] for k in PAIR_KEY) for x in judge_lines_by_run(log)[final.run["run_id"]] if not x["cached"]}
    assert not before & fresh and final.metrics["f1"] > 0.9
    print(outcomes)
