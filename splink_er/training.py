"""Training: the unsupervised bootstrap, and Splink's match weights trained from labels.

`bootstrap` is Splink's unsupervised recipe. `train_from_labels` re-estimates m from labelled matches
(`training.method: m_from_labels`). `train_logistic` (the default, `training.method: logistic`) is discriminative:

Fellegi-Sunter adds one weight per comparison level as if the comparisons were independent given the match
status. They are not (a typo'd name and a typo'd e-mail come together), so the summed weights double count, and
re-estimating m from labelled matches alone cannot fix it. Here the labels fit a logistic regression whose offset
is the bootstrap model's match weight (prior, levels and term-frequency adjustments) and whose coefficients are
one correction per comparison level plus one for the prior:

    logit P(match) = ln2 * w_bootstrap(pair) + b0 + sum over comparisons of b[c, level(pair, c)]

with an L2 penalty pulling every correction to 0, i.e. towards the bootstrap model, so levels few labels reach
keep their EM weight. The fit is written back into the Splink model exactly: m[c, l] *= exp(b[c, l]) and the
prior's log-odds move by b0, so Splink's own predict, waterfall charts and explain show the trained weights.
u (and so the term-frequency adjustments, which Splink derives from u) is untouched. After this, m_probability is
the slot for the level's Bayes factor m/u and may exceed 1: it is a fitted factor, no longer a share of matches.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from .errors import SettingsError
from .model import blocking_rule, levels_with_cvv, make_linker
from .model_file import frozen_model
from .pairs import PAIR_KEY
from .routing import rule_accepted_pairs
from .settings import Settings
from .sql import registered


def bootstrap(sdfs: list, settings: Settings, model: dict, rule=blocking_rule) -> dict:
    """Unsupervised recipe: prior from deterministic rules, u by random sampling, m by EM. Needs no labels.
    `rule` turns a settings blocking rule into Splink's (the Spark backend passes one that transpiles SQL)."""
    b = settings.bootstrap
    linker = make_linker(sdfs, model)
    if b.deterministic_rules:
        try:
            linker.training.estimate_probability_two_random_records_match(
                [rule(r) for r in b.deterministic_rules], recall=b.recall
            )
        except ValueError as e:  # Splink: the rules pass more pairs than the recall allows (tiny or odd data)
            raise SettingsError(
                f"bootstrap.deterministic_rules: {str(e).splitlines()[0]} Lower bootstrap.recall, or make the rules "
                "stricter (they should pass almost only true matches)."
            ) from None
    linker.training.estimate_u_using_random_sampling(
        max_pairs=b.u_max_pairs, seed=b.seed, min_count_per_level=b.u_min_count_per_level
    )
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


def weight_shift_sql(before: dict, after: dict) -> str:
    """SQL over a scores table: how much each pair's match weight moved from model `before` to `after` (same
    comparisons, u and term frequencies; only m and the prior differ after training), read off the gamma columns
    instead of predicting again."""

    def logit2(p: float) -> float:
        return math.log2(p / (1 - p))

    terms = [
        repr(
            logit2(after["probability_two_random_records_match"])
            - logit2(before["probability_two_random_records_match"])
        )
    ]
    for cb, ca in zip(before["comparisons"], after["comparisons"], strict=True):
        whens = []
        for (cvv, lb), (_, la) in zip(levels_with_cvv(cb), levels_with_cvv(ca), strict=True):
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
    labelled_table: str | None = None,
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
    report = TrainingReport(
        False, len(pos), int((~labels["match"]).sum()), model["probability_two_random_records_match"], "bootstrap", ""
    )
    if len(pos) < settings.training.min_positive_labels:
        report.reason = f"{len(pos)} positive labels < training.min_positive_labels={settings.training.min_positive_labels}: kept the bootstrap model"
        return model, report

    gamma_cols = [f"gamma_{c['output_column_name']}" for c in model["comparisons"]]
    with registered(con, "positive_labels", pos[PAIR_KEY + ["weight"]]):
        vectors = con.execute(
            f"SELECT p.weight, {', '.join('s.' + g for g in gamma_cols)} FROM positive_labels p "
            f"JOIN {labelled_table or scores_table} s USING ({', '.join(PAIR_KEY)}) ORDER BY ALL"
        ).df()
    a = settings.training.smoothing
    for comp, gcol in zip(model["comparisons"], gamma_cols):
        seen = vectors[vectors[gcol] != -1]
        n, total_w = len(seen), seen["weight"].sum()
        for cvv, level in levels_with_cvv(comp):
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
        # Pairs an accept rule decides are never sampled (routing.decided_by_rules_sql), yet are matches.
        est_matches += rule_accepted_pairs(con, scores_table, settings)
        prior = min(max(est_matches / max(n_possible_pairs, 1), 1e-9), 0.5)
        model["probability_two_random_records_match"] = prior
        report.prior, report.prior_source = (
            prior,
            f"labels ({len(sample)} sampled pairs, {est_matches:.0f} estimated matches)",
        )
    report.used_labels = True
    report.reason = f"m from {len(vectors)} positive labels (smoothing {a})"
    return stable_parameters(model), report


