"""Pairwise metrics against a ground-truth column (benchmarks, simulated runs, the demo).

The denominator of recall is every true pair of the job, including those blocking never proposed, so blocking
misses count as errors (they are reported separately as blocking recall).
"""

from __future__ import annotations

from .model import PAIR_KEY
from .settings import Settings
from .sources import LoadedSources, quote_ident


def _truth_union(loaded: LoadedSources, truth: str) -> str:
    return " UNION ALL ".join(
        f"SELECT source_dataset, unique_id, CAST({quote_ident(truth)} AS VARCHAR) AS t FROM {tbl}" for tbl in loaded.tables.values()
    )


def true_pair_count(con, loaded: LoadedSources, settings: Settings, truth: str) -> int:
    """Number of true pairs the job should find (pairs of records sharing a truth value, job type respected)."""
    counts = f"SELECT t, source_dataset, count(*) AS n FROM ({_truth_union(loaded, truth)}) WHERE t IS NOT NULL GROUP BY ALL"
    if settings.link_type == "dedupe_only":
        sql = f"SELECT sum(n * (n - 1) / 2) FROM ({counts})"
    elif settings.link_type == "link_only":
        sql = f"SELECT sum((tot * tot - sq) / 2) FROM (SELECT t, sum(n) AS tot, sum(n * n) AS sq FROM ({counts}) GROUP BY t)"
    else:
        sql = f"SELECT sum(tot * (tot - 1) / 2) FROM (SELECT t, sum(n) AS tot FROM ({counts}) GROUP BY t)"
    return int(con.execute(sql).fetchall()[0][0] or 0)


def pairwise_metrics(con, loaded: LoadedSources, settings: Settings, pairs_sql: str, predicted_sql: str,
                     n_true: int | None = None) -> dict:
    """Precision, recall and F1 of `predicted_sql` (a boolean expression) over the pairs of `pairs_sql`.

    `pairs_sql` is a query yielding the pair key and the columns `predicted_sql` reads (e.g. decisions).
    """
    truth = settings.truth_column
    if truth is None:
        return {}
    if n_true is None:
        n_true = true_pair_count(con, loaded, settings, truth)
    k = ", ".join(PAIR_KEY)
    tp, pp, blocked_true = con.execute(f"""
        WITH tr AS ({_truth_union(loaded, truth)}),
        p AS (SELECT {k}, ({predicted_sql}) AS predicted FROM ({pairs_sql})),
        j AS (
            SELECT p.predicted, (a.t IS NOT NULL AND a.t = b.t) AS is_true FROM p
            JOIN tr a ON a.source_dataset = p.source_dataset_l AND a.unique_id = p.unique_id_l
            JOIN tr b ON b.source_dataset = p.source_dataset_r AND b.unique_id = p.unique_id_r
        )
        SELECT count(*) FILTER (predicted AND is_true), count(*) FILTER (predicted), count(*) FILTER (is_true) FROM j
    """).fetchall()[0]
    precision = tp / pp if pp else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
        "true_positives": tp, "false_positives": pp - tp, "false_negatives": n_true - tp,
        "true_pairs": n_true, "blocking_recall": round(blocked_true / n_true, 6) if n_true else 1.0,
    }
