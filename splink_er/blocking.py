"""Learned blocking: find matches the blocking rules never propose, and rules that recover them within a budget.

Candidate rules are every usable column (input, prepared, derived) alone and in pairs. A candidate's cost is the
number of comparisons it adds: the pairs it proposes that no current rule proposes (counted exactly, by letting
Splink generate `candidate AND NOT current rules`). Its gain is what the current model expects among those pairs:
the sum of their match probabilities (expected matches) and how many reach routing.low (pairs worth a look).
Scoring the added pairs with the trained model, not counting labels, is what makes this work without truth: the
labels a run bought never saw the pairs outside blocking, while the model can score any pair.

Rules are chosen greedily by expected matches per added comparison, each next one counted against the rules
already chosen, until `blocking.max_comparisons` (all blocked pairs, current and added) is reached.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict, dataclass

from .model import blocking_rule, make_linker
from .settings import Settings
from .sources import LoadedSources, truth_columns
from .sql import quote_ident


@dataclass
class Candidate:
    rule: list[str]
    proposed_pairs: int  # every pair the rule proposes on its own
    added_pairs: int = 0  # proposed and not proposed by any current (or already chosen) rule
    expected_matches: float = 0.0  # sum of match probabilities over the added pairs
    pairs_above_low: int = 0  # added pairs the model scores above routing.low (accepted or sent to the judge)
    chosen: bool = False

    @property
    def sql(self) -> str:
        """The rule as Splink writes it for DuckDB, in parentheses so it can be combined."""
        return f"({blocking_rule(self.rule).get_blocking_rule('duckdb').blocking_rule_sql})"

    def as_dict(self) -> dict:
        return asdict(self) | {"expected_matches": round(self.expected_matches, 1)}


def candidate_columns(settings: Settings, loaded: LoadedSources) -> list[str]:
    """Columns every source kept (ids are never among them), minus truth and columns_to_keep;
    `blocking.candidate_columns` overrides."""
    if settings.blocking.candidate_columns:
        return list(settings.blocking.candidate_columns)
    truth = set(truth_columns(settings))
    common = set.intersection(*(set(cols) for cols in loaded.columns.values()))
    return sorted(common - truth - set(settings.columns_to_keep))


def proposed_pairs(con, settings: Settings, loaded: LoadedSources, rule: list[str]) -> int:
    """Comparisons a column-list rule proposes on its own (records with nulls in its columns propose none)."""
    cols = ", ".join(quote_ident(c) for c in rule)
    not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in rule)
    union = " UNION ALL ".join(
        f"SELECT source_dataset, {cols} FROM {t} WHERE {not_null}" for t in loaded.tables.values()
    )
    per_group = f"SELECT {cols}, source_dataset, count(*) AS n FROM ({union}) GROUP BY ALL"
    if settings.link_type == "link_only":  # pairs across sources only
        sql = f"SELECT sum((tot * tot - sq) / 2) FROM (SELECT sum(n) AS tot, sum(n * n) AS sq FROM ({per_group}) GROUP BY {cols})"
    else:
        sql = f"SELECT sum(tot * (tot - 1) / 2) FROM (SELECT sum(n) AS tot FROM ({per_group}) GROUP BY {cols})"
    return int(con.execute(sql).fetchall()[0][0] or 0)


def _score_added(sdfs: list, model: dict, current_sql: list[str], cand: Candidate, low: float, con) -> None:
    """Let Splink propose the candidate's pairs that no current rule proposes, score them with `model`, and sum."""
    excluded = " ".join(f"AND NOT coalesce({sql}, false)" for sql in current_sql)
    scoring = copy.deepcopy(model)
    scoring["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": f"{cand.sql} {excluded}", "sql_dialect": "duckdb"}
    ]
    pred = make_linker(sdfs, scoring).inference.predict()
    try:
        n, expected, above = con.execute(
            f"SELECT count(*), coalesce(sum(match_probability), 0), count(*) FILTER (match_probability > {low}) "
            f"FROM {pred.physical_name}"
        ).fetchall()[0]
    finally:
        pred.drop_table_from_database_and_remove_from_cache()
    cand.added_pairs, cand.expected_matches, cand.pairs_above_low = int(n), float(expected), int(above)


def suggest(
    con, sdfs: list, settings: Settings, loaded: LoadedSources, model: dict, scores_table: str, progress=None
) -> dict:
    """Candidate rules with their added comparisons and the model's expected matches, and the greedy choice
    within `blocking.max_comparisons`. `model` is the current (trained) Splink model and `scores_table` its scores
    of the pairs the current rules propose. `progress(done, total)` is called after each candidate is scored."""
    b = settings.blocking
    blocked_pairs, expected_blocked = con.execute(
        f"SELECT count(*), coalesce(sum(match_probability), 0) FROM {scores_table}"
    ).fetchall()[0]
    budget = b.max_comparisons if b.max_comparisons is not None else 2 * blocked_pairs
    room = budget - blocked_pairs
    current = [r["blocking_rule"] for r in model["blocking_rules_to_generate_predictions"]]
    current_sets = [set(r) for r in settings.blocking_rules if isinstance(r, list)]
    cols = candidate_columns(settings, loaded)
    rules = [[c] for c in cols] + [list(p) for p in itertools.combinations(cols, 2)]
    # A rule that contains a current rule's columns proposes nothing new: skip it without counting.
    rules = [r for r in rules if not any(s <= set(r) for s in current_sets)][: b.max_candidates]
    candidates = [Candidate(r, proposed_pairs(con, settings, loaded, r)) for r in rules]
    # A rule adds at least (proposed - blocked) pairs, so one proposing more than the budget cannot fit the room.
    viable = [c for c in candidates if 0 < c.proposed_pairs <= budget and room > 0]
    for i, c in enumerate(viable, 1):
        _score_added(sdfs, model, current, c, settings.routing.low, con)
        if progress:
            progress(i, len(viable))
    # Lazy greedy (the gain of a rule only shrinks as others are chosen): take the best expected matches per added
    # pair, re-scored against the rules chosen so far; if it is still the best, keep it.
    pool = [c for c in viable if c.added_pairs and c.expected_matches >= b.min_expected_matches]
    chosen: list[Candidate] = []
    spent, fresh = 0, {id(c) for c in pool}
    while pool:
        pool.sort(key=lambda c: c.expected_matches / c.added_pairs, reverse=True)
        best = pool[0]
        if id(best) not in fresh:
            _score_added(sdfs, model, current, best, settings.routing.low, con)
            fresh.add(id(best))
            pool = [c for c in pool if c.added_pairs and c.expected_matches >= b.min_expected_matches]
            continue
        pool.pop(0)
        if best.added_pairs > room - spent:
            continue
        best.chosen = True
        chosen.append(best)
        spent += best.added_pairs
        current = current + [best.sql]
        fresh = set()  # every other gain is now stale
    gained = sum(c.expected_matches for c in chosen)
    return {
        "blocked_pairs": blocked_pairs,
        "max_comparisons": budget,
        "added_pairs": spent,
        "expected_matches_blocked": round(float(expected_blocked), 1),
        "expected_matches_gained": round(gained, 1),
        "chosen": [c.rule for c in chosen],
        "candidates": sorted((c.as_dict() for c in candidates), key=lambda d: -d["expected_matches"]),
    }