LN2 = math.log(2)


def _fit(
    offset: np.ndarray, x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float, noise: float = 0.0
) -> np.ndarray:
    """Weighted, penalised logistic regression with an offset: intercept (unpenalised), then one coefficient per
    column of x. With `noise` > 0 the likelihood allows that share of answers to be wrong (P(y = 1) =
    noise + (1 - 2 noise) sigmoid(z), Copas' robust logistic regression): one wrong answer on a pair the model is
    sure of costs at most -log(noise) instead of pulling the weights without bound."""

    def loss(beta):
        z = offset + beta[0] + x @ beta[1:]
        s = expit(z)
        p = noise + (1 - 2 * noise) * s
        if noise > 0:
            nll = -(y * np.log(p) + (1 - y) * np.log1p(-p))
            dz = (1 - 2 * noise) * s * (1 - s) * (p - y) / (p * (1 - p))
        else:  # the plain loss, computed stably: log(1 + e^z) - y z
            nll = np.logaddexp(0, z) - y * z
            dz = s - y
        r = weight * dz
        grad = np.concatenate([[r.sum()], x.T @ r + l2 * beta[1:]])
        return weight @ nll + 0.5 * l2 * beta[1:] @ beta[1:], grad

    res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    return res.x


def train_logistic(
    con,
    scores_table: str,
    labels: pd.DataFrame,
    designs: pd.DataFrame,
    base_model: dict,
    current_model: dict,
    settings: Settings,
) -> tuple[dict, TrainingReport]:
    """Corrections to `base_model`'s weights fitted on `labels` (pair key, match), read off `scores_table`, which
    was scored by `current_model`. Returns the trained model and a report."""
    model = copy.deepcopy(base_model)
    labels = labels.assign(match=labels["match"].astype(bool))
    n_pos, n_neg = int(labels["match"].sum()), int((~labels["match"]).sum())
    report = TrainingReport(False, n_pos, n_neg, model["probability_two_random_records_match"], "bootstrap", "")
    if n_pos < settings.training.min_positive_labels or n_neg < settings.training.min_positive_labels:
        report.reason = (
            f"{n_pos} positive / {n_neg} negative labels: training.method logistic needs "
            f"training.min_positive_labels={settings.training.min_positive_labels} of each; kept the "
            "bootstrap model"
        )
        return model, report
    comps = model["comparisons"]
    gammas = [f"gamma_{c['output_column_name']}" for c in comps]
    # The bootstrap weight of each labelled pair: the current weight minus what the last training added.
    shift = weight_shift_sql(base_model, current_model)
    # Design weights: a sampled pair stands for 1/pi pairs like it; a band or conflict answer for itself (the
    # judged band is every pair of its region the budget reached). Scaled to a mean of 1, so the penalty keeps
    # its meaning whatever the sample sizes.
    latest = designs.drop_duplicates(PAIR_KEY, keep="last")[PAIR_KEY + ["inclusion_probability"]]
    labels = labels.merge(latest, on=PAIR_KEY, how="left")
    labels["weight"] = 1.0
    if settings.training.weighting == "design":
        labels["weight"] = 1.0 / labels["inclusion_probability"].astype(float).fillna(1.0)
    with registered(con, "training_labels", labels[PAIR_KEY + ["match", "weight"]]):
        rows = con.execute(
            f"SELECT l.match, l.weight, s.match_weight - ({shift}) AS base_weight, "
            f"{', '.join('s.' + g for g in gammas)} "
            f"FROM training_labels l JOIN {scores_table} s USING ({', '.join(PAIR_KEY)}) "
            "ORDER BY ALL"  # the fit sums in row order: the same labels, the same model
        ).df()
    # One correction per level that has an m to carry it (a level EM never reached keeps Splink's default).
    columns = [
        (ci, cvv)
        for ci, c in enumerate(comps)
        for cvv, level in levels_with_cvv(c)
        if cvv != -1 and level.get("m_probability") is not None
    ]
    x = np.column_stack([(rows[gammas[ci]].to_numpy() == cvv).astype(float) for ci, cvv in columns])
    offset = np.clip(rows["base_weight"].to_numpy(float), -60, 60) * LN2
    weight = rows["weight"].to_numpy(float)
    beta = _fit(
        offset,
        x,
        rows["match"].to_numpy(float),
        weight * len(weight) / weight.sum(),
        settings.training.l2,
        settings.training.label_noise,
    )
    by_level = dict(zip(columns, beta[1:]))
    for ci, c in enumerate(comps):
        for cvv, level in levels_with_cvv(c):
            if (ci, cvv) in by_level:
                level["m_probability"] = level["m_probability"] * math.exp(by_level[(ci, cvv)])
    prior = model["probability_two_random_records_match"]
    log_odds = math.log(prior / (1 - prior)) + beta[0]
    model["probability_two_random_records_match"] = 1 / (1 + math.exp(-log_odds))
    report.used_labels, report.prior = True, model["probability_two_random_records_match"]
    report.prior_source = "logistic fit"
    report.reason = (
        f"logistic corrections from {len(rows)} labels ({n_pos} matches), L2 {settings.training.l2}; "
        f"largest |correction| {np.abs(beta[1:]).max() / LN2:.2f} bits"
    )
    return stable_parameters(model), report


