"""Stratified sampling of blocked pairs for labelling, with exact inclusion probabilities.

Design: strata by the current model's match probability (high >= routing.high, low <= routing.low, ambiguous
between) plus a uniform `random` stratum over all blocked pairs. Each stratum draws its share of the budget by
simple random sampling without replacement, independently of the random draw, so a pair's inclusion
probability is exactly  pi = 1 - (1 - k_random / N) * (1 - k_s / N_s)  for its score stratum s. A pair drawn by
both is labelled once. Horvitz-Thompson estimates (sum of y / pi over the sample) are then unbiased for totals
over all blocked pairs.

The draw ranks pairs by a seeded hash of the pair key inside DuckDB: deterministic whatever the row order (a
re-run after a crash draws the same sample), and no pairs are pulled into Python to sample them.
"""

from __future__ import annotations

import pandas as pd

from .model import PAIR_KEY
from .settings import Settings

SCORE_STRATA = ("high", "ambiguous", "low")


def stratum_sql(settings: Settings) -> str:
    r = settings.routing
    return (
        f"CASE WHEN match_probability >= {r.high} THEN 'high' "
        f"WHEN match_probability <= {r.low} THEN 'low' ELSE 'ambiguous' END"
    )


def _hash_sql(seed: str) -> str:
    return f"hash(concat_ws('|', {', '.join(PAIR_KEY)}, '{seed}'))"


def allocate(budget: int, shares: dict[str, float]) -> dict[str, int]:
    """Split the budget by shares with largest-remainder rounding, so the parts add up to the budget."""
    raw = {s: budget * shares.get(s, 0.0) for s in ("random",) + SCORE_STRATA}
    out = {s: int(v) for s, v in raw.items()}
    for s in sorted(raw, key=lambda s: raw[s] - out[s], reverse=True)[: budget - sum(out.values())]:
        out[s] += 1
    return out


def inclusion_probabilities(con, scores_table: str, settings: Settings, budget: int) -> str:
    """A view over every blocked pair with its score stratum and inclusion probability (for checks and audits)."""
    alloc = allocate(budget, settings.sampling.strata)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW pair_strata AS SELECT {', '.join(PAIR_KEY)}, match_probability, "
        f"{stratum_sql(settings)} AS stratum FROM {scores_table}"
    )
    (n_all,) = con.execute("SELECT count(*) FROM pair_strata").fetchall()[0]
    sizes = dict(con.execute("SELECT stratum, count(*) FROM pair_strata GROUP BY 1").fetchall())
    p_random = min(alloc["random"], n_all) / n_all if n_all else 0.0
    cases = " ".join(
        f"WHEN '{s}' THEN CAST({min(alloc[s], sizes.get(s, 0)) / sizes[s] if sizes.get(s) else 0.0!r} AS DOUBLE)"
        for s in SCORE_STRATA
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW pair_inclusion AS SELECT *, "
        f"1 - (1 - CAST({p_random!r} AS DOUBLE)) * (1 - CASE stratum {cases} END) AS inclusion_probability FROM pair_strata"
    )
    return "pair_inclusion"


def draw_sample(con, scores_table: str, settings: Settings, round_no: int) -> pd.DataFrame:
    """Draw this round's stratified sample. Columns: pair key, match_probability, stratum, drawn_by,
    inclusion_probability. `drawn_by` is 'random', the score stratum, or both joined by '+'."""
    budget = settings.sampling.budget_per_round
    view = inclusion_probabilities(con, scores_table, settings, budget)
    alloc = allocate(budget, settings.sampling.strata)
    seed = f"{settings.sampling.seed}-{round_no}"
    strata_limits = " ".join(f"WHEN '{s}' THEN {alloc[s]}" for s in SCORE_STRATA)
    sample = con.execute(
        f"""
        WITH ranked AS (
            SELECT *,
                row_number() OVER (ORDER BY {_hash_sql(seed + '-random')}) AS random_rank,
                row_number() OVER (PARTITION BY stratum ORDER BY {_hash_sql(seed + '-stratum')}) AS stratum_rank
            FROM {view}
        )
        SELECT {', '.join(PAIR_KEY)}, match_probability, stratum, inclusion_probability,
            CASE WHEN random_rank <= {alloc['random']} AND stratum_rank <= (CASE stratum {strata_limits} END)
                     THEN 'random+' || stratum
                 WHEN random_rank <= {alloc['random']} THEN 'random'
                 ELSE stratum END AS drawn_by
        FROM ranked
        WHERE random_rank <= {alloc['random']} OR stratum_rank <= (CASE stratum {strata_limits} END)
        ORDER BY {', '.join(PAIR_KEY)}
        """
    ).df()
    return sample
