"""The Splink model: build it from settings, bootstrap it without labels, train it from labels, score pairs.

A model is a Splink settings dict with m/u values (what `save_model_to_json` writes); it is kept as a dict so
that training can edit m values and the prior directly and every round's model can be saved and reloaded exactly.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from . import comparisons as comparison_blocks
from .normalize import output_columns
from .settings import BlockingRule, ComparisonSettings, Settings
from .sources import columns_in_sql

PAIR_KEY = ["source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r"]


def pair_keys(frame: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """The pair key of every row of `frame`, as tuples (the form labels and judges use)."""
    return list(map(tuple, frame[PAIR_KEY].values))


def blocking_rule(rule: BlockingRule):
    """A settings blocking rule (list of columns, or SQL) as something Splink accepts."""
    return block_on(*rule) if isinstance(rule, list) else rule


def _comparison(c: ComparisonSettings, translate=None, translate_args=None):
    """A settings comparison as Splink takes it. `translate` rewrites custom SQL and `translate_args` library
    comparison arguments (date formats) for another engine; Splink writes library comparisons in each dialect."""
    if c.kind == "custom":
        levels = []
        for lv in c.levels or []:
            level = {"sql_condition": lv.sql, "label_for_charts": lv.label or lv.sql}
            if lv.null_level:
                level["is_null_level"] = True
            if lv.tf_adjustment_column:
                level |= {"tf_adjustment_column": lv.tf_adjustment_column, "tf_adjustment_weight": 1.0}
            levels.append(level)
        comp = {"output_column_name": c.output_column_name, "comparison_levels": levels}
    elif c.kind in comparison_blocks.BUILDERS:
        comp = comparison_blocks.build(c.kind, c.args)
    else:
        comp = getattr(cl, c.kind)(c.column, **(translate_args(c.args) if translate_args else c.args))
        return comp.configure(term_frequency_adjustments=True) if c.term_frequency_adjustments else comp
    if translate:
        for level in comp["comparison_levels"]:
            level["sql_condition"] = translate(level["sql_condition"])
    return comp


def make_db(settings: Settings) -> DuckDBAPI:
    """Splink's DuckDB engine as `engine` configures it: materialisation, memory limit, threads."""
    import duckdb

    e, path = settings.engine, settings.materialisation_path
    con = duckdb.connect()
    if e.memory_limit:
        path.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET memory_limit = '{e.memory_limit}'")
        con.execute(f"SET temp_directory = '{path / 'spill'}'")
    if e.threads:
        con.execute(f"SET threads = {int(e.threads)}")
    if e.materialisation == "table":
        return DuckDBAPI(connection=con)
    path.mkdir(parents=True, exist_ok=True)
    return DuckDBAPI(connection=con, materialisation="parquet", materialisation_dir=str(path))


def splink_settings_dict(settings: Settings, dialect: str = "duckdb", translate=None, translate_args=None) -> dict:
    """The untrained Splink settings dict for these settings; DuckDB SQL unless a Spark twin is asked for
    (`translate` rewrites custom and blocking-rule SQL, `translate_args` date formats; see spark_backend)."""
    creator = SettingsCreator(
        link_type=settings.link_type,
        comparisons=[_comparison(c, translate, translate_args) for c in settings.comparisons],
        blocking_rules_to_generate_predictions=[
            blocking_rule(r if isinstance(r, list) or translate is None else translate(r))
            for r in settings.blocking_rules],
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        # Both retained: gates are SQL over <col>_l/_r, and waterfall charts need the intermediate columns.
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
    )
    return creator.create_settings_dict(dialect)


def required_columns(settings: Settings, model: dict) -> set[str]:
    """Every input column the comparisons, blocking rules, bootstrap rules and gates read."""
    cols: set[str] = set()
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            cols |= columns_in_sql(level["sql_condition"])
            if level.get("tf_adjustment_column"):
                cols.add(level["tf_adjustment_column"])
    rules = settings.blocking_rules + settings.bootstrap.deterministic_rules + settings.bootstrap.em_blocking_rules
    for rule in rules:
        cols |= set(rule) if isinstance(rule, list) else columns_in_sql(rule)
    for gate in settings.routing.gates:
        cols |= columns_in_sql(gate.sql)
    # Columns every source prepares or derives are kept too: learned blocking builds candidate rules from them.
    declared = [set(src.derive) | {c for step in src.prepare for c in output_columns(step)} for src in settings.sources]
    truth = {settings.truth_column, settings.judge_truth_column} - {None}
    cols |= (set.intersection(*declared) - truth) if declared else set()
    return cols | set(settings.blocking.candidate_columns or [])


