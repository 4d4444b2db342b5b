"""Sampling of blocked pairs for labelling (query strategies), with exact inclusion probabilities.

`sampling.strategy` picks the design. Every design keeps the random and the high / low strata, so
Horvitz-Thompson estimates (the prior, weighted m) stay unbiased whatever the rest targets.

stratified: strata by the current model's match probability (high >= routing.high, low <= routing.low, ambiguous
between) plus a uniform `random` stratum over all blocked pairs. Each stratum draws its share of the budget by
simple random sampling without replacement, independently of the random draw, so a pair's inclusion
probability is exactly  pi = 1 - (1 - k_random / N) * (1 - k_s / N_s)  for its score stratum s. A pair drawn by
both is labelled once. Horvitz-Thompson estimates (sum of y / pi over the sample) are then unbiased for totals
over all blocked pairs.

The draw ranks pairs by a seeded hash of the pair key inside DuckDB: deterministic whatever the row order (a
re-run after a crash draws the same sample), and no pairs are pulled into Python to sample them.

uncertainty, disagreement, diversity: the stratified design with the ambiguous stratum's share spent on a
take-all set T chosen from the scores (uncertainty: the pairs nearest p = 0.5 by match weight; disagreement: the
pairs whose probability moved most since the previous model, uncertainty when there is none; diversity: round
robin over comparison-vector patterns, the least certain patterns first, so rare agreement patterns get
labelled). T is fixed once the scores (and seeded hash) are, so it is a stratum sampled in full: pi = 1 in T;
outside T a pair keeps its inclusion probability from the random and its score stratum's draws.
"""

from __future__ import annotations

import pandas as pd

from .pairs import PAIR_KEY, gamma_columns, pair_keys
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


def inclusion_probabilities(
    con, scores_table: str, settings: Settings, budget: int, shares: dict[str, float] | None = None
) -> str:
    """A view over every blocked pair with its score stratum and inclusion probability (for checks and audits)."""
    alloc = allocate(budget, settings.sampling.strata if shares is None else shares)
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


def draw_sample(
    con, scores_table: str, settings: Settings, round_no: int, shift_sql: str | None = None
) -> pd.DataFrame:
    """Draw this round's sample by `sampling.strategy`. `shift_sql`: the change in match weight since the previous
    model, as SQL over the scores (disagreement; see training.weight_shift_sql)."""
    if settings.sampling.strategy != "stratified":
        return _draw_targeted(con, scores_table, settings, round_no, shift_sql)
    return _draw_stratified(con, scores_table, settings, round_no)


