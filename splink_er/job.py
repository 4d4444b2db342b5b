"""`Job`: one entity-resolution job as a thin front object over its components, and the entry points.

The components, each a small class that keeps a reference to the session (as Splink's linker components do):
`training` (bootstrap and trained models), `inference` (scores, routes, decisions as relation handles),
`judging` (budget, answers, label store, decision log), `evaluation` (metrics, expected accuracy, audit) and the
sampling `designs`. `Job` exposes each step so a notebook can run them one at a time; `Job.run()` runs them all.
Every answer is written to the label store as its batch arrives, and every pair already in the store is reused
instead of re-asked, so a killed run that is started again continues where it stopped and reaches the same
decisions.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from . import blocking as blocking_mod
from .decision_log import DecisionLog
from .entities.layer import EntityLayer
from .errors import SettingsError
from .evaluate import Evaluation
from .finish import finish_run
from .inference import Inference
from .judges import Judge
from .judges.factory import make_judge
from .judging import JudgeStats, Judging
from .labels import LabelStore
from .locks import hold
from .loop import ActiveLearningLoop
from .outputs import RunDirectory, check_writable_paths
from .pairs import pair_keys
from .progress import Reporter, make_reporter
from .result import RunResult
from .retraining import rescore_from_labels
from .sampling import Designs
from .session import Session
from .settings import Settings, load_settings
from .sql import Relation
from .training import Training

# A judge, or a function that builds one from the loaded session (`session.con`, `session.loaded`).
JudgeArg = Judge | Callable[[Session], Judge] | None


# Learned blocking's chosen rules' pairs, as Splink blocks them, kept for the adoption that follows (round 1).
_ADOPTABLE_PAIRS = "__splink_er_adoptable_pairs"


class Job:
    """One entity-resolution job: load with `prepare(...)`, then run steps or `run()`.

    Example (runs the bundled demo step by step, in a fresh directory so no stored answer is reused):
        >>> import splink_er, tempfile
        >>> out = tempfile.mkdtemp()
        >>> job = splink_er.prepare(splink_er.demo_settings_path(), quiet=True,
        ...                         overrides=[f"output_dir={out}", f"labels.path={out}/labels.jsonl"])
        >>> _ = job.bootstrap(); scores = job.score()
        >>> scores.count()  # blocked pairs
        8648
        >>> sample = job.sample()
        >>> job.judge_pairs(sample, reason="sample")["asked"]
        100
        >>> _ = job.train(); _ = job.score(); job.route()["model_accept"]
        1456
        >>> result = job.finish()
        >>> round(result.metrics["f1"], 3)
        0.895
    """

    def __init__(
        self,
        settings: Settings,
        data: dict | None = None,
        judge: JudgeArg = None,
        quiet: bool = False,
        spark=None,
        reporter: Reporter | None = None,
        with_judge: bool = True,
        allow_empty: bool = False,
        con=None,
    ) -> None:
        self.data = data  # kept (a reference) so a finished run can be explained again after Spark
        if with_judge:
            check_writable_paths(settings)
        # One writer per label store and output directory, taken before any input is loaded or answer paid for.
        wait = settings.labels.wait_seconds
        stores = [(settings.label_store_path, "label store"), (settings.output_path, "output directory")]
        if settings.entities.enabled:
            stores.append((settings.entity_store_path, "entity store"))
        self._locks = []
        try:
            for path, what in stores if with_judge else ():
                self._locks.append(hold(path, what, wait))
            self._build(settings, data, judge, quiet, spark, reporter, with_judge, allow_empty, con)
        except BaseException:
            self.close()
            raise

    def _build(self, settings, data, judge, quiet, spark, reporter, with_judge, allow_empty, con) -> None:
        self.session = s = Session(settings, reporter or make_reporter(quiet), data, spark, allow_empty, con)
        note = "" if with_judge else "reading a finished run: no judge"
        if judge is not None and not isinstance(judge, Judge):
            judge = judge(s)  # a function of the loaded session (e.g. a judge that looks up a truth column)
        elif judge is None and with_judge:
            judge, note = make_judge(s.settings, s.con, s.loaded)
        self.judging = Judging(
            s, judge, note, LabelStore(s.settings.label_store_path), DecisionLog(s.settings.decision_log_path, s.run_id)
        )
        self.training = Training(s)
        self.inference = Inference(s)
        self.evaluation = Evaluation(s)
        self.entities = EntityLayer(s)
        self.designs = Designs()
        self.loop = ActiveLearningLoop(self)
        self.outputs = RunDirectory(s.settings.output_path)
        self.round = 0
        self.blocking_report: dict = {}
        self.learn_blocking = s.settings.blocking.adopt  # round 1 adds learned rules (not on retrain: already in)
        self.audit_result: dict = {}

    def announce(self) -> None:
        """Say what the job is about to do (the first lines of a run)."""
        s, r = self.session, self.session.reporter
        r.info(
            f"[bold]{s.settings.name}[/]: {s.settings.link_type}, "
            + ", ".join(f"{n} {c:,} records" for n, c in s.loaded.row_counts.items())
            + f"; judge: {self.judging.description}"
        )
        for m in self.judging.unpriced_models:
            r.warn(
                f"no price for model {m} in judge.prices; its cost is not counted "
                f"(add judge.prices.{m}: {{input_per_million: ..., output_per_million: ...}})"
            )

    # ---- what notebooks read ------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def con(self):
        return self.session.con

    @property
    def loaded(self):
        return self.session.loaded

    @property
    def judge(self) -> Judge | None:
        return self.judging.judge

    @property
    def store(self) -> LabelStore:
        return self.judging.store

    @property
    def model(self) -> dict | None:
        return self.training.model

    @property
    def bootstrap_model(self) -> dict | None:
        return self.training.bootstrap_model

    @property
    def budget_left(self) -> int:
        return self.judging.budget.left

    @property
    def timings(self) -> dict[str, float]:
        return self.session.clock.timings

    @property
    def rounds(self) -> list[dict]:
        return [r.as_dict() for r in self.loop.rounds]

    @property
    def judge_description(self) -> str:
        return self.judging.description

    # ---- steps --------------------------------------------------------------------------------------
    def bootstrap(self, model: dict | None = None) -> dict:
        """Unsupervised model (prior from deterministic rules, u by random sampling, EM), or a given model."""
        return self.training.bootstrap(model)

    def score(self) -> Relation:
        """Score every blocked pair with the current model; returns the scores (a relation handle)."""
        human = self.judging.store.human()
        return self.inference.score(self.training.model, list(pair_keys(human)) if len(human) else [])

    def sample(self) -> pd.DataFrame:
        """Draw this round's stratified sample of blocked pairs (with inclusion probabilities)."""
        r = max(self.round, 1)
        with self.session.clock.stage("sample"):
            return self.designs.draw(
                self.con,
                self.inference.sampling_population(),
                self.settings,
                r,
                f"{self.session.run_id}-r{r}",
                self.training.weight_shift(),
            )

    def judge_pairs(self, pairs: pd.DataFrame, reason: str | None = None) -> dict:
        """Get judge answers for pairs within `judge.max_pairs` (see `Judging.ask`); returns counts."""
        return self.judging.ask(pairs, reason, max(self.round, 1))  # steps run by hand are round 1

    def run_labels(self) -> pd.DataFrame:
        """The labels this run uses: every human label, and the judge answers this run asked for or reused."""
        return self.judging.run_labels()

    def train(self) -> dict:
        """Retrain the match weights from this run's labels (`training.method`), starting from the bootstrap model."""
        return self.training.train(
            self.inference.scores, self.run_labels(), self.designs.frame, self.round, self.inference.scores_of
        )

    def route(self) -> dict[str, int]:
        """Route every scored pair; returns the number of pairs per route."""
        return self.inference.route(self.run_labels())

    def judge_band(self, limit: int | None = None) -> dict:
        """Send the band and conflict pairs (conflicts first, then nearest p = 0.5; at most `limit`) to the judge,
        then re-route so their answers count."""
        left = self.budget_left
        if self.judge is None or left <= 0:  # nothing can be asked: skip the scan of every pair
            return JudgeStats(0).as_dict()
        stats = self.judge_pairs(self.inference.judge_queue(min(left, limit or left)))
        if stats["asked"] or stats["reused"]:
            self.route()
        return stats

    def suggest_blocking(self) -> dict:
        """Candidate blocking rules scored by the current model (see splink_er/blocking.py); changes nothing.
        DuckDB only: it scores a few thousand to a few million added pairs per candidate."""
        s = self.session
        if s.backend.name != "duckdb":
            raise SettingsError(
                "blocking suggest runs on DuckDB: run it with engine.kind=duckdb (the rules it "
                "prints work on either engine)"
            )
        self._forget_adoptable_pairs()
        with s.clock.stage("blocking"), s.reporter.progress("scoring candidate blocking rules") as advance:
            report = blocking_mod.suggest(
                s.con,
                s.sdfs,
                s.settings,
                s.loaded,
                self.model,
                str(self.inference.scores),
                progress=lambda done, total: advance(done, total=total),
                blocked_pairs_table=_ADOPTABLE_PAIRS if self.learn_blocking else None,
            )
        if self.learn_blocking and report["chosen"]:  # adopting them compares these pairs, blocked already
            # Valid for exactly these rules after exactly today's (their match_keys count from there).
            s.backend.appended_pairs = (s.settings.blocking_rules + report["chosen"], _ADOPTABLE_PAIRS)
        return report

    def _forget_adoptable_pairs(self) -> None:
        self.session.backend.appended_pairs = None
        self.con.execute(f"DROP TABLE IF EXISTS {_ADOPTABLE_PAIRS}")

    def adopt_blocking(self, rules: list[list[str]]) -> None:
        """Add blocking rules to the job (its settings and every model of this run) and re-score."""
        if rules:
            self.session.with_blocking_rules(rules)
            self.training.use_blocking_rules(self.session.blocking_rules_sql())
            self.score()
        self._forget_adoptable_pairs()

    def use_stored_answers(self, method_ids: set[str] | None = None) -> dict:
        """Train on the stored judge answers of the judge methods `method_ids` (None: every method), whichever
        run paid for them; returns how many were taken and how many other methods' answers were left out."""
        return self.judging.use_stored_answers(method_ids)

    def metrics(self) -> dict:
        return self.evaluation.metrics(self.inference.decisions, self.inference.pair_set)

    def metrics_for_scores(self, table, predicted_sql: str) -> dict:
        """Metrics of a rule over a scored relation, e.g. plain Splink: (job.score(), "match_probability >= 0.5")."""
        return self.evaluation.metrics_for_scores(table, predicted_sql)

    def expected_accuracy(self) -> dict:
        return self.evaluation.expected_accuracy(self.inference.decisions, self.inference.routed, self.budget_left)

    # ---- the loop -----------------------------------------------------------------------------------
    def run_rounds(self, sample_rounds: int | None = None, max_rounds: int | None = None) -> None:
        """Rounds of sample -> train -> score -> route -> judge part of the band, until a stopping rule fires."""
        s = self.settings
        self.loop.run(
            s.sampling.rounds if sample_rounds is None else sample_rounds,
            s.loop.max_rounds if max_rounds is None else max_rounds,
        )

    def finish(self) -> RunResult:
        """Decide, cluster, evaluate and write every output; return the result."""
        try:
            if not self.loop.rounds:  # steps were run by hand without run_rounds
                self.inference.decide(self.round)
            run = finish_run(self)
        finally:
            self.close()
        return RunResult(
            self.outputs.path, run, job=self, reopen=lambda: prepare_for_outputs(self.settings, data=self.data)
        )

    def close(self) -> None:
        """Release the label store and output directory to other processes (finish does it; so does a failure)."""
        for lock in self._locks:
            lock.release()
        self._locks = []

    def run(self) -> RunResult:
        """The whole loop: bootstrap, rounds, outputs."""
        try:
            self.announce()
            self.bootstrap()
            self.score()
            self.run_rounds()
        except BaseException:
            self.close()
            raise
        return self.finish()

    def retrain(self, judge_band: bool = False) -> RunResult:
        """Retrain from the label store on the saved bootstrap model, re-score, re-route and rewrite the outputs.
        Needs a previous run's output directory. By default no judge is called, so applying human answers
        changes nothing else that costs money; `judge_band=True` also judges the band within judge.max_pairs."""
        try:
            rescore_from_labels(self, judge_band)
        except BaseException:
            self.close()
            raise
        return self.finish()