def make_linker(sdfs: list, model: dict) -> Linker:
    return Linker(sdfs, copy.deepcopy(model), log_level=logging.WARNING)


def bootstrap(sdfs: list, settings: Settings, model: dict, rule=blocking_rule) -> dict:
    """Unsupervised recipe: prior from deterministic rules, u by random sampling, m by EM. Needs no labels.
    `rule` turns a settings blocking rule into Splink's (the Spark backend passes one that transpiles SQL)."""
    b = settings.bootstrap
    linker = make_linker(sdfs, model)
    if b.deterministic_rules:
        linker.training.estimate_probability_two_random_records_match(
            [rule(r) for r in b.deterministic_rules], recall=b.recall
        )
    linker.training.estimate_u_using_random_sampling(max_pairs=b.u_max_pairs, seed=b.seed,
                                                     min_count_per_level=b.u_min_count_per_level)
    for r in b.em_blocking_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule(r))
    return stable_parameters(linker.misc.save_model_to_json())


def stable_parameters(model: dict, digits: int = 12) -> dict:
    """Round m, u and the prior to `digits` significant digits, in place.

    DuckDB sums in parallel, so EM's floating-point results differ between runs in the last bits; rounding
    them makes the same labels give the same model, scores and decisions on every run (replay relies on it).
    """
    def r(x):
        return float(f"{x:.{digits}g}") if isinstance(x, float) else x

    model["probability_two_random_records_match"] = r(model.get("probability_two_random_records_match"))
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            for k in ("m_probability", "u_probability"):
                if k in level:
                    level[k] = r(level[k])
    return model


def _levels_with_cvv(comparison: dict) -> list[tuple[int, dict]]:
    """(comparison vector value, level) pairs: null level -1, the rest count down to 0 as Splink numbers them."""
    non_null = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
    out, k = [], len(non_null) - 1
    for lv in comparison["comparison_levels"]:
        if lv.get("is_null_level"):
            out.append((-1, lv))
        else:
            out.append((k, lv))
            k -= 1
    return out


def weight_shift_sql(before: dict, after: dict) -> str:
    """SQL over a scores table: how much each pair's match weight moved from model `before` to `after` (same
    comparisons, u and term frequencies; only m and the prior differ after training), read off the gamma columns
    instead of predicting again."""
    def logit2(p: float) -> float:
        return math.log2(p / (1 - p))

    terms = [repr(logit2(after["probability_two_random_records_match"])
                  - logit2(before["probability_two_random_records_match"]))]
    for cb, ca in zip(before["comparisons"], after["comparisons"], strict=True):
        whens = []
        for (cvv, lb), (_, la) in zip(_levels_with_cvv(cb), _levels_with_cvv(ca), strict=True):
            mb, ma = lb.get("m_probability"), la.get("m_probability")
            if cvv != -1 and mb and ma and mb != ma:
                whens.append(f"WHEN {cvv} THEN {math.log2(ma / mb)!r}")
        if whens:
            terms.append(f"CASE gamma_{ca['output_column_name']} {' '.join(whens)} ELSE 0 END")
    return " + ".join(terms)


@dataclass
class TrainingReport:
    used_labels: bool
    positives: int
    negatives: int
    prior: float
    prior_source: str
    reason: str


