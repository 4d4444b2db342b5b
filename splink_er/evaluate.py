"""Pairwise metrics against a ground-truth column (benchmarks, simulated runs, the demo).

The denominator of recall is every true pair of the job, including those blocking never proposed, so blocking
misses count as errors (they are reported separately as blocking recall).
"""

from __future__ import annotations

from . import audit as audit_mod
from . import routing
from .judging import Answers, Budget
from .pairs import PAIR_KEY, pair_keys
from .settings import Settings
from .sources import LoadedSources
from .sql import pairs_in_groups, quote_ident


def _truth_union(loaded: LoadedSources, truth: str) -> str:
    return " UNION ALL ".join(
        f"SELECT source_dataset, unique_id, CAST({quote_ident(truth)} AS VARCHAR) AS t FROM {tbl}"
        for tbl in loaded.tables.values()
    )


def true_pair_count(con, loaded: LoadedSources, settings: Settings, truth: str) -> int:
    """Number of true pairs the job should find (pairs of records sharing a truth value, job type respected)."""
    counts = (
        f"SELECT t, source_dataset, count(*) AS n FROM ({_truth_union(loaded, truth)}) WHERE t IS NOT NULL GROUP BY ALL"
    )
    per_entity = f"SELECT sum(n) AS tot, sum(n * n) AS sq FROM ({counts}) GROUP BY t"
    squares, parts, total = con.execute(f"SELECT sum(tot * tot), sum(sq), sum(tot) FROM ({per_entity})").fetchall()[0]
    return pairs_in_groups(settings.link_type, squares or 0, parts or 0, total or 0)


def _with_truth_sql(loaded: LoadedSources, truth: str, pairs_sql: str) -> str:
    """SQL: the rows of `pairs_sql` (with the pair key), each with `is_true`: its two records share a truth value."""
    return f"""
        WITH tr AS ({_truth_union(loaded, truth)})
        SELECT p.*, (a.t IS NOT NULL AND a.t = b.t) AS is_true FROM ({pairs_sql}) p
        JOIN tr a ON a.source_dataset = p.source_dataset_l AND a.unique_id = p.unique_id_l
        JOIN tr b ON b.source_dataset = p.source_dataset_r AND b.unique_id = p.unique_id_r"""


def blocked_true_pairs(con, loaded: LoadedSources, settings: Settings, pairs_sql: str) -> int:
    """How many of the pairs of `pairs_sql` are true (the numerator of blocking recall)."""
    judged = _with_truth_sql(loaded, settings.truth_column, pairs_sql)
    return con.execute(f"SELECT count(*) FILTER (is_true) FROM ({judged})").fetchall()[0][0]


def pairwise_metrics(
    con,
    loaded: LoadedSources,
    settings: Settings,
    pairs_sql: str,
    predicted_sql: str,
    n_true: int | None = None,
    blocked_true: int | None = None,
) -> dict:
    """Precision, recall and F1 of `predicted_sql` (a boolean expression) over the pairs of `pairs_sql`.

    `pairs_sql` is a query yielding the pair key and the columns `predicted_sql` reads (e.g. decisions).
    `blocked_true`: how many of those pairs are true, when known (`blocked_true_pairs`): then only the predicted
    pairs are looked up in the truth, a few thousand instead of every scored pair.
    """
    truth = settings.truth_column
    if truth is None:
        return {}
    if n_true is None:
        n_true = true_pair_count(con, loaded, settings, truth)
    flagged = f"SELECT {', '.join(PAIR_KEY)}, ({predicted_sql}) AS predicted FROM ({pairs_sql})"
    looked_up = f"SELECT * FROM ({flagged}) WHERE predicted" if blocked_true is not None else flagged
    tp, pp, found_true = con.execute(f"""
        SELECT count(*) FILTER (predicted AND is_true), count(*) FILTER (predicted), count(*) FILTER (is_true)
        FROM ({_with_truth_sql(loaded, truth, looked_up)})""").fetchall()[0]
    if blocked_true is None:
        blocked_true = found_true
    precision = tp / pp if pp else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "true_positives": tp,
        "false_positives": pp - tp,
        "false_negatives": n_true - tp,
        "true_pairs": n_true,
        "blocking_recall": round(blocked_true / n_true, 6) if n_true else 1.0,
    }


