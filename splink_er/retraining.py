"""Retrain: the labels of a finished run (its own judge's answers and every human label) train the saved bootstrap
model again; every pair is re-scored and re-routed, with no judge unless asked.

Which answers count is explicit: by default those of the judge method(s) the run used (run.json
`judge.method_ids`), so a Gemini run's retrain never trains on simulated-truth answers another run left in the
same store; `training.judge_methods: all` takes every judge's. The run's label store is the one read: retrain
refuses settings that name another.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import SettingsError
from .judges import Judge
from .model import load_model
from .outputs import RunDirectory
from .sampling import Designs


def run_methods(previous: dict) -> set[str] | None:
    """The judge methods whose answers a run used (run.json; older runs: the hash of their one judge method)."""
    judge = previous.get("judge") or {}
    if "method_ids" in judge:
        return set(judge["method_ids"])
    if judge.get("method"):
        return {Judge.method_id_of(judge["method"])}
    return None


def check_same_label_store(previous: dict, store: Path) -> None:
    used = previous.get("label_store")
    if used and Path(used).resolve() != Path(store).resolve():
        raise SettingsError(
            f"retrain reads the label store the run used, {used} (its run.json), but these settings name {store}; "
            f"run retrain with --set labels.path={used}, or `splink-er run` to start over with {store}"
        )


def take_answers_of_the_run(job, previous: dict) -> dict:
    """Load the stored answers retrain trains on and say which they are."""
    methods = run_methods(previous) if job.settings.training.judge_methods == "run" else None
    took = job.use_stored_answers(methods)
    whose = "of the run's judge method" if methods is not None else "of every judge method"
    left = (
        f"; {took['other_methods']} answers of other judge methods left out (training.judge_methods: all takes them)"
        if took["other_methods"]
        else ""
    )
    human = len(job.judging.store.human())
    job.session.reporter.info(f"retrain on {took['taken']} stored judge answers {whose} and {human} human labels{left}")
    return took


def rescore_from_labels(job, judge_band: bool) -> None:
    """The steps of `Job.retrain` before its outputs are written."""
    out = job.outputs
    previous = out.complete_run_record()
    boot = out.require(RunDirectory.bootstrap_model)
    check_same_label_store(previous, job.judging.store.path)
    if not judge_band:
        job.judging.disable("retrain without judging")
    job.announce()
    job.bootstrap(load_model(boot))
    # Rules the run learned are in the saved model; the job's settings take them too (Spark builds its model
    # from them), and none are learned again.
    job.blocking_report = previous.get("blocking") or {}
    job.session.with_blocking_rules(job.blocking_report.get("chosen", []))
    job.learn_blocking = False
    take_answers_of_the_run(job, previous)
    samples = out / RunDirectory.samples
    if samples.exists():
        job.designs = Designs(pd.read_parquet(samples))
    job.score()
    job.run_rounds(sample_rounds=0, max_rounds=1)