class Training:
    """The training component of a job (see `Job.training`): the bootstrap model, the current model and what each
    training did. Models are Splink settings dicts with m/u values, so every round's model saves and reloads
    exactly and Splink predicts and explains it."""

    def __init__(self, session) -> None:
        self.session = session
        self.bootstrap_model: dict | None = None
        self.model: dict | None = None
        self.previous_model: dict | None = None  # the model before the last training that changed it
        self.reports: list[dict] = []
        self.frozen: dict = {}  # where a frozen model came from (settings.model): path, sha256, its run

    def bootstrap(self, model: dict | None = None) -> dict:
        """Unsupervised model (prior from deterministic rules, u by random sampling, EM), or a given model, or the
        frozen model of `settings.model` (never retrained)."""
        s = self.session
        if model is None and s.settings.model:
            model, self.frozen = frozen_model(s.untrained_model, s.settings.model)
            s.reporter.info(f"frozen model {s.settings.model} (sha256 {self.frozen['sha256'][:12]}): not retrained")
        with s.clock.stage("bootstrap"), s.reporter.status("bootstrap: prior, u sampling, EM"):
            self.bootstrap_model = model if model is not None else s.backend.bootstrap(s.untrained_model)
        self.model = self.bootstrap_model
        return self.model

    def train(self, scores, labels: pd.DataFrame, designs: pd.DataFrame, round_no: int, scores_of=None) -> dict:
        """Retrain the match weights from `labels` (`training.method`), starting from the bootstrap model.
        `scores_of(keys)`: a relation with the scores of at least the pairs of `keys` (a DataFrame of pair keys),
        cheaper to join than every scored pair; by default `scores` itself."""
        s = self.session
        if self.frozen:  # settings.model: score with it as it is
            report = TrainingReport(False, 0, 0, self.model["probability_two_random_records_match"], "frozen", "")
            report.reason = f"frozen model {self.frozen['path']}: not retrained"
            self.reports.append({"round": round_no, **report.__dict__})
            return report.__dict__
        before = self.model
        labels = self._labels_for_training(labels)
        with s.clock.stage("train"):
            labelled = str(scores_of(labels[PAIR_KEY]) if scores_of is not None and len(labels) else scores)
            if s.settings.training.method == "logistic":
                self.model, report = train_logistic(
                    s.con, labelled, labels, designs, self.bootstrap_model, self.model, s.settings
                )
            else:
                self.model, report = train_from_labels(
                    s.con, str(scores), labels, designs, self.bootstrap_model, s.settings, s.n_possible, labelled
                )
        if self.model != before:
            self.previous_model = before
        self.reports.append({"round": round_no, **report.__dict__})
        return report.__dict__

    def _labels_for_training(self, labels: pd.DataFrame) -> pd.DataFrame:
        floor = self.session.settings.routing.min_judge_confidence
        if len(labels) and floor > 0:  # an unsure judge answer is not final (needs_review), so it does not teach
            unsure = labels["source_kind"].eq("judge") & (labels["confidence"].astype(float) < floor)
            labels = labels[~unsure]
        if self.session.settings.training.method == "logistic" and len(labels):
            # One-to-one conflicts (and accepted pairs asked only as a selection question's candidates) are
            # confident pairs sharing a record: their answers settle which candidate wins, not what a level is
            # worth; fitted, they would teach that confident pairs are often wrong.
            labels = labels[~labels["reason"].isin(["conflict", "selection"])]
        return labels[PAIR_KEY + ["match"]] if len(labels) else pd.DataFrame(columns=PAIR_KEY + ["match"])

    def weight_shift(self) -> str | None:
        """SQL of how far each pair's weight moved in the last training that changed the model (None before)."""
        return weight_shift_sql(self.previous_model, self.model) if self.previous_model is not None else None

    def use_blocking_rules(self, rules_sql: list) -> None:
        """Every model of this job predicts with the job's blocking rules (after learned rules are adopted)."""
        for m in (self.session.untrained_model, self.bootstrap_model, self.model):
            if m is not None:
                m["blocking_rules_to_generate_predictions"] = copy.deepcopy(rules_sql)
