"""The rounds: bootstrap -> score -> sample -> judge -> train -> score -> route -> judge the band -> ... -> outputs.

`Job` holds one job's DuckDB session, registered sources, label store and judge, and exposes each step so a
notebook can run them one at a time; `Job.run()` runs them all. Every answer is written to the label store as
its batch arrives, and every pair already in the store is reused instead of re-asked, so a killed run that is
started again continues where it stopped and reaches the same decisions.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import audit as audit_mod
from . import blocking as blocking_mod
from . import clusters as clusters_mod
from . import evaluate, model as model_mod, report as report_mod, routing, sampling
from . import training as training_mod
from .decision_log import DecisionLog
from .judges import Judge, JudgeDecision, PairContext, run_judge
from .judges.factory import make_judge
from .judges.llm import LLMJudge
from .labels import LABEL_COLUMNS, LabelStore, make_label
from .privacy import redact_record
from .settings import Settings, load_settings
from .sources import load_sources, quote_ident, record_lookup

PAIR_KEY = model_mod.PAIR_KEY
pair_keys = model_mod.pair_keys


@dataclass
class RunResult:
    """What a run produced. DataFrames are read from the output files on first use."""

    output_dir: Path
    run: dict
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def metrics(self) -> dict:
        return self.run.get("metrics", {})

    @property
    def decisions(self) -> pd.DataFrame:
        return self._cache.setdefault("decisions", pd.read_parquet(self.output_dir / "decisions.parquet"))

    @property
    def clusters(self) -> pd.DataFrame:
        return self._cache.setdefault("clusters", pd.read_parquet(self.output_dir / "clusters.parquet"))

    @property
    def matches(self) -> pd.DataFrame:
        """Final matches with entity ids and the kept columns of both records."""
        return self._cache.setdefault("matches", pd.read_parquet(self.output_dir / "matches.parquet"))


class Job:
    """One entity-resolution job: load with `prepare(...)`, then run steps or `run()`.

    Example (runs the bundled demo step by step):
        >>> import splink_er
        >>> job = splink_er.prepare(splink_er.demo_settings_path(), overrides=["output_dir=/tmp/se_demo",
        ...                         "labels.path=/tmp/se_demo/labels.jsonl"], quiet=True)
        >>> job.bootstrap(); job.score()
        >>> sample = job.sample()
        >>> job.judge_pairs(sample, reason="sample")["asked"] >= 0
        True
        >>> job.train(); job.score(); job.route()
        >>> result = job.finish()
        >>> 0 <= result.metrics["f1"] <= 1
        True
    """

    def __init__(self, settings: Settings, data: dict | None = None, judge: Judge | None = None,
                 quiet: bool = False, spark=None) -> None:
        self.settings = settings
        self.console = Console(stderr=True, quiet=quiet)
        self.timings: dict[str, float] = {}
        self.started = time.time()
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.db = model_mod.make_db(settings)
        self.con = self.db.duckdb_con
        self.untrained_model = model_mod.splink_settings_dict(settings)
        required = model_mod.required_columns(settings, self.untrained_model)
        with self._stage("load"):
            self.loaded = load_sources(self.con, settings, required, data)
        self.sdfs = [self.db.register(t, dataset_display_name=n) for n, t in self.loaded.tables.items()]
        self.spark = None  # with engine.kind spark: Spark compares the pairs, DuckDB reads its Parquet
        if settings.engine.kind == "spark":
            from .spark_backend import SparkBackend
            with self._stage("spark_setup"), self.console.status("starting Spark"):
                self.spark = SparkBackend(settings, self.con, self.loaded, spark)
        truth_cols = {settings.truth_column, settings.judge_truth_column} - {None}
        # What a judge sees: the matched and kept columns, never the truth.
        self.display_columns = sorted((required | set(settings.columns_to_keep)) - truth_cols)
        self.n_possible = model_mod.possible_pairs(settings, self.loaded.row_counts)
        self.store = LabelStore(settings.label_store_path)
        self.judge, self.judge_note = (judge, "") if judge is not None else make_judge(settings, self.con, self.loaded)
        self.budget_left = settings.judge.max_pairs if self.judge is not None else 0
        self.log = DecisionLog(settings.decision_log_path, self.run_id)
        self.out = settings.output_path
        self.round = 0
        self.model: dict | None = None
        self.previous_model: dict | None = None  # the model before the last training that changed it
        self.bootstrap_model: dict | None = None
        self.designs = pd.DataFrame(columns=PAIR_KEY + ["design", "inclusion_probability"])
        self.answers: dict[tuple, dict] = {}  # judge answers (as labels) this run uses: asked or reused
        self.rounds: list[dict] = []
        self.asked_by_reason: dict[str, int] = {}
        self.reused_by_reason: dict[str, int] = {}
        self.cost_by_reason: dict[str, float] = {}
        self.training_reports: list[dict] = []
        self.scores_table: str | None = None
        self._prediction = None  # Splink's prediction under the `scores` view
        self._true_pairs: int | None = None
        self.rejects_written = True  # decisions.parquet holds model rejects too (see outputs.model_rejects)
        self.blocking_report: dict = {}
        self.learn_blocking = settings.blocking.adopt  # round 1 adds learned rules (not on retrain: already in)
        self.console.print(
            f"[bold]{settings.name}[/]: {settings.link_type}, "
            + ", ".join(f"{n} {c:,} records" for n, c in self.loaded.row_counts.items())
            + f"; judge: {self.judge_description}"
        )
        for m in self.unpriced_models:
            self.console.print(f"[yellow]warning[/]: no price for model {m} in judge.prices; its cost is not counted "
                               f"(add judge.prices.{m}: {{input_per_million: ..., output_per_million: ...}})")

    # ---- helpers -------------------------------------------------------------------------------------
    @property
    def judge_description(self) -> str:
        note = f" ({self.judge_note})" if self.judge_note else ""
        if self.judge is None:
            return f"none (band goes to needs_review){note}"
        model = self.judge.parts[0].method.get("model")
        what = self.judge.name + (f" {model}" if model else "")
        if self.settings.judge.kind == "replay":
            what = f"replay of run {self.judge.run_id} ({what} answers, no calls)"
        return what + (" (SIMULATED from ground truth)" if self.judge.simulated else "") + note

    @property
    def unpriced_models(self) -> list[str]:
        """LLM models the judge uses that have no entry in judge.prices (their cost is not counted)."""
        parts = self.judge.parts if self.judge else []
        return sorted({j.model for j in parts if isinstance(j, LLMJudge) and j.price is None})

    @property
    def _cost_exhausted(self) -> bool:
        parts = self.judge.parts if self.judge else []
        return any(j.cost_meter.exhausted for j in parts if isinstance(j, LLMJudge))

    @contextmanager
    def _stage(self, name: str):
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 3)

    def _progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=self.console, transient=True)

    # ---- steps ---------------------------------------------------------------------------------------
    def bootstrap(self, model: dict | None = None) -> None:
        """Unsupervised model (prior from deterministic rules, u by random sampling, EM), or a given model."""
        with self._stage("bootstrap"), self.console.status("bootstrap: prior, u sampling, EM"):
            if model is not None:
                self.bootstrap_model = model
            elif self.spark is not None:
                self.bootstrap_model = self.spark.bootstrap(self.untrained_model)
            else:
                self.bootstrap_model = model_mod.bootstrap(self.sdfs, self.settings, self.untrained_model)
        self.model = self.bootstrap_model

    def score(self) -> str:
        """Score every blocked pair with the current model (DuckDB table `scores`)."""
        with self._stage("score"), self.console.status("scoring blocked pairs"):
            self._prediction = model_mod.score(self.db, self.sdfs, self.model, self.settings,
                                               previous=self._prediction, spark=self.spark)
            self.scores_table = "scores"
        return self.scores_table

    def sample(self) -> pd.DataFrame:
        """Draw this round's stratified sample of blocked pairs (with inclusion probabilities)."""
        with self._stage("sample"):
            shift = (model_mod.weight_shift_sql(self.previous_model, self.model)
                     if self.previous_model is not None else None)
            s = sampling.draw_sample(self.con, self.scores_table, self.settings, max(self.round, 1), shift)
        design = s[PAIR_KEY + ["inclusion_probability"]].assign(design=f"{self.run_id}-r{max(self.round, 1)}")
        self.designs = pd.concat([self.designs, design], ignore_index=True) if len(self.designs) else design
        return s.rename(columns={"drawn_by": "stratum_drawn"})

    def judge_pairs(self, pairs: pd.DataFrame, reason: str | None = None, answers: dict | None = None,
                    budget: int | None = None) -> dict:
        """Get judge answers for pairs, within `judge.max_pairs`; log and store every answer per batch.

        A pair with a human label is skipped. A pair this judge method already answered for the same input (in
        the label store, from any run) is reused, not paid for again. Reused and new answers both count against
        `judge.max_pairs`, so a run's decisions do not depend on whether an earlier, killed run already paid for
        some answers. `pairs` has the pair key and match_probability (and a `reason` column, or pass `reason`).
        The audit passes its own `answers` dict and `budget`, so its answers never train or route anything."""
        target = self.answers if answers is None else answers
        human = set(pair_keys(self.store.human()))
        stats = {"pairs": len(pairs), "reused": 0, "asked": 0, "undecided": 0}
        chosen, left = [], self.budget_left if budget is None else budget
        for i, key in enumerate(pair_keys(pairs)):
            if key in human or key in target:
                continue
            if self.judge is None or left <= 0:
                break
            left -= 1
            chosen.append(i)
        if budget is None:
            self.budget_left = left
        if not chosen:
            return stats
        contexts = self._contexts(pairs.iloc[chosen], reason)
        meta = {c.key: row for c, row in zip(contexts, pairs.iloc[chosen].itertuples(index=False))}
        method, method_id = self.judge.method, self.judge.method_id
        # The replay judge must answer from its log only, so it never takes answers from the label store.
        cache = {} if self.settings.judge.kind == "replay" else self.store.judge_answers(method_id)
        ask, reused_lines = [], []
        for c in contexts:
            hit = cache.get(c.key)
            if hit is not None and hit.get("input_hash") == c.input_hash:
                target[c.key] = hit
                stats["reused"] += 1
                self.reused_by_reason[c.reason] = self.reused_by_reason.get(c.reason, 0) + 1
                d = JudgeDecision(c.key, hit["match"], hit["confidence"], hit["reasoning"])
                reused_lines.append(self.log.judge_record(c, d, self.judge.name, method, method_id, self.round,
                                                          hit["run_id"]))
            else:
                ask.append(c)
        self.log.append(reused_lines)
        if not ask:
            return stats
        by_key = {c.key: c for c in ask}

        def persist(decisions: list[JudgeDecision]) -> None:
            new = []
            for d in decisions:
                c = by_key[d.key]
                self.cost_by_reason[c.reason] = self.cost_by_reason.get(c.reason, 0.0) + d.call.get("cost_usd", 0.0)
                if d.match is None:
                    stats["undecided"] += 1
                    continue
                row = meta[d.key]
                label = make_label(d.key, d.match, d.confidence, self.judge.name, "judge",
                                   simulated=self.judge.simulated, reason=c.reason, round_no=self.round,
                                   stratum=getattr(row, "stratum_drawn", None),
                                   inclusion_probability=getattr(row, "inclusion_probability", None),
                                   run_id=self.run_id, method=method, reasoning=d.reasoning,
                                   method_id=method_id, input_hash=c.input_hash)
                target[d.key] = label
                new.append(label)
            # Log first, then the label store: a label is never stored without its log line.
            self.log.append([self.log.judge_record(by_key[d.key], d, self.judge.name, method, method_id, self.round)
                             for d in decisions])
            self.store.append(new)

        with self._stage("judge"), self._progress() as bar:
            task = bar.add_task(f"judging ({reason or 'band'})", total=len(ask))
            j = self.settings.judge
            run_judge(self.judge, ask, j.batch_size, j.concurrency, persist, lambda n: bar.advance(task, n))
        stats["asked"] = len(ask)
        for c in ask:
            self.asked_by_reason[c.reason] = self.asked_by_reason.get(c.reason, 0) + 1
        return stats

    def _contexts(self, todo: pd.DataFrame, reason: str | None) -> list[PairContext]:
        """What the judge is shown per pair: redacted records, the score only if settings say so, and the
        conflict group (one record with several candidates is asked as one selection question)."""
        keys = pair_keys(todo)
        records = record_lookup(self.con, self.loaded, [k[:2] for k in keys] + [k[2:] for k in keys],
                                self.display_columns)
        redact = self.settings.judge.redact
        shown = {rid: redact_record(rec, redact) for rid, rec in records.items()}
        reasons = [reason or r for r in (todo["reason"] if "reason" in todo else [reason] * len(todo))]
        conflict_keys = [k for k, r in zip(keys, reasons) if r == "conflict"]
        left_n = pd.Series([k[:2] for k in conflict_keys], dtype=object).value_counts().to_dict()
        right_n = pd.Series([k[2:] for k in conflict_keys], dtype=object).value_counts().to_dict()
        show = self.settings.judge.show_score
        out = []
        for key, why, p in zip(keys, reasons, todo["match_probability"]):
            group, side = None, "left"
            if why == "conflict" and left_n.get(key[:2], 0) > 1:
                group = f"{key[0]}:{key[1]}"
            elif why == "conflict" and right_n.get(key[2:], 0) > 1:
                group, side = f"{key[2]}:{key[3]}", "right"
            out.append(PairContext(key, shown.get(key[:2], {}), shown.get(key[2:], {}), why,
                                   float(p) if show else None, group, side))
        return out

    def run_labels(self) -> pd.DataFrame:
        """The labels this run uses: every human label, and the judge answers this run asked for or reused."""
        human = self.store.human()
        human_keys = set(pair_keys(human))
        judged = [a for k, a in self.answers.items() if k not in human_keys]
        if not judged:
            return human
        judged_df = pd.DataFrame(judged, columns=LABEL_COLUMNS)
        return pd.concat([human, judged_df], ignore_index=True) if len(human) else judged_df

    def _labels_for_training(self) -> pd.DataFrame:
        labels = self.run_labels()
        if self.settings.training.method == "logistic" and len(labels):
            # One-to-one conflicts are confident pairs sharing a record: their answers settle which candidate
            # wins, not what a level is worth; fitted, they would teach that confident pairs are often wrong.
            labels = labels[labels["reason"].ne("conflict")]
        return labels[PAIR_KEY + ["match"]] if len(labels) else pd.DataFrame(columns=PAIR_KEY + ["match"])

    def train(self) -> dict:
        """Retrain the match weights from this run's labels (`training.method`), starting from the bootstrap model."""
        before = self.model
        with self._stage("train"):
            if self.settings.training.method == "logistic":
                self.model, report = training_mod.train_logistic(
                    self.con, self.scores_table, self._labels_for_training(), self.designs, self.bootstrap_model,
                    self.model, self.settings)
            else:
                self.model, report = model_mod.train_from_labels(
                    self.con, self.scores_table, self._labels_for_training(), self.designs, self.bootstrap_model,
                    self.settings, self.n_possible)
        if self.model != before:
            self.previous_model = before
        self.training_reports.append({"round": self.round, **report.__dict__})
        return report.__dict__

    def route(self) -> dict[str, int]:
        """Route every scored pair (DuckDB view `routed`); returns counts per route."""
        with self._stage("route"):
            routing.route(self.con, self.scores_table, self.run_labels(), self.settings)
            return routing.route_counts(self.con, "routed")

    def suggest_blocking(self) -> dict:
        """Candidate blocking rules scored by the current model (see splink_er/blocking.py); changes nothing.
        DuckDB only: it scores a few thousand to a few million added pairs per candidate."""
        if self.spark is not None:
            raise ValueError("blocking suggest runs on DuckDB: run it with engine.kind=duckdb (the rules it prints "
                             "work on either engine)")
        with self._stage("blocking"), self._progress() as bar:
            task = bar.add_task("scoring candidate blocking rules", total=None)
            report = blocking_mod.suggest(self.con, self.sdfs, self.settings, self.loaded, self.model, self.scores_table,
                                          progress=lambda done, total: bar.update(task, completed=done, total=total))
        return report

    def use_stored_answers(self) -> int:
        """Train on every judge answer in the label store, whichever run paid for it (human labels always count).
        Returns how many answers were taken."""
        stored = self.store.effective()
        judged = stored[stored["source_kind"].eq("judge")] if len(stored) else stored
        self.answers = dict(zip(pair_keys(judged), judged.to_dict("records")))
        return len(self.answers)

    def adopt_blocking(self, rules: list[list[str]]) -> None:
        """Add blocking rules to the job (settings and every model of this run) and re-score."""
        if not rules:
            return
        self.settings.blocking_rules = self.settings.blocking_rules + rules
        brs = model_mod.splink_settings_dict(self.settings)["blocking_rules_to_generate_predictions"]
        for m in (self.untrained_model, self.bootstrap_model, self.model):
            if m is not None:
                m["blocking_rules_to_generate_predictions"] = copy.deepcopy(brs)
        self.score()

    def judge_band(self, limit: int | None = None) -> dict:
        """Send the band and conflict pairs (nearest p = 0.5 first, at most `limit`) to the judge, then re-route
        so their answers count."""
        if self.judge is None or self.budget_left <= 0:  # nothing can be asked: skip the scan of every pair
            return {"pairs": 0, "reused": 0, "asked": 0, "undecided": 0}
        todo = routing.pairs_to_judge(self.con, "routed", limit=min(self.budget_left, limit or self.budget_left))
        stats = self.judge_pairs(todo)
        if stats["asked"] or stats["reused"]:
            self.route()
        return stats

    def metrics(self, decisions: str = "decisions") -> dict:
        with self._stage("evaluate"):
            return self.metrics_for_scores(decisions, "final_match")

    def metrics_for_scores(self, table: str, predicted_sql: str) -> dict:
        """Metrics of a rule over a scored table, e.g. plain Splink: ("scores", "match_probability >= 0.5")."""
        if not self.settings.truth_column:
            return {}
        if self._true_pairs is None:
            self._true_pairs = evaluate.true_pair_count(self.con, self.loaded, self.settings, self.settings.truth_column)
        return evaluate.pairwise_metrics(self.con, self.loaded, self.settings, f"SELECT * FROM {table}",
                                         predicted_sql, self._true_pairs)

    # ---- the loop ------------------------------------------------------------------------------------
    def run_rounds(self, sample_rounds: int | None = None, max_rounds: int | None = None) -> None:
        """Rounds of sample -> train -> score -> route -> judge part of the band, until a stopping rule fires;
        then, if the last answers never trained the model, one more training pass re-decides the pairs no one
        judged with every answer the run bought."""
        s = self.settings
        sample_rounds = s.sampling.rounds if sample_rounds is None else sample_rounds
        max_rounds = s.loop.max_rounds if max_rounds is None else max_rounds
        untrained_answers = False
        for r in range(1, max_rounds + 1):
            rec = self._round(r, sample=r <= sample_rounds)
            untrained_answers = rec["band_asked"] + rec["band_reused"] > 0
            stop = self._stop_reason(rec, r >= sample_rounds)
            if stop:
                rec["stopped"] = stop
                break
        if untrained_answers and s.loop.final_training:
            self._round(self.round + 1, sample=False, judge=False)

    def _round(self, r: int, sample: bool, judge: bool = True) -> dict:
        s = self.settings
        self.round = r
        t0 = time.perf_counter()
        rec: dict = {"round": r} | ({} if judge else {"training_only": True})
        if sample and self.judge is not None and s.sampling.budget_per_round:
            drawn = self.sample()
            st = self.judge_pairs(drawn, reason="sample")
            rec |= {"sampled": len(drawn), "sample_asked": st["asked"], "sample_reused": st["reused"],
                    "sample_strata": drawn["stratum"].value_counts().to_dict()}
        before = self.model
        rec["training"] = self.train()
        if self.scores_table is None or self.model != before:  # predicting is most of a run's cost
            self.score()
        if r == 1 and self.learn_blocking:
            self.blocking_report = self.suggest_blocking()
            self.adopt_blocking(self.blocking_report["chosen"])
            rec["blocking_adopted"] = self.blocking_report["chosen"]
            self.console.print(f"blocking: adopted {self.blocking_report['chosen'] or 'no rule'} "
                               f"(+{self.blocking_report['added_pairs']:,} pairs, model expects "
                               f"~{self.blocking_report['expected_matches_gained']:,.0f} more matches)")
        counts = self.route()
        rec |= {"band": counts.get("band", 0), "conflicts": counts.get("conflict", 0), "routes_before_judge": counts}
        st = self.judge_band(limit=s.loop.band_per_round) if judge else {"asked": 0, "reused": 0, "undecided": 0}
        rec |= {"band_asked": st["asked"], "band_reused": st["reused"], "undecided": st["undecided"]}
        if st["asked"] or st["reused"]:  # answers re-routed some pairs
            counts = routing.route_counts(self.con, "routed")
        routing.decide(self.con, "routed", r, one_to_one=s.routing.one_to_one)
        rec |= {"routes": counts, "accepted": counts.get("model_accept", 0), "rejected": counts.get("model_reject", 0),
                "labels_used": len(self.run_labels()), "judge_budget_left": self.budget_left,
                # What the model expects of its decisions: for the stopping rule, so not computed (a scan of every
                # pair) when no judge can be asked.
                "estimated": self.expected_accuracy() if self.judge is not None else {},
                "metrics": self.metrics(),
                "seconds": round(time.perf_counter() - t0, 3)}
        # Answers this round put to use, asked now or reused from the store (so a resumed run stops alike).
        rec["new_labels"] = rec.get("sample_asked", 0) + rec.get("sample_reused", 0) + rec["band_asked"] + rec["band_reused"]
        self.rounds.append(rec)
        m = rec["metrics"]
        self.console.print(
            f"round {r}{'' if judge else ' (training on the last answers, no judging)'}: band {rec['band']:,}, "
            f"conflicts {rec['conflicts']:,}, judged {rec['new_labels']:,} "
            f"(reused {rec.get('sample_reused', 0) + rec['band_reused']:,}), accepted {rec['accepted']:,}, "
            f"rejected {rec['rejected']:,}"
            + (f"; model-estimated F1 {rec['estimated']['f1']:.4f}" if rec["estimated"] else "")
            + (f"; P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}" if m else ""))
        return rec

    def _stop_reason(self, rec: dict, sampling_done: bool) -> str | None:
        s = self.settings
        if self.judge is None:
            return "no judge"
        if self.budget_left <= 0:
            return "judge.max_pairs reached"
        if self._cost_exhausted:
            return "judge.max_cost reached"
        if rec["band"] + rec["conflicts"] == 0 and sampling_done:
            return "band empty"
        if rec["new_labels"] < s.loop.min_new_labels and sampling_done:
            return f"fewer than {s.loop.min_new_labels} new labels"
        gain = rec["estimated"].get("next_round_f1_gain", 0.0)
        if sampling_done and s.loop.min_f1_gain and gain < s.loop.min_f1_gain:
            return f"estimated F1 gain of another round {gain:.5f} < loop.min_f1_gain {s.loop.min_f1_gain}"
        return None

    def expected_accuracy(self) -> dict:
        """Precision, recall and F1 the model expects of the current decisions (a judged pair counts as its
        answer, any other pair as a match with its probability), and the F1 the next round's band answers would
        add if the probabilities are right: the stopping rule's estimate. Model-based, so only as good as the
        model's calibration; the audit (audit.size) is the estimate that needs no trust in the model."""
        limit = min(self.budget_left, self.settings.loop.band_per_round or self.budget_left)
        tp, fp, fn, fix_fp, fix_fn = self.con.execute(f"""
            WITH d AS (SELECT final_match, {audit_mod.EXPECTED_SQL} AS p FROM decisions),
            nxt AS (SELECT match_probability AS p, match_probability >= 0.5 AS final_match
                    FROM ({routing.judge_queue_sql("routed", limit)}))
            SELECT (SELECT sum(p) FILTER (final_match) FROM d), (SELECT sum(1 - p) FILTER (final_match) FROM d),
                   (SELECT sum(p) FILTER (NOT final_match) FROM d),
                   (SELECT coalesce(sum(1 - p) FILTER (final_match), 0) FROM nxt),
                   (SELECT coalesce(sum(p) FILTER (NOT final_match), 0) FROM nxt)""").fetchall()[0]
        tp, fp, fn = tp or 0.0, fp or 0.0, fn or 0.0
        precision, recall, now = audit_mod.metrics_from_totals((tp, fp, fn))
        after = audit_mod.metrics_from_totals((tp + fix_fn, fp - fix_fp, fn - fix_fn))[2]
        return {"precision": round(precision, 4) if tp + fp else 1.0, "recall": round(recall, 4) if tp + fn else 1.0,
                "f1": round(now, 4), "next_round_f1_gain": round(after - now, 5) if limit > 0 else 0.0}

    def finish(self) -> RunResult:
        """Decide, cluster, evaluate and write every output; return the result."""
        if not self.rounds:  # steps were run by hand without run_rounds
            routing.decide(self.con, "routed", self.round, one_to_one=self.settings.routing.one_to_one)
        self.out.mkdir(parents=True, exist_ok=True)
        with self._stage("write"):
            self._write_decisions()
        with self._stage("cluster"):
            clusters_mod.cluster(self.db, self.sdfs, self.model, "decisions_kept")
        metrics = self.metrics()
        self.audit_result = self.audit()
        with self._stage("write"):
            self.con.execute(f"COPY (SELECT * FROM clusters ORDER BY source_dataset, unique_id) "
                             f"TO '{self.out / 'clusters.parquet'}' (FORMAT parquet)")
            self.con.execute(f"COPY ({self._matches_sql()}) TO '{self.out / 'matches.parquet'}' (FORMAT parquet)")
            model_mod.save_model(self.model, self.out / "model.json")
            model_mod.save_model(self.bootstrap_model, self.out / "model_bootstrap.json")
            self.designs.to_parquet(self.out / "samples.parquet", index=False)
            self.store.snapshot(self.out / "labels_snapshot.jsonl")
            # One pass over every decision for every count the run reports, and the weight histogram.
            decided_by, n_final, histogram = self._decision_counts()
            if self.settings.judge.log_final_decisions:
                self.log.append_final(self.out / "decisions.parquet", sum(decided_by.values()), self.rejects_written)
        run = self._run_record(metrics, decided_by, n_final)
        run["weight_histogram"] = histogram
        (self.out / "run.json").write_text(json.dumps(run, indent=2, default=str))
        with self._stage("report"), self.console.status("writing report.html"):
            try:
                report_mod.write_report(self, run, self.out / "report.html")
            except Exception as e:  # the decisions are written; a chart failure must not lose the run
                self.console.print(f"[yellow]warning[/]: report.html not written ({type(e).__name__}: {e})")
        self._print_summary(run)
        # Splink's parquet tables and DuckDB's spill files are scratch; the outputs above are the results.
        e = self.settings.engine
        if e.materialisation == "parquet" or e.memory_limit or e.kind == "spark":
            shutil.rmtree(self.settings.materialisation_path, ignore_errors=True)
        return RunResult(self.out, run)

    def _write_decisions(self) -> None:
        """Write decisions.parquet in one pass over the routed pairs. Later steps that look only at matches, judged
        and review pairs (clusters, matches, the report's pairs) read the file back as `decisions_kept`: the routing
        is computed once, and the file is compact and columnar. `decisions` stays every blocked pair (counts, audit,
        metrics); with model rejects written, it is the file too.
        Written beside and renamed into place: a killed run never leaves half a file, and the old file's inode
        (which the decision log may link to) is never rewritten. Not sorted: at 24M pairs sorting cost 18 s, a
        quarter of the run; rows come in engine order, so compare runs by pair key or `splink-er decisions diff`."""
        o = self.settings.outputs
        mode = o.model_rejects
        if mode == "auto":
            (blocked,) = self.con.execute("SELECT count(*) FROM scores").fetchall()[0]
            mode = "rows" if blocked <= o.auto_rows_limit else "counts"
        self.rejects_written = mode == "rows"
        path, part = self.out / "decisions.parquet", self.out / ".decisions.parquet.part"
        where = "" if self.rejects_written else "WHERE decided_by <> 'model_reject'"
        self.con.execute(f"COPY (SELECT * FROM decisions {where}) TO '{part}' (FORMAT parquet)")
        part.replace(path)
        model_mod.drop_relation(self.con, "decisions_kept")
        self.con.execute(f"CREATE VIEW decisions_kept AS SELECT * FROM read_parquet('{path}')")
        if self.rejects_written:
            model_mod.drop_relation(self.con, "decisions")
            self.con.execute("CREATE VIEW decisions AS SELECT * FROM decisions_kept")

    def audit(self) -> dict:
        """Judge a stratified sample of the final decisions (plus a probe outside blocking) and estimate precision,
        recall and F1 with 95% intervals: accuracy without ground truth. Changes no decision."""
        s = self.settings
        if not s.audit.size or self.judge is None:
            return {}
        with self._stage("audit"):
            sample = audit_mod.draw(self.con, "decisions", s, self.loaded.tables, self.n_possible)
        if sample.empty:
            return {}
        human = self.store.human()  # a person's answer is the best truth an audit can have
        answers = {k: {"match": m} for k, m in zip(pair_keys(human), human["match"])} if len(human) else {}
        stats = self.judge_pairs(sample, reason="audit", answers=answers, budget=len(sample))
        sample["match"] = [answers[k]["match"] if k in answers else None for k in pair_keys(sample)]
        with self._stage("audit"):
            return audit_mod.estimate(sample, seed=s.audit.seed) | {"pairs": len(sample), "asked": stats["asked"],
                                                                     "reused": stats["reused"]}

    def _matches_sql(self) -> str:
        """The final matches, each with its entity and the `columns_to_keep` of both records (e.g. a result id and
        winner flag carried next to the CRM's candidate id), so users need no join of their own."""
        kept = self.settings.columns_to_keep
        records = " UNION ALL BY NAME ".join(
            f"SELECT source_dataset, unique_id{''.join(', ' + quote_ident(c) for c in kept)} FROM {t}"
            for t in self.loaded.tables.values())
        sides = "".join(f", {side}.{quote_ident(c)} AS {quote_ident(c + '_' + side)}" for c in kept for side in "lr")
        return f"""
            WITH records AS ({records})
            SELECT c.entity_id, {', '.join('d.' + k for k in PAIR_KEY)}, d.match_probability, d.decided_by,
                d.judge_confidence, d.judge_reasoning{sides}
            FROM decisions_kept d
            JOIN records l ON l.source_dataset = d.source_dataset_l AND l.unique_id = d.unique_id_l
            JOIN records r ON r.source_dataset = d.source_dataset_r AND r.unique_id = d.unique_id_r
            JOIN clusters c ON c.source_dataset = d.source_dataset_l AND c.unique_id = d.unique_id_l
            WHERE d.final_match
            ORDER BY c.entity_id, {', '.join('d.' + k for k in PAIR_KEY)}"""

    def run(self) -> RunResult:
        """The whole loop: bootstrap, rounds, outputs."""
        self.bootstrap()
        self.score()
        self.run_rounds()
        return self.finish()

    def retrain(self, judge_band: bool = False) -> RunResult:
        """Retrain from the label store on the saved bootstrap model, re-score, re-route and rewrite the outputs.
        Needs a previous run's output directory. By default no judge is called, so applying human answers
        changes nothing else that costs money; `judge_band=True` also judges the band within judge.max_pairs."""
        boot = self.out / "model_bootstrap.json"
        if not boot.exists():
            raise FileNotFoundError(f"{boot} not found: run `splink-er run` with these settings first.")
        self.bootstrap(model_mod.load_model(boot))
        # Rules the run learned are in the saved model; the settings take them too (Spark builds its model from
        # them), and none are learned again.
        previous = self.out / "run.json"
        self.blocking_report = json.loads(previous.read_text()).get("blocking") or {} if previous.exists() else {}
        learned = self.blocking_report.get("chosen", [])
        self.settings.blocking_rules = self.settings.blocking_rules + [r for r in learned
                                                                       if r not in self.settings.blocking_rules]
        self.learn_blocking = False
        self.use_stored_answers()
        samples = self.out / "samples.parquet"
        if samples.exists():
            self.designs = pd.read_parquet(samples)
        if not judge_band:
            self.judge, self.judge_note, self.budget_left = None, "retrain without judging", 0
        self.score()
        self.run_rounds(sample_rounds=0, max_rounds=1)
        return self.finish()

    # ---- reporting -----------------------------------------------------------------------------------
    def _decision_counts(self) -> tuple[dict[str, int], int, list[dict]]:
        """Pairs per decided_by, the number of final matches, and pairs per (match weight bin, decided_by): one
        pass over every blocked pair, written or not."""
        rows = self.con.execute("SELECT floor(greatest(least(match_weight, 40), -40)) AS weight, decided_by, "
                                "count(*), count(*) FILTER (final_match) FROM decisions GROUP BY ALL ORDER BY 1, 2"
                                ).fetchall()
        decided: dict[str, int] = {}
        for _, d, n, _ in rows:
            decided[d] = decided.get(d, 0) + n
        histogram = [{"weight": w, "decided_by": d, "pairs": n} for w, d, n, _ in rows]
        return decided, sum(m for *_, m in rows), histogram

    def _run_record(self, metrics: dict, decided: dict[str, int], n_final: int) -> dict:
        blocked = sum(decided.values())
        usage = self.judge.usage.as_dict() if self.judge else {}
        (n_entities,) = self.con.execute("SELECT count(DISTINCT entity_id) FROM clusters").fetchall()[0]
        n_records = sum(self.loaded.row_counts.values())
        cost = usage.get("cost_usd", 0.0)
        return {
            "name": self.settings.name, "run_id": self.run_id, "link_type": self.settings.link_type,
            "input_sizes": self.loaded.row_counts, "input_hashes": self.loaded.input_hashes,
            "possible_pairs": self.n_possible, "blocked_pairs": blocked, "final_matches": n_final,
            "decided_by": decided, "model_rejects_written": self.rejects_written, "rounds": self.rounds, "training": self.training_reports,
            "judge": {"description": self.judge_description, "kind": self.settings.judge.kind,
                      "simulated": bool(self.judge and self.judge.simulated), "calls": usage.get("calls", 0),
                      "pairs_judged": usage.get("pairs", 0), "pairs_by_reason": self.asked_by_reason,
                      "pairs_reused_by_reason": self.reused_by_reason,
                      "max_pairs": self.settings.judge.max_pairs, "pairs_left": self.budget_left,
                      "cost_usd": cost, "cost_by_stage": self.cost_by_reason,
                      "cost_per_record": cost / n_records if n_records else 0.0,
                      "cost_per_entity": cost / n_entities if n_entities else 0.0,
                      "tokens_estimated": usage.get("tokens_estimated", False),
                      "unpriced_models": self.unpriced_models,
                      "method": self.judge.method if self.judge else None,
                      "decision_log": str(self.log.path), "usage": usage},
            "entities": n_entities,
            "metrics": metrics, "audit": self.audit_result, "blocking": self.blocking_report, "wall_seconds": self.timings | {"total": round(time.time() - self.started, 3)},
            "versions": {p: version(p) for p in ("splink_er", "splink", "duckdb", "pandas")},
            "settings_hash": self.settings.fingerprint(), "settings": self.settings.model_dump(),
            "label_store": str(self.store.path), "outputs": str(self.out),
        }

    def _print_summary(self, run: dict) -> None:
        c = self.console
        j = run["judge"]
        c.print(f"[bold]done[/] in {run['wall_seconds']['total']:.1f}s: {run['blocked_pairs']:,} blocked pairs, "
                f"{run['final_matches']:,} matches; decided by {run['decided_by']}")
        u = j["usage"]
        tokens = (f"; tokens in/out {u['input_tokens']:,}/{u['output_tokens']:,}"
                  + (" (estimated: simulated judge)" if j["tokens_estimated"] else f", cost ${j['cost_usd']:.4f}")
                  if u else "")
        c.print(f"judge: {j['description']}: {j['calls']} calls, {j['pairs_judged']} pairs judged "
                f"{j['pairs_by_reason']}, {sum(j['pairs_reused_by_reason'].values())} reused{tokens}")
        if run["metrics"]:
            m = run["metrics"]
            c.print(f"against truth ({self.settings.truth_column}): precision {m['precision']:.4f}, recall "
                    f"{m['recall']:.4f}, F1 {m['f1']:.4f} (blocking recall {m['blocking_recall']:.4f})")
        a = run.get("audit") or {}
        if a.get("f1"):
            fmt = lambda k: f"{a[k]['estimate']:.4f} [{a[k]['ci95'][0]:.4f}, {a[k]['ci95'][1]:.4f}]"  # noqa: E731
            c.print(f"estimated from the audit ({a['pairs_judged']} judged pairs, no truth needed), within "
                    f"blocking: precision {fmt('precision')}, recall {fmt('recall')}, F1 {fmt('f1')} (95% intervals)")
            if a.get("outside_blocking"):
                o = a["outside_blocking"]
                c.print(f"outside blocking: {o['matches_found']} matches in {o['random_pairs_judged']} random pairs "
                        f"(at most ~{o['upper_95']:,} missed matches, 95%)")
        if not run["model_rejects_written"]:
            c.print(f"decisions.parquet lists every pair but the {run['decided_by'].get('model_reject', 0):,} model "
                    "rejects, which are counted in run.json (outputs.model_rejects: rows writes them)")
        c.print(f"outputs: {self.out}/ (report.html, matches.parquet, decisions.parquet, clusters.parquet, run.json, decision_log.jsonl); "
                f"labels: {self.store.path}")


