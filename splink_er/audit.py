"""Accuracy without ground truth: a stratified audit sample of the final decisions, labelled by the judge.

The audit is drawn after the decisions are final and never trains or routes anything. Strata (by the decision
and the match probability) are sampled without replacement inside DuckDB with a seeded hash, so every sampled
pair has a known inclusion probability n_h / N_h; the pairs are allocated by Neyman's rule on the run's own
uncertainty. A probe of random record pairs from all possible pairs (known probability n / N_possible) finds the
matches blocking never proposed.

Two estimates of true positives, false positives and false negatives, hence precision, recall and F1:
- model-assisted (the headline): a stratum's matches are what the run expects (answers where it has them, match
  probabilities elsewhere) plus the stratum size times the audit's mean residual (answer minus expectation), with
  a normal interval whose variance is never below what the run's own probabilities imply. Design-consistent whatever the model; the better the model, the narrower the interval.
- design-only (`design_only`): each stratum's shares of TP / FP / FN / neither from a Dirichlet posterior with
  Jeffreys' prior (counts + 0.5); assumes nothing about the model, so a vast stratum of rejects where no match
  was sampled keeps the uncertainty of its sample size, and the interval is wide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .pairs import PAIR_KEY
from .settings import Settings
from .sql import registered

KEY = ", ".join(PAIR_KEY)


def strata(settings: Settings) -> dict[str, str]:
    """Stratum -> SQL over the decisions table, cut at the routing thresholds. Accepted pairs are where precision
    is decided, rejected pairs near the boundary and far below it are where recall is lost."""
    low, high = settings.routing.low, settings.routing.high
    sure = min(0.001, low / 10)
    return {
        "accepted_sure": f"final_match AND match_probability >= {high}",
        "accepted_other": f"final_match AND match_probability < {high}",
        "rejected_band": f"NOT final_match AND match_probability > {low}",
        "rejected_low": f"NOT final_match AND match_probability <= {low} AND match_probability > {sure}",
        "rejected_sure": f"NOT final_match AND match_probability <= {sure}",
    }


PROBE_SHARE = 0.10
# What the run already believes of a pair: the answer a judge or person gave it, else the model's probability. The
# model-assisted estimate starts from these and lets the audit's answers correct them.
EXPECTED_SQL = (
    "CASE WHEN decided_by IN ('judge', 'human', 'imported') AND judge_match IS NOT NULL "
    "THEN CAST(judge_match AS DOUBLE) WHEN decided_by = 'rule' THEN 1.0 WHEN decided_by = 'gate' THEN 0.0 "
    "ELSE match_probability END"
)
MIN_PER_STRATUM = 20
SPREAD_FLOOR = 0.02


def allocate(size: int, sizes: dict[str, int], spreads: dict[str, float] | None = None) -> dict[str, int]:
    """Pairs per stratum, at least MIN_PER_STRATUM, at most all of it.

    With `spreads` (each stratum's expected standard deviation of answer minus expectation, from the run's
    probabilities) it is Neyman's allocation for the model-assisted estimate, N_h * S_h: strata the run is unsure
    of get the pairs, and a vast stratum of near-certain rejects gets what its size and leftover doubt call for
    (S_h is floored at SPREAD_FLOOR, so no stratum is left to the model alone). Without, proportional to the square
    root of the size (between proportional allocation, which starves the small strata near the boundary, and
    equal allocation, which leaves the large ones, where thousands of near-certain rejects can hide misses, too
    thin)."""
    if spreads is None:
        weights = {h: n**0.5 for h, n in sizes.items() if n > 0}
    else:
        weights = {h: n * max(spreads.get(h, 0.0), SPREAD_FLOOR) for h, n in sizes.items() if n > 0}
    total = sum(weights.values())
    if not total:
        return {}
    want = {h: max(MIN_PER_STRATUM, round(size * w / total)) for h, w in weights.items()}
    return {h: min(n, sizes[h]) for h, n in want.items()}


def draw(con, decisions: str, settings: Settings, tables: dict[str, str], n_possible: int) -> pd.DataFrame:
    """The audit pairs: pair key, stratum, match_probability, final_match, stratum_size (N_h; a pair's inclusion
    probability is the stratum's judged count over N_h)."""
    size, seed = settings.audit.size, settings.audit.seed
    cuts = strata(settings)
    case = "CASE " + " ".join(f"WHEN {sql} THEN '{h}'" for h, sql in cuts.items()) + " END"
    totals = {
        h: (n, q, v)
        for h, n, q, v in con.execute(
            f"SELECT s, count(*), sum(q), sum(q * (1 - q)) FROM (SELECT {case} AS s, {EXPECTED_SQL} AS q "
            f"FROM {decisions}) GROUP BY s"
        ).fetchall()
    }
    sizes = {h: n for h, (n, _, _) in totals.items()}
    spreads = {h: (v / n) ** 0.5 for h, (n, _, v) in totals.items()}
    parts = []
    plan = allocate(size - int(round(size * PROBE_SHARE)), {h: sizes.get(h, 0) for h in cuts}, spreads)
    for h, sql in cuts.items():
        n_h, want = sizes.get(h, 0), plan.get(h, 0)
        if n_h == 0 or want == 0:
            continue
        part = con.execute(f"""
            SELECT {KEY}, match_probability, final_match, {EXPECTED_SQL} AS expected, '{h}' AS stratum,
                {n_h} AS stratum_size, {totals[h][1]!r} AS stratum_expected,
                {totals[h][2] / n_h!r} AS stratum_variance
            FROM {decisions} WHERE {sql}
            ORDER BY hash(concat_ws('|', {KEY}, {seed})) LIMIT {min(want, n_h)}""").df()
        parts.append(part)
    probe = _probe(con, decisions, settings, tables, n_possible, int(round(size * PROBE_SHARE)))
    if probe is not None:
        parts.append(probe)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _probe(con, decisions: str, settings: Settings, tables: dict[str, str], n_possible: int, n: int):
    """n random pairs from all possible pairs (with replacement); the blocked ones are kept but contribute nothing
    to the probe's estimate (the strata cover them), so the probe estimates matches outside blocking."""
    if n <= 0 or settings.link_type == "link_and_dedupe" or len(tables) > 2:
        return None
    names = list(tables)
    left, right = tables[names[0]], tables[names[-1]]
    seed = settings.audit.seed
    rows = con.execute(f"""
        WITH l AS (SELECT source_dataset, unique_id, row_number() OVER (ORDER BY hash(unique_id, {seed})) - 1 AS i
                   FROM {left}),
             r AS (SELECT source_dataset, unique_id, row_number() OVER (ORDER BY hash(unique_id, {seed} + 1)) - 1 AS i
                   FROM {right}),
             nl AS (SELECT count(*) AS n FROM l), nr AS (SELECT count(*) AS n FROM r),
             draws AS (SELECT k, hash(k, {seed}, 'l') % (SELECT n FROM nl) AS li,
                              hash(k, {seed}, 'r') % (SELECT n FROM nr) AS ri FROM range({n * 2}) t(k))
        SELECT l.source_dataset AS sl, l.unique_id AS ul, r.source_dataset AS sr, r.unique_id AS ur
        FROM draws JOIN l ON l.i = draws.li JOIN r ON r.i = draws.ri
        WHERE NOT (l.source_dataset = r.source_dataset AND l.unique_id = r.unique_id)
        ORDER BY k LIMIT {n}""").fetchall()
    if not rows:
        return None
    probe = pd.DataFrame(rows, columns=PAIR_KEY)
    # Splink's key order for a pair (left id below right id in dedupe jobs): match the decisions table's order.
    swap = (probe.source_dataset_l > probe.source_dataset_r) | (
        (probe.source_dataset_l == probe.source_dataset_r) & (probe.unique_id_l > probe.unique_id_r)
    )
    probe.loc[swap, PAIR_KEY] = probe.loc[
        swap, ["source_dataset_r", "unique_id_r", "source_dataset_l", "unique_id_l"]
    ].to_numpy()
    with registered(con, "audit_probe", probe):
        blocked = con.execute(f"SELECT {KEY} FROM audit_probe JOIN {decisions} USING ({KEY})").df()
    probe["blocked"] = probe.set_index(PAIR_KEY).index.isin(blocked.set_index(PAIR_KEY).index)
    probe["match_probability"], probe["final_match"] = 0.0, False
    probe["stratum"], probe["stratum_size"] = "probe", n_possible
    return probe


def _dirichlet(rng, counts: np.ndarray) -> np.ndarray:
    """A posterior draw of a stratum's shares; categories its decision makes impossible (an accepted pair is
    never a false negative) stay at zero instead of getting prior mass."""
    possible = counts >= 0
    out = np.zeros(len(counts))
    out[possible] = rng.dirichlet(counts[possible] + 0.5)
    return out


def metrics_from_totals(t) -> tuple[float, float, float]:
    """Precision, recall and F1 from (true positives, false positives, false negatives)."""
    tp, fp, fn = t
    p = tp / (tp + fp) if tp + fp > 0 else float("nan")
    r = tp / (tp + fn) if tp + fn > 0 else float("nan")
    f = 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0
    return p, r, f


def _design_only(strata_samples: list, rng, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """(TP, FP, FN) point totals and posterior draws from the audit answers alone: each stratum's shares from a
    Dirichlet posterior with Jeffreys' prior. Assumes nothing about the model, so a huge stratum of rejects where
    no match was sampled still carries the uncertainty of its sample size (and the interval is wide)."""
    groups = []
    for size, final, y, _ in strata_samples:
        counts = [y.sum(), (~y).sum(), -1, -1] if final else [-1, -1, y.sum(), (~y).sum()]  # -1: impossible
        groups.append((size, np.array(counts, dtype=float)))

    def totals(shares_per_group) -> np.ndarray:
        return sum(size * shares[:3] for (size, _), shares in zip(groups, shares_per_group))

    seen = [np.clip(c, 0, None) for _, c in groups]  # the impossible categories count zero
    point = totals([c / c.sum() for c in seen])
    draws = np.array([totals([_dirichlet(rng, c) for _, c in groups]) for _ in range(reps)])
    return point, draws


def _model_assisted(strata_samples: list, rng, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """(TP, FP, FN) point totals and draws of the difference estimator: a stratum's matches are what the run
    expects of its pairs (answers where it has them, else match probabilities: Q_h), corrected by the audit's mean
    residual (answer minus expectation) times the stratum size. Design-consistent whatever the model; the model
    only narrows the interval where it is right.

    Draws are normal with the estimator's variance, N_h^2 (1 - n_h/N_h) s_h^2 / n_h, where s_h^2 is the larger of
    the residuals' sample variance and the variance the run itself expects (mean q(1 - q)). The floor matters in
    vast strata of near-certain rejects: their few matches are seldom sampled, and a sample without one would
    otherwise claim the stratum is known exactly."""

    def totals(matches: list[float]) -> np.ndarray:
        tp = sum(m for m, (_, final, _, _) in zip(matches, strata_samples) if final)
        n_accepted = sum(size for size, final, _, _ in strata_samples if final)
        fn = sum(m for m, (_, final, _, _) in zip(matches, strata_samples) if not final)
        return np.array([tp, n_accepted - tp, fn])

    points, sds = [], []
    for size, _, _, (q_total, residuals, q_var) in strata_samples:
        n = len(residuals)
        points.append(float(np.clip(q_total + size * residuals.mean(), 0, size)))
        s2 = max(residuals.var(ddof=1) if n > 1 else 0.0, q_var)
        sds.append(size * (max(1 - n / size, 0.0) * s2 / max(n, 1)) ** 0.5)
    draws = np.array(
        [
            totals(
                [float(np.clip(rng.normal(m, sd), 0, size)) for m, sd, (size, *_) in zip(points, sds, strata_samples)]
            )
            for _ in range(reps)
        ]
    )
    return totals(points), draws


def _summary(point: np.ndarray, draws: np.ndarray) -> dict:
    pm = metrics_from_totals(point)
    dm = np.array([metrics_from_totals(t) for t in draws])
    out = {}
    for i, name in enumerate(["precision", "recall", "f1"]):
        col = dm[:, i][~np.isnan(dm[:, i])]
        lo, hi = np.percentile(col, [2.5, 97.5]) if len(col) else (float("nan"), float("nan"))
        # Jeffreys' prior lifts a share seen zero times off zero; like the Jeffreys binomial interval's boundary
        # rule, the interval is widened to reach the estimate itself (e.g. recall 1.0 when no miss was sampled).
        lo, hi = min(lo, pm[i]), max(hi, pm[i])
        out[name] = {"estimate": round(float(pm[i]), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
    out["estimated_pairs"] = {
        "true_positives": round(float(point[0])),
        "false_positives": round(float(point[1])),
        "false_negatives": round(float(point[2])),
    }
    return out


def estimate(audit: pd.DataFrame, reps: int = 2000, seed: int = 0) -> dict:
    """Precision, recall and F1 of the decisions within blocking, with 95% intervals, from the judged audit pairs
    (column `match`; pairs the judge could not decide are left out of their stratum).

    With the run's expectations (columns `expected` per pair and `stratum_expected` per stratum, as `draw` gives
    them) the headline is the model-assisted estimate, and `design_only` holds the estimate from the answers
    alone; without them the design-only estimate is the headline. The probe outside blocking is reported on its
    own: at hundreds of millions of possible pairs, a few hundred random pairs bound the matches blocking missed
    only loosely, and folding that bound in would swamp the intervals."""
    judged = audit[audit["match"].notna()].copy()
    if judged.empty:
        return {}
    judged["match"] = judged["match"].astype(bool)
    if "blocked" not in judged:
        judged["blocked"] = False
    judged["blocked"] = judged["blocked"].fillna(False).astype(bool)
    assisted = "expected" in judged and "stratum_expected" in judged
    strata_samples = []  # (N_h, accepted?, answers, (Q_h, residuals, expected variance) or None)
    for _, g in judged[judged.stratum != "probe"].groupby("stratum"):
        y = g["match"].to_numpy(bool)
        extra = (
            (
                float(g["stratum_expected"].iloc[0]),
                y - g["expected"].to_numpy(float),
                float(g["stratum_variance"].iloc[0]) if "stratum_variance" in g else 0.0,
            )
            if assisted
            else None
        )
        strata_samples.append((float(g["stratum_size"].iloc[0]), bool(g["final_match"].all()), y, extra))
    rng = np.random.default_rng(seed)
    design = _summary(*_design_only(strata_samples, rng, reps))
    out = {
        "pairs_judged": int(len(judged)),
        "pairs_undecided": int(len(audit) - len(judged)),
        "strata": {
            h: {"size": int(g["stratum_size"].iloc[0]), "judged": int(len(g)), "matches": int(g["match"].sum())}
            for h, g in judged.groupby("stratum")
        },
    }
    if assisted and strata_samples:
        out |= _summary(*_model_assisted(strata_samples, rng, reps)) | {
            "method": "model-assisted (difference estimator)",
            "design_only": design,
        }
    else:
        out |= design | {"method": "design-only (Dirichlet, Jeffreys' prior)"}
    probe = judged[judged.stratum == "probe"]
    if len(probe):
        found = int((probe["match"] & ~probe["blocked"]).sum())
        size = float(probe["stratum_size"].iloc[0])
        hi = float(np.percentile(rng.beta(found + 0.5, len(probe) - found + 0.5, reps), 97.5))
        out["outside_blocking"] = {
            "random_pairs_judged": int(len(probe)),
            "matches_found": found,
            "possible_pairs": int(size),
            "estimated_matches": round(size * found / len(probe)),
            "upper_95": round(size * hi),
        }
    return out