def prepare(
    settings,
    *,
    data: dict | None = None,
    judge: JudgeArg = None,
    overrides: list[str] | None = None,
    quiet: bool = False,
    spark=None,
) -> Job:
    """Load settings and sources, validate them, and return a Job ready for its steps.
    `spark`: a SparkSession to use with engine.kind spark (e.g. Databricks' `spark`) instead of starting one."""
    return Job(load_settings(settings, overrides), data=data, judge=judge, quiet=quiet, spark=spark)


def prepare_for_outputs(settings, overrides: list[str] | None = None, data: dict | None = None) -> Job:
    """A quiet Job with no judge for questions to a finished run's outputs (explain, review): no API key needed.
    DuckDB whatever engine.kind says: they score a handful of pairs, and Spark's numbers are DuckDB's
    (tests/test_spark.py). Table materialisation: nothing is written beside the outputs."""
    s = load_settings(settings, [*(overrides or []), "engine.kind=duckdb", "engine.materialisation=table"])
    return Job(s, data=data, quiet=True, with_judge=False)


def open_run(settings, *, overrides: list[str] | None = None) -> RunResult:
    """The result of a finished run, from its output directory (the settings name it; `overrides` as for
    `run`). Its inputs are loaded only when a question needs them (explain, review).

    Example:
        >>> import splink_er
        >>> o = ["output_dir=/tmp/se_open", "labels.path=/tmp/se_open/labels.jsonl"]
        >>> done = splink_er.run(splink_er.demo_settings_path(), overrides=o, quiet=True)
        >>> again = splink_er.open_run(splink_er.demo_settings_path(), overrides=o)
        >>> again.run["run_id"] == done.run["run_id"], len(again.diff(done))
        (True, 0)
    """
    s = load_settings(settings, overrides)
    out = RunDirectory(s.output_path)
    record = out.complete_run_record()
    return RunResult(out.path, record, reopen=lambda: prepare_for_outputs(s))


def run(
    settings,
    *,
    data: dict | None = None,
    judge: JudgeArg = None,
    overrides: list[str] | None = None,
    quiet: bool = False,
    spark=None,
) -> RunResult:
    """Run the whole loop and write the outputs.

    Example:
        >>> import splink_er
        >>> result = splink_er.run(splink_er.demo_settings_path(), overrides=["output_dir=/tmp/se_run",
        ...                        "labels.path=/tmp/se_run/labels.jsonl"], quiet=True)
        >>> result.metrics["f1"] > 0.9
        True
    """
    return prepare(settings, data=data, judge=judge, overrides=overrides, quiet=quiet, spark=spark).run()


def retrain(
    settings,
    *,
    data: dict | None = None,
    judge: JudgeArg = None,
    overrides: list[str] | None = None,
    quiet: bool = False,
    judge_band: bool = False,
    spark=None,
) -> RunResult:
    """Retrain from the label store, re-score and re-route; see Job.retrain."""
    return prepare(settings, data=data, judge=judge, overrides=overrides, quiet=quiet, spark=spark).retrain(judge_band)
