"""Discriminative training of Splink's match weights from labels (`training.method: logistic`).

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

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from .model import PAIR_KEY, TrainingReport, _levels_with_cvv, stable_parameters, weight_shift_sql
from .settings import Settings

LN2 = math.log(2)


def _fit(offset: np.ndarray, x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float,
         noise: float = 0.0) -> np.ndarray:
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


def train_logistic(con, scores_table: str, labels: pd.DataFrame, designs: pd.DataFrame, base_model: dict,
                   current_model: dict, settings: Settings) -> tuple[dict, TrainingReport]:
    """Corrections to `base_model`'s weights fitted on `labels` (pair key, match), read off `scores_table`, which
    was scored by `current_model`. Returns the trained model and a report."""
    model = copy.deepcopy(base_model)
    labels = labels.assign(match=labels["match"].astype(bool))
    n_pos, n_neg = int(labels["match"].sum()), int((~labels["match"]).sum())
    report = TrainingReport(False, n_pos, n_neg, model["probability_two_random_records_match"], "bootstrap", "")
    if n_pos < settings.training.min_positive_labels or n_neg < settings.training.min_positive_labels:
        report.reason = (f"{n_pos} positive / {n_neg} negative labels: training.method logistic needs "
                         f"training.min_positive_labels={settings.training.min_positive_labels} of each; kept the "
                         "bootstrap model")
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
    con.register("training_labels", labels[PAIR_KEY + ["match", "weight"]])
    try:
        rows = con.execute(
            f"SELECT l.match, l.weight, s.match_weight - ({shift}) AS base_weight, "
            f"{', '.join('s.' + g for g in gammas)} "
            f"FROM training_labels l JOIN {scores_table} s USING ({', '.join(PAIR_KEY)})").df()
    finally:
        con.unregister("training_labels")
    # One correction per level that has an m to carry it (a level EM never reached keeps Splink's default).
    columns = [(ci, cvv) for ci, c in enumerate(comps) for cvv, level in _levels_with_cvv(c)
               if cvv != -1 and level.get("m_probability") is not None]
    x = np.column_stack([(rows[gammas[ci]].to_numpy() == cvv).astype(float) for ci, cvv in columns])
    offset = np.clip(rows["base_weight"].to_numpy(float), -60, 60) * LN2
    weight = rows["weight"].to_numpy(float)
    beta = _fit(offset, x, rows["match"].to_numpy(float), weight * len(weight) / weight.sum(), settings.training.l2,
                settings.training.label_noise)
    by_level = dict(zip(columns, beta[1:]))
    for ci, c in enumerate(comps):
        for cvv, level in _levels_with_cvv(c):
            if (ci, cvv) in by_level:
                level["m_probability"] = level["m_probability"] * math.exp(by_level[(ci, cvv)])
    prior = model["probability_two_random_records_match"]
    log_odds = math.log(prior / (1 - prior)) + beta[0]
    model["probability_two_random_records_match"] = 1 / (1 + math.exp(-log_odds))
    report.used_labels, report.prior = True, model["probability_two_random_records_match"]
    report.prior_source = "logistic fit"
    report.reason = (f"logistic corrections from {len(rows)} labels ({n_pos} matches), L2 {settings.training.l2}; "
                     f"largest |correction| {np.abs(beta[1:]).max() / LN2:.2f} bits")
    return stable_parameters(model), report