def prepare(settings, *, data: dict | None = None, judge: Judge | None = None, overrides: list[str] | None = None,
            quiet: bool = False, spark=None) -> Job:
    """Load settings and sources, validate them, and return a Job ready for its steps.
    `spark`: a SparkSession to use with engine.kind spark (e.g. Databricks' `spark`) instead of starting one."""
    return Job(load_settings(settings, overrides), data=data, judge=judge, quiet=quiet, spark=spark)


def prepare_for_outputs(settings, overrides: list[str] | None = None) -> Job:
    """A quiet Job for commands that read a finished run's outputs (explain, review). DuckDB whatever engine.kind
    says: they score a handful of pairs, and Spark's numbers are DuckDB's (tests/test_spark.py)."""
    return prepare(settings, overrides=[*(overrides or []), "engine.kind=duckdb"], quiet=True)


def run(settings, *, data: dict | None = None, judge: Judge | None = None, overrides: list[str] | None = None,
        quiet: bool = False, spark=None) -> RunResult:
    """Run the whole loop and write the outputs.

    Example:
        >>> import splink_er
        >>> result = splink_er.run(splink_er.demo_settings_path(), overrides=["output_dir=/tmp/se_run",
        ...                        "labels.path=/tmp/se_run/labels.jsonl"], quiet=True)
        >>> result.metrics["f1"] > 0.9
        True
    """
    return prepare(settings, data=data, judge=judge, overrides=overrides, quiet=quiet, spark=spark).run()


def retrain(settings, *, data: dict | None = None, judge: Judge | None = None, overrides: list[str] | None = None,
            quiet: bool = False, judge_band: bool = False, spark=None) -> RunResult:
    """Retrain from the label store, re-score and re-route; see Job.retrain."""
    return prepare(settings, data=data, judge=judge, overrides=overrides, quiet=quiet, spark=spark).retrain(judge_band)