class Evaluation:
    """The evaluation component of a job (see `Job.evaluation`): metrics against truth, the accuracy the model
    expects of its decisions, and the audit that needs neither."""

    def __init__(self, session) -> None:
        self.session = session
        self._true_pairs: int | None = None
        self._blocked_true: tuple | None = None  # (pair set, how many of its pairs are true)

    def metrics(self, decisions, pair_set: tuple | None = None) -> dict:
        """Precision, recall and F1 of the final decisions against `truth_column` ({} without one). `pair_set`:
        what fixes which pairs `decisions` holds (`Inference.pair_set`); the true pairs among them are counted
        once per pair set, and each round then looks up only its predicted matches in the truth."""
        with self.session.clock.stage("evaluate"):
            return self.metrics_for_scores(decisions, "final_match", pair_set)

    def metrics_for_scores(self, table, predicted_sql: str, pair_set: tuple | None = None) -> dict:
        """Metrics of a rule over a scored relation, e.g. plain Splink: (job.inference.scores,
        "match_probability >= 0.5")."""
        s = self.session
        truth = s.settings.truth_column
        if not truth:
            return {}
        if self._true_pairs is None:
            self._true_pairs = true_pair_count(s.con, s.loaded, s.settings, truth)
        pairs = f"SELECT * FROM {table}"
        blocked_true = None
        if pair_set is not None:
            if self._blocked_true is None or self._blocked_true[0] != pair_set:
                self._blocked_true = (pair_set, blocked_true_pairs(s.con, s.loaded, s.settings, pairs))
            blocked_true = self._blocked_true[1]
        return pairwise_metrics(s.con, s.loaded, s.settings, pairs, predicted_sql, self._true_pairs, blocked_true)

    def expected_accuracy(self, decisions, routed, budget_left: int) -> dict:
        """Precision, recall and F1 the model expects of the current decisions (a judged pair counts as its
        answer, any other pair as a match with its probability), and the F1 the next round's band answers would
        add if the probabilities are right: the stopping rule's estimate. Model-based, so only as good as the
        model's calibration; the audit (audit.size) is the estimate that needs no trust in the model."""
        settings = self.session.settings
        limit = min(budget_left, settings.loop.band_per_round or budget_left)
        tp, fp, fn, fix_fp, fix_fn = self.session.con.execute(f"""
            WITH d AS (SELECT final_match, {audit_mod.EXPECTED_SQL} AS p FROM {decisions}),
            nxt AS (SELECT match_probability AS p, match_probability >= 0.5 AS final_match
                    FROM ({routing.judge_queue_sql(str(routed), settings, limit, settings.selection_questions)}))
            SELECT (SELECT sum(p) FILTER (final_match) FROM d), (SELECT sum(1 - p) FILTER (final_match) FROM d),
                   (SELECT sum(p) FILTER (NOT final_match) FROM d),
                   (SELECT coalesce(sum(1 - p) FILTER (final_match), 0) FROM nxt),
                   (SELECT coalesce(sum(p) FILTER (NOT final_match), 0) FROM nxt)""").fetchall()[0]
        tp, fp, fn = tp or 0.0, fp or 0.0, fn or 0.0
        precision, recall, now = audit_mod.metrics_from_totals((tp, fp, fn))
        after = audit_mod.metrics_from_totals((tp + fix_fn, fp - fix_fp, fn - fix_fn))[2]
        return {
            "precision": round(precision, 4) if tp + fp else 1.0,
            "recall": round(recall, 4) if tp + fn else 1.0,
            "f1": round(now, 4),
            "next_round_f1_gain": round(after - now, 5) if limit > 0 else 0.0,
        }

    def audit(self, decisions, judging, round_no: int) -> dict:
        """Judge a stratified sample of the final decisions (plus a probe outside blocking) and estimate precision,
        recall and F1 with 95% intervals: accuracy without ground truth. Its answers go to a ledger of its own
        with a budget of its own: they never train or route anything."""
        s = self.session
        if not s.settings.audit.size or judging.judge is None:
            return {}
        with s.clock.stage("audit"):
            sample = audit_mod.draw(s.con, str(decisions), s.settings, s.loaded.tables, s.n_possible)
        if sample.empty:
            return {}
        human = judging.store.human()  # a person's answer is the best truth an audit can have
        answers = Answers({k: {"match": m} for k, m in zip(pair_keys(human), human["match"])} if len(human) else {})
        stats = judging.ask(sample, reason="audit", round_no=round_no, answers=answers, budget=Budget(len(sample)))
        sample["match"] = [answers.by_key[k]["match"] if k in answers else None for k in pair_keys(sample)]
        with s.clock.stage("audit"):
            return audit_mod.estimate(sample, seed=s.settings.audit.seed) | {
                "pairs": len(sample),
                "asked": stats["asked"],
                "reused": stats["reused"],
            }