def _draw_stratified(
    con,
    scores_table: str,
    settings: Settings,
    round_no: int,
    budget: int | None = None,
    shares: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Draw this round's stratified sample. Columns: pair key, match_probability, stratum, drawn_by,
    inclusion_probability. `drawn_by` is 'random', the score stratum, or both joined by '+'."""
    budget = settings.sampling.budget_per_round if budget is None else budget
    shares = settings.sampling.strata if shares is None else shares
    view = inclusion_probabilities(con, scores_table, settings, budget, shares)
    alloc = allocate(budget, shares)
    seed = f"{settings.sampling.seed}-{round_no}"
    strata_limits = " ".join(f"WHEN '{s}' THEN {alloc[s]}" for s in SCORE_STRATA)
    sample = con.execute(
        f"""
        WITH ranked AS (
            SELECT *,
                row_number() OVER (ORDER BY {_hash_sql(seed + "-random")}) AS random_rank,
                row_number() OVER (PARTITION BY stratum ORDER BY {_hash_sql(seed + "-stratum")}) AS stratum_rank
            FROM {view}
        )
        SELECT {", ".join(PAIR_KEY)}, match_probability, stratum, inclusion_probability,
            CASE WHEN random_rank <= {alloc["random"]} AND stratum_rank <= (CASE stratum {strata_limits} END)
                     THEN 'random+' || stratum
                 WHEN random_rank <= {alloc["random"]} THEN 'random'
                 ELSE stratum END AS drawn_by
        FROM ranked
        WHERE random_rank <= {alloc["random"]} OR stratum_rank <= (CASE stratum {strata_limits} END)
        ORDER BY {", ".join(PAIR_KEY)}
        """
    ).df()
    return sample


def _target_order(con, scores_table: str, settings: Settings, shift_sql: str | None) -> str:
    """ORDER BY of a targeted strategy over the scores: its take-all set T is the first pairs in this order."""
    strategy = settings.sampling.strategy
    if strategy == "disagreement" and shift_sql:
        before = f"1 / (1 + pow(2, -(match_weight - ({shift_sql}))))"  # the previous model's probability
        return f"abs(match_probability - {before}) DESC"
    if strategy == "diversity":
        pattern = ", ".join(gamma_columns(con, scores_table))
        # Round robin over comparison-vector patterns (hash-chosen pairs), the least certain patterns first.
        return (
            f"row_number() OVER (PARTITION BY {pattern} ORDER BY {_hash_sql(settings.sampling.seed)}), "
            f"abs(avg(match_weight) OVER (PARTITION BY {pattern}))"
        )
    return "abs(match_weight)"  # uncertainty (and disagreement before there is a previous model)


def _draw_targeted(con, scores_table: str, settings: Settings, round_no: int, shift_sql: str | None) -> pd.DataFrame:
    """The stratified design with the ambiguous stratum's share spent on the take-all set T instead."""
    budget, shares = settings.sampling.budget_per_round, settings.sampling.strata
    k_target = allocate(budget, shares)["ambiguous"]
    rest_share = 1.0 - shares.get("ambiguous", 0.0)
    rest_shares = {s: (v / rest_share if rest_share else 0.0) for s, v in shares.items() if s != "ambiguous"}
    # The other strata keep their draws; each is a simple random sample of its whole stratum (T included), so a
    # pair outside T keeps its stratified inclusion probability, and a pair in T has pi = 1.
    stratified = _draw_stratified(con, scores_table, settings, round_no, budget - k_target, rest_shares)
    order = _target_order(con, scores_table, settings, shift_sql)
    seed = f"{settings.sampling.seed}-{round_no}"
    key = ", ".join(PAIR_KEY)
    targeted = con.execute(f"""
        SELECT {key}, match_probability, {stratum_sql(settings)} AS stratum FROM {scores_table}
        ORDER BY {order}, {_hash_sql(seed)} LIMIT {k_target}""").df()
    strategy = settings.sampling.strategy
    drawn_too = dict(zip(pair_keys(stratified), stratified["drawn_by"]))
    keys = pair_keys(targeted)
    targeted["drawn_by"] = [f"{drawn_too[k]}+{strategy}" if k in drawn_too else strategy for k in keys]
    targeted["inclusion_probability"] = 1.0
    in_target = set(keys)
    rest = stratified[[k not in in_target for k in pair_keys(stratified)]]
    return pd.concat([rest, targeted], ignore_index=True).sort_values(PAIR_KEY, ignore_index=True)


class Designs:
    """Every sampling round's design of one run: pair key, design id and inclusion probability of each sampled
    pair (what training weights labels by and samples.parquet keeps)."""

    def __init__(self, frame: pd.DataFrame | None = None) -> None:
        self.frame = (
            frame if frame is not None else pd.DataFrame(columns=PAIR_KEY + ["design", "inclusion_probability"])
        )

    def draw(
        self, con, scores, settings: Settings, round_no: int, design_id: str, shift_sql: str | None
    ) -> pd.DataFrame:
        """Draw a round's sample and record its design; returns the sample (stratum_drawn: the stratum that drew
        a pair)."""
        s = draw_sample(con, str(scores), settings, round_no, shift_sql)
        design = s[PAIR_KEY + ["inclusion_probability"]].assign(design=design_id)
        self.frame = pd.concat([self.frame, design], ignore_index=True) if len(self.frame) else design
        return s.rename(columns={"drawn_by": "stratum_drawn"})