def train_from_labels(
    con,
    scores_table: str,
    labels: pd.DataFrame,
    designs: pd.DataFrame,
    base_model: dict,
    settings: Settings,
    n_possible_pairs: int,
) -> tuple[dict, TrainingReport]:
    """m per level from the labelled positives, smoothed towards the base model; prior from the weighted sample.

    Splink's `estimate_m_from_pairwise_labels` treats every label as a match, so it is not used: negatives
    would corrupt m. Here m[level] = (n * m_hat + a * m_base) / (n + a), where m_hat is the share of the
    (inclusion-weighted) positives at that level among positives with a non-null value, n is their count and
    a is `training.smoothing`; levels no label reached stay near the bootstrap's EM value, not Splink's default.
    u stays as random sampling estimated it. The prior is the Horvitz-Thompson estimate of matches among
    blocked pairs (sample labels weighted by 1/inclusion probability, averaged over sampling rounds) divided
    by the number of possible pairs.

    `labels`: the pair key and match (bool), one row per pair. `designs`: the pair key, design (one id per
    sampling round) and inclusion_probability of every sampled pair. A positive's weight is 1/pi from its
    latest sampling round, or 1 for pairs labelled outside a sample (band, conflict, human).
    """
    model = copy.deepcopy(base_model)
    labels = labels.copy()
    labels["match"] = labels["match"].astype(bool)
    latest = designs.drop_duplicates(PAIR_KEY, keep="last")[PAIR_KEY + ["inclusion_probability"]]
    labels = labels.merge(latest, on=PAIR_KEY, how="left")
    labels["weight"] = 1.0 / labels["inclusion_probability"].astype(float).fillna(1.0)
    pos = labels[labels["match"]]
    report = TrainingReport(False, len(pos), int((~labels["match"]).sum()), model["probability_two_random_records_match"], "bootstrap", "")
    if len(pos) < settings.training.min_positive_labels:
        report.reason = f"{len(pos)} positive labels < training.min_positive_labels={settings.training.min_positive_labels}: kept the bootstrap model"
        return model, report

    gamma_cols = [f"gamma_{c['output_column_name']}" for c in model["comparisons"]]
    con.register("positive_labels", pos[PAIR_KEY + ["weight"]])
    try:
        vectors = con.execute(
            f"SELECT p.weight, {', '.join('s.' + g for g in gamma_cols)} FROM positive_labels p "
            f"JOIN {scores_table} s USING ({', '.join(PAIR_KEY)})"
        ).df()
    finally:
        con.unregister("positive_labels")
    a = settings.training.smoothing
    for comp, gcol in zip(model["comparisons"], gamma_cols):
        seen = vectors[vectors[gcol] != -1]
        n, total_w = len(seen), seen["weight"].sum()
        for cvv, level in _levels_with_cvv(comp):
            if cvv == -1:
                continue
            m_hat = seen.loc[seen[gcol] == cvv, "weight"].sum() / total_w if total_w > 0 else 0.0
            m_base = level.get("m_probability")
            if m_base is None:  # never estimated by EM: fall back to the label estimate alone
                m_base = m_hat
            level["m_probability"] = max((n * m_hat + a * m_base) / (n + a) if (n + a) > 0 else m_base, 1e-6)

    sample = designs.merge(labels[PAIR_KEY + ["match"]], on=PAIR_KEY, how="inner")
    if len(sample):
        sample["ht"] = sample["match"].astype(float) / sample["inclusion_probability"].astype(float)
        # Every design's rounds are summed by HT, then averaged; a design's unlabelled pairs count as unknown.
        est_matches = float(sample.groupby("design")["ht"].sum().mean())
        prior = min(max(est_matches / max(n_possible_pairs, 1), 1e-9), 0.5)
        model["probability_two_random_records_match"] = prior
        report.prior, report.prior_source = prior, f"labels ({len(sample)} sampled pairs, {est_matches:.0f} estimated matches)"
    report.used_labels = True
    report.reason = f"m from {len(vectors)} positive labels (smoothing {a})"
    return stable_parameters(model), report


def drop_relation(con, name: str) -> None:
    """Drop a table or view of this name, whichever it is (outputs switch between the two by job size)."""
    for (kind,) in con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name]).fetchall():
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {name}")


def score(db: DuckDBAPI, sdfs: list, model: dict, settings: Settings, table: str = "scores", previous=None,
          spark=None):
    """Predict every blocked pair; `table` becomes a view over Splink's prediction with the full pair key for
    every job type. A view, not a copy: at 10M pairs a copy cost as much time as predict and most of the memory.
    With `spark` (a SparkBackend) Spark predicts and the view reads its Parquet output.
    Returns the prediction (a SplinkDataFrame, or Spark's Parquet directory); `previous` (the last one) is
    dropped once the view moved on."""
    if spark is not None:
        pred = spark.predict(model)
        source = f"read_parquet('{pred}/*.parquet')"
    else:
        pred = make_linker(sdfs, model).inference.predict()
        source = pred.physical_name
    con = db.duckdb_con
    if settings.link_type == "dedupe_only":
        # Splink omits source_dataset for one input; add it so the pair key is the same for every job type.
        name = settings.sources[0].name.replace("'", "''")
        extra = f"'{name}' AS source_dataset_l, '{name}' AS source_dataset_r, "
    else:
        extra = ""
    drop_relation(con, table)
    con.execute(f"CREATE VIEW {table} AS SELECT {extra}* FROM {source}")
    if previous is not None and spark is not None:
        spark.drop_prediction(previous)
    elif previous is not None:
        previous.drop_table_from_database_and_remove_from_cache()
    return pred


def save_model(model: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(model, indent=2))
    tmp.replace(path)  # atomic: a killed run never leaves half a model


def load_model(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def possible_pairs(settings: Settings, row_counts: dict[str, int]) -> int:
    """Number of record pairs the job could compare without blocking (the prior's denominator)."""
    n = list(row_counts.values())
    if settings.link_type == "dedupe_only":
        return n[0] * (n[0] - 1) // 2
    if settings.link_type == "link_only":
        total = sum(n)
        return (total * total - sum(x * x for x in n)) // 2
    total = sum(n)
    return total * (total - 1) // 2
