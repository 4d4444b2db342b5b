"""Accuracy without ground truth: a stratified audit sample of the final decisions, labelled by the judge.

The audit is drawn after the decisions are final and never trains or routes anything. Strata (by the decision
and the match probability) are sampled without replacement inside DuckDB with a seeded hash, so every sampled
pair has a known inclusion probability n_h / N_h. A probe of random record pairs from all possible pairs (known
probability n / N_possible) finds the matches blocking never proposed. Horvitz-Thompson totals of true positives,
false positives and false negatives give precision, recall and F1. The 95% intervals draw each stratum's shares
of TP / FP / FN / neither from a Dirichlet posterior with Jeffreys' prior (counts + 0.5): unlike a plain
bootstrap, a stratum where no error was sampled still carries the uncertainty of its sample size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .model import PAIR_KEY
from .settings import Settings

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
MIN_PER_STRATUM = 20


def allocate(size: int, sizes: dict[str, int]) -> dict[str, int]:
    """Pairs per stratum: proportional to the square root of its size (between proportional allocation, which
    starves the small strata near the boundary, and equal allocation, which leaves the large ones, where
    thousands of near-certain rejects can hide misses, too thin), at least MIN_PER_STRATUM, at most all of it."""
    weights = {h: n ** 0.5 for h, n in sizes.items() if n > 0}
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
    sizes = dict(con.execute(
        "SELECT s, count(*) FROM (SELECT CASE " + " ".join(f"WHEN {sql} THEN '{h}'" for h, sql in cuts.items())
        + f" END AS s FROM {decisions}) GROUP BY s").fetchall())
    parts = []
    plan = allocate(size - int(round(size * PROBE_SHARE)), {h: sizes.get(h, 0) for h in cuts})
    for h, sql in cuts.items():
        n_h, want = sizes.get(h, 0), plan.get(h, 0)
        if n_h == 0 or want == 0:
            continue
        part = con.execute(f"""
            SELECT {KEY}, match_probability, final_match, '{h}' AS stratum, {n_h} AS stratum_size
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
        (probe.source_dataset_l == probe.source_dataset_r) & (probe.unique_id_l > probe.unique_id_r))
    probe.loc[swap, PAIR_KEY] = probe.loc[swap, ["source_dataset_r", "unique_id_r", "source_dataset_l", "unique_id_l"]].to_numpy()
    con.register("audit_probe", probe)
    try:
        blocked = con.execute(f"SELECT {KEY} FROM audit_probe JOIN {decisions} USING ({KEY})").df()
    finally:
        con.unregister("audit_probe")
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


def estimate(audit: pd.DataFrame, reps: int = 2000, seed: int = 0) -> dict:
    """Precision, recall and F1 of the decisions within blocking, with 95% intervals, from the judged audit pairs
    (column `match`; pairs the judge could not decide are left out of their stratum). The probe outside blocking
    is reported on its own: at hundreds of millions of possible pairs, a few hundred random pairs bound the matches
    blocking missed only loosely, and folding that bound in would swamp the intervals."""
    judged = audit[audit["match"].notna()].copy()
    if judged.empty:
        return {}
    judged["match"] = judged["match"].astype(bool)
    if "blocked" not in judged:
        judged["blocked"] = False
    judged["blocked"] = judged["blocked"].fillna(False).astype(bool)
    groups = []
    for h, g in judged[judged.stratum != "probe"].groupby("stratum"):
        y, final = g["match"].to_numpy(bool), g["final_match"].to_numpy(bool)
        if final.all():  # accepted: TP or FP; -1 marks the impossible categories
            counts = [y.sum(), (~y).sum(), -1, -1]
        else:  # rejected: FN or neither
            counts = [-1, -1, y.sum(), (~y).sum()]
        groups.append((float(g["stratum_size"].iloc[0]), np.array(counts, dtype=float)))

    def totals(shares_per_group) -> np.ndarray:
        return sum(size * shares[:3] for (size, _), shares in zip(groups, shares_per_group))

    def point_shares(counts: np.ndarray) -> np.ndarray:
        c = np.where(counts < 0, 0.0, counts)
        return c / c.sum()

    def metrics(t: np.ndarray) -> tuple[float, float, float]:
        tp, fp, fn = t
        p = tp / (tp + fp) if tp + fp > 0 else float("nan")
        r = tp / (tp + fn) if tp + fn > 0 else float("nan")
        f = 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0
        return p, r, f

    point = metrics(totals([point_shares(counts) for _, counts in groups]))
    rng = np.random.default_rng(seed)
    boots = np.array([metrics(totals([_dirichlet(rng, counts) for _, counts in groups])) for _ in range(reps)])
    out = {"pairs_judged": int(len(judged)), "pairs_undecided": int(len(audit) - len(judged)),
           "strata": {h: {"size": int(g["stratum_size"].iloc[0]), "judged": int(len(g)), "matches": int(g["match"].sum())}
                      for h, g in judged.groupby("stratum")}}
    for i, name in enumerate(["precision", "recall", "f1"]):
        col = boots[:, i][~np.isnan(boots[:, i])]
        lo, hi = (np.percentile(col, [2.5, 97.5]) if len(col) else (float("nan"), float("nan")))
        # Jeffreys' prior lifts a share seen zero times off zero; like the Jeffreys binomial interval's boundary
        # rule, the interval is widened to reach the estimate itself (e.g. recall 1.0 when no miss was sampled).
        lo, hi = min(lo, point[i]), max(hi, point[i])
        out[name] = {"estimate": round(float(point[i]), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
    est_tp, est_fp, est_fn = totals([point_shares(counts) for _, counts in groups])
    out["estimated_pairs"] = {"true_positives": round(float(est_tp)), "false_positives": round(float(est_fp)),
                              "false_negatives": round(float(est_fn))}
    probe = judged[judged.stratum == "probe"]
    if len(probe):
        found = int((probe["match"] & ~probe["blocked"]).sum())
        size = float(probe["stratum_size"].iloc[0])
        hi = float(np.percentile(rng.beta(found + 0.5, len(probe) - found + 0.5, reps), 97.5))
        out["outside_blocking"] = {"random_pairs_judged": int(len(probe)), "matches_found": found,
                                   "possible_pairs": int(size), "estimated_matches": round(size * found / len(probe)),
                                   "upper_95": round(size * hi)}
    return out
