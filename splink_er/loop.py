"""The active-learning rounds and the stopping rule, nothing else.

A round: sample -> judge the sample -> train -> score -> (round 1: learned blocking) -> route -> judge part of the
band -> decide. Rounds go on until a stopping rule fires; then, if the last answers never trained the model, one
more training pass re-decides the pairs no one judged with every answer the run bought. Every step is the job's
own (see `Job`), so a notebook can run the same steps by hand.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from .judging import JudgeStats


@dataclass
class RoundRecord:
    """What one round did (run.json's `rounds`)."""

    round: int
    training_only: bool = False
    sampled: int | None = None
    sample_asked: int = 0
    sample_reused: int = 0
    sample_strata: dict | None = None
    training: dict = field(default_factory=dict)
    blocking_adopted: list | None = None
    band: int = 0
    conflicts: int = 0
    routes_before_judge: dict = field(default_factory=dict)
    band_asked: int = 0
    band_reused: int = 0
    undecided: int = 0
    routes: dict = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    labels_used: int = 0
    judge_budget_left: int = 0
    estimated: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    new_labels: int = 0
    stopped: str | None = None

    def as_dict(self) -> dict:
        """As run.json has always written it: keys a round did not reach are left out."""
        d = asdict(self)
        if not self.training_only:
            del d["training_only"]
        if self.sampled is None:
            for k in ("sampled", "sample_asked", "sample_reused", "sample_strata"):
                del d[k]
        for k in ("blocking_adopted", "stopped"):
            if d[k] is None:
                del d[k]
        return d


class ActiveLearningLoop:
    """Runs a job's rounds (see `Job.run_rounds`)."""

    def __init__(self, job) -> None:
        self.job = job
        self.rounds: list[RoundRecord] = []

    def run(self, sample_rounds: int, max_rounds: int) -> None:
        untrained_answers = False
        for r in range(1, max_rounds + 1):
            rec = self.round(r, sample=r <= sample_rounds)
            untrained_answers = rec.band_asked + rec.band_reused > 0
            stop = self.stop_reason(rec, r >= sample_rounds)
            if stop:
                rec.stopped = stop
                break
        if untrained_answers and self.job.session.settings.loop.final_training:
            self.round(self.job.round + 1, sample=False, judge=False)

    def round(self, r: int, sample: bool, judge: bool = True) -> RoundRecord:
        job = self.job
        s = job.session.settings
        job.round = r
        t0 = time.perf_counter()
        rec = RoundRecord(r, training_only=not judge)
        if sample and job.judge is not None and s.sampling.budget_per_round:
            drawn = job.sample()
            st = job.judge_pairs(drawn, reason="sample")
            rec.sampled, rec.sample_asked, rec.sample_reused = len(drawn), st["asked"], st["reused"]
            rec.sample_strata = drawn["stratum"].value_counts().to_dict()
        before = job.model
        rec.training = job.train()
        if job.inference.scores is None or job.model != before:  # predicting is most of a run's cost
            job.score()
        if r == 1 and job.learn_blocking:
            job.blocking_report = report = job.suggest_blocking()
            job.adopt_blocking(report["chosen"])
            rec.blocking_adopted = report["chosen"]
            job.session.reporter.info(
                f"blocking: adopted {report['chosen'] or 'no rule'} (+{report['added_pairs']:,} pairs, model "
                f"expects ~{report['expected_matches_gained']:,.0f} more matches)"
            )
        counts = job.route()
        rec.band, rec.conflicts, rec.routes_before_judge = counts.get("band", 0), counts.get("conflict", 0), counts
        st = job.judge_band(limit=s.loop.band_per_round) if judge else JudgeStats(0).as_dict()
        rec.band_asked, rec.band_reused, rec.undecided = st["asked"], st["reused"], st["undecided"]
        if st["asked"] or st["reused"]:  # answers re-routed some pairs
            counts = job.inference.route_counts()
        job.inference.decide(r)
        rec.routes, rec.accepted, rec.rejected = counts, counts.get("model_accept", 0), counts.get("model_reject", 0)
        rec.labels_used = len(job.run_labels())
        rec.judge_budget_left = job.budget_left
        # What the model expects of its decisions: for the stopping rule, so not computed (a scan of every pair)
        # when no judge can be asked.
        rec.estimated = job.expected_accuracy() if job.judge is not None else {}
        rec.metrics = job.metrics()
        rec.seconds = round(time.perf_counter() - t0, 3)
        # Answers this round put to use, asked now or reused from the store (so a resumed run stops alike).
        rec.new_labels = rec.sample_asked + rec.sample_reused + rec.band_asked + rec.band_reused
        self.rounds.append(rec)
        m = rec.metrics
        job.session.reporter.info(
            f"round {r}{'' if judge else ' (training on the last answers, no judging)'}: band {rec.band:,}, "
            f"conflicts {rec.conflicts:,}, judged {rec.new_labels:,} "
            f"(reused {rec.sample_reused + rec.band_reused:,}), accepted {rec.accepted:,}, "
            f"rejected {rec.rejected:,}"
            + (f"; model-estimated F1 {rec.estimated['f1']:.4f}" if rec.estimated else "")
            + (f"; P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}" if m else "")
        )
        return rec

    def stop_reason(self, rec: RoundRecord, sampling_done: bool) -> str | None:
        job = self.job
        loop = job.session.settings.loop
        if job.judge is None:
            return "no judge"
        if job.budget_left <= 0:
            return "judge.max_pairs reached"
        if job.judging.cost_exhausted:
            return "judge.max_cost reached"
        if rec.band + rec.conflicts == 0 and sampling_done:
            return "band empty"
        if rec.new_labels < loop.min_new_labels and sampling_done:
            return f"fewer than {loop.min_new_labels} new labels"
        gain = rec.estimated.get("next_round_f1_gain", 0.0)
        if sampling_done and loop.min_f1_gain and gain < loop.min_f1_gain:
            return f"estimated F1 gain of another round {gain:.5f} < loop.min_f1_gain {loop.min_f1_gain}"
        return None
