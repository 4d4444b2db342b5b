"""Learned blocking: find matches the blocking rules never propose, and rules that recover them within a budget.

Candidate rules are every usable column (input, prepared, derived) alone and in pairs. A candidate's cost is the
number of comparisons it adds: the pairs it proposes that no current rule proposes (counted exactly). Its gain is
what the current model expects among those pairs: the sum of their match probabilities (expected matches) and how
many reach routing.low (pairs worth a look). Every candidate's added pairs are found and scored together, by one
Splink predict over their union (see `AddedPairs`).
Scoring the added pairs with the trained model, not counting labels, is what makes this work without truth: the
labels a run bought never saw the pairs outside blocking, while the model can score any pair.

Rules are chosen greedily by expected matches per added comparison, each next one counted against the rules
already chosen, until `blocking.max_comparisons` (all blocked pairs, current and added) is reached.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from .inference import OUTSIDE_BLOCKING
from .model import blocking_rule, make_linker
from .settings import Settings
from .sources import LoadedSources, truth_columns
from .sql import quote_ident, sql_literal


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


class AddedPairs:
    """Every viable candidate's added pairs, generated and scored once.

    A candidate's added pairs are the pairs its rule proposes (Splink's own blocking SQL for the rule) minus the
    pairs the current rules propose (those blocked pairs are known: an anti-join, not the current rules' SQL per
    pair). Their union is compared and scored by one Splink predict, and each candidate's gain is a sum over it;
    after rules are chosen, the same sum over the pairs no chosen rule proposes. This replaces a Splink predict per
    candidate and per re-count (91 predicts and 53 s on fake_20000; 170 s on historical_50k).

    When the union holds more than `blocking.max_scored_pairs`, a fixed random share of it (by a hash of the pair,
    so the same pairs for every candidate) is scored and the sums divided by that share: expected matches become
    estimates, added pairs stay exact."""

    def __init__(self, con, sdfs: list, model: dict, candidates: list[Candidate], scores: str, settings: Settings):
        from splink.internals.blocking import BlockingRule, block_using_rules_sqls
        from splink.internals.chunking import _blocked_pairs_cache_key
        from splink.internals.unique_id_concat import _composite_unique_id_from_edges_sql

        self.con, self.low = con, settings.routing.low
        self.index = {id(c): i for i, c in enumerate(candidates)}
        # Only probabilities are read back: a predict that keeps no matching or intermediate columns writes 5
        # columns, not 44, and costs 0.5-0.9 s less at 1M pairs (the same SQL: probabilities equal to the bit).
        lean = model | {"retain_matching_columns": False, "retain_intermediate_calculation_columns": False}
        linker = make_linker(sdfs, lean)
        st = linker._settings_obj
        ci = st.column_info_settings
        key_l = _composite_unique_id_from_edges_sql(ci.unique_id_input_columns, "l")
        key_r = _composite_unique_id_from_edges_sql(ci.unique_id_input_columns, "r")

        def unordered(l_sql: str, r_sql: str) -> str:  # a pair's key whichever record a query puts on the left
            return f"least({l_sql}, {r_sql}) AS a, greatest({l_sql}, {r_sql}) AS b"

        concat = " UNION ALL BY NAME ".join(f"SELECT * FROM {sdf.physical_name}" for sdf in sdfs)
        con.execute(f"CREATE OR REPLACE VIEW __blocking_records AS {concat}")
        proposed = []
        for i, cand in enumerate(candidates):
            sql = block_using_rules_sqls(
                input_tablename_l="__blocking_records",
                input_tablename_r="__blocking_records",
                blocking_rules=[BlockingRule(cand.sql, "duckdb")],
                link_type=st._link_type,
                source_dataset_input_column=ci.source_dataset_input_column,
                unique_id_input_column=ci.unique_id_input_column,
            )[-1]["sql"]
            proposed.append(f"SELECT {i} AS cand, {unordered('join_key_l', 'join_key_r')} FROM ({sql})")
        blocked = f"SELECT {unordered(key_l, key_r)} FROM {scores} WHERE match_key <> {sql_literal(OUTSIDE_BLOCKING)}"
        # One row per added pair with the candidates proposing it; the pair's number is its row. The number rides
        # through Splink's predict as the registered pairs' match_key, so no join on the pair's two keys (strings)
        # is needed to read the probabilities back or to list each candidate's pairs.
        con.execute(
            "CREATE OR REPLACE TABLE __blocking_pairs AS SELECT a, b, list(cand) AS cands "
            f"FROM (SELECT * FROM ({' UNION ALL '.join(proposed)}) ANTI JOIN ({blocked}) USING (a, b)) GROUP BY a, b"
        )
        union = con.execute("SELECT count(*) FROM __blocking_pairs").fetchall()[0][0]
        self.share = min(1.0, settings.blocking.max_scored_pairs / union) if union else 1.0
        sampled = "" if self.share == 1.0 else f"WHERE hash(a, b) % 1000000 < {int(self.share * 1_000_000)}"
        con.execute(
            "CREATE OR REPLACE TABLE __blocking_union AS SELECT CAST(rowid AS VARCHAR) AS match_key, "
            f"a AS join_key_l, b AS join_key_r FROM __blocking_pairs {sampled}"
        )
        self.scored_pairs = con.execute("SELECT count(*) FROM __blocking_union").fetchall()[0][0]
        db = linker._db_api
        linker.table_management.register_blocked_pairs_for_predict(
            db.table_to_splink_dataframe("__blocking_union", "__blocking_union")
        )
        try:
            pred = linker.inference.predict()
        finally:  # the registration sits in the session's Splink cache: no later predict may score these pairs
            db._intermediate_table_cache.pop(_blocked_pairs_cache_key(), None)
            con.execute("DROP TABLE __blocking_union")
        try:
            scored = con.execute(
                f"SELECT CAST(match_key AS BIGINT) AS pair, match_probability FROM {pred.physical_name}"
            ).fetchnumpy()
            # Counting runs in memory: per candidate, its pairs (numbered), sorted by candidate; a chosen rule
            # marks its pairs.
            got = con.execute(
                "SELECT cand, pair FROM (SELECT unnest(cands) AS cand, rowid AS pair FROM __blocking_pairs) "
                "ORDER BY cand, pair"
            ).fetchnumpy()
        finally:
            pred.drop_table_from_database_and_remove_from_cache()
            con.execute("DROP VIEW IF EXISTS __blocking_records")
        if len(scored["pair"]) and int(scored["pair"].max()) >= union:  # rowids of a new table run 0..n-1
            raise RuntimeError("learned blocking: a scored pair's number is outside the added pairs")
        by_pair = np.full(union, np.nan)  # NaN: not in the scored share
        by_pair[np.asarray(scored["pair"], dtype=np.int64)] = np.ma.filled(
            np.ma.asarray(scored["match_probability"], dtype=np.float64), np.nan
        )
        cand = np.asarray(got["cand"], dtype=np.int64)
        self.pair = np.asarray(got["pair"], dtype=np.int64)
        self.prob = by_pair[self.pair]
        self.starts = np.searchsorted(cand, np.arange(len(candidates) + 1))
        self.chosen = np.zeros(union, dtype=bool)

    def count(self, cands: list[Candidate]) -> None:
        """Set each candidate's added pairs and expected matches, leaving out pairs a chosen rule proposes."""
        for c in cands:
            i = self.index[id(c)]
            rows = slice(self.starts[i], self.starts[i + 1])
            prob = self.prob[rows][~self.chosen[self.pair[rows]]]
            scored = prob[~np.isnan(prob)]
            c.added_pairs = len(prob)
            c.expected_matches = float(scored.sum()) / self.share
            c.pairs_above_low = round(int((scored > self.low).sum()) / self.share)

    def choose(self, cand: Candidate) -> None:
        i = self.index[id(cand)]
        self.chosen[self.pair[self.starts[i] : self.starts[i + 1]]] = True

    def blocked_pairs_of(self, chosen: list[Candidate], first_match_key: int, table: str) -> None:
        """Create `table`: the pairs Splink's predict would block for `chosen` appended after `first_match_key`
        rules, in its own form (match_key, join_key_l, join_key_r). A pair's match_key is its first chosen rule's
        place: Splink gives each rule its pairs minus those of every rule before it, and the pairs of the rules
        before the chosen ones were taken out above. Known here for every added pair (only probabilities were
        sampled), so adopting the rules compares these pairs without blocking them again (engine/grown_blocking)."""
        places = ", ".join(f"({self.index[id(c)]}, {first_match_key + k})" for k, c in enumerate(chosen))
        self.con.execute(f"""
            CREATE OR REPLACE TABLE {table} AS
            SELECT CAST(min(k) AS VARCHAR) AS match_key, a AS join_key_l, b AS join_key_r
            FROM (SELECT a, b, unnest(cands) AS cand FROM __blocking_pairs)
            JOIN (VALUES {places}) AS chosen(cand, k) USING (cand)
            GROUP BY a, b
        """)


def suggest(
    con,
    sdfs: list,
    settings: Settings,
    loaded: LoadedSources,
    model: dict,
    scores_table: str,
    progress=None,
    blocked_pairs_table: str | None = None,
) -> dict:
    """Candidate rules with their added comparisons and the model's expected matches, and the greedy choice
    within `blocking.max_comparisons`. `model` is the current (trained) Splink model and `scores_table` its scores
    of the pairs the current rules propose. `progress(done, total)` is called after each candidate is scored.
    `blocked_pairs_table`: also create it with the chosen rules' pairs as Splink blocks them (see
    `AddedPairs.blocked_pairs_of`), for a run that adopts them."""
    b = settings.blocking
    blocked_pairs, expected_blocked = con.execute(
        f"SELECT count(*), coalesce(sum(match_probability), 0) FROM {scores_table}"
    ).fetchall()[0]
    budget = b.max_comparisons if b.max_comparisons is not None else 2 * blocked_pairs
    room = budget - blocked_pairs
    current_sets = [set(r) for r in settings.blocking_rules if isinstance(r, list)]
    cols = candidate_columns(settings, loaded)
    rules = [[c] for c in cols] + [list(p) for p in itertools.combinations(cols, 2)]
    # A rule that contains a current rule's columns proposes nothing new: skip it without counting.
    rules = [r for r in rules if not any(s <= set(r) for s in current_sets)][: b.max_candidates]
    candidates = [Candidate(r, proposed_pairs(con, settings, loaded, r)) for r in rules]
    # A rule adds at least (proposed - blocked) pairs, so one proposing more than the budget cannot fit the room.
    viable = [c for c in candidates if 0 < c.proposed_pairs <= budget and room > 0]
    if not viable:
        return _report(blocked_pairs, budget, expected_blocked, candidates, [], None)
    try:
        added = AddedPairs(con, sdfs, model, viable, scores_table, settings)
        if progress:
            progress(1, 2)
        added.count(viable)
        chosen = _greedy(added, viable, b.min_expected_matches, room)
        # Two inputs linked only: Splink puts the first input's record on the left, not the lesser key as here.
        two_inputs_linked = settings.link_type == "link_only" and len(sdfs) == 2
        if blocked_pairs_table and chosen and not two_inputs_linked:
            added.blocked_pairs_of(chosen, len(settings.blocking_rules), blocked_pairs_table)
        if progress:
            progress(2, 2)
    finally:  # also when AddedPairs failed half way
        con.execute("DROP TABLE IF EXISTS __blocking_pairs")
        con.execute("DROP VIEW IF EXISTS __blocking_records")
    return _report(blocked_pairs, budget, expected_blocked, candidates, chosen, added)


def _greedy(added: AddedPairs, viable: list[Candidate], min_expected: float, room: int) -> list[Candidate]:
    # Lazy greedy (the gain of a rule only shrinks as others are chosen): take the best expected matches per added
    # pair, re-scored against the rules chosen so far; if it is still the best, keep it.
    pool = [c for c in viable if c.added_pairs and c.expected_matches >= min_expected]
    chosen: list[Candidate] = []
    spent, fresh = 0, {id(c) for c in pool}
    while pool:
        pool.sort(key=lambda c: c.expected_matches / c.added_pairs, reverse=True)
        best = pool[0]
        if id(best) not in fresh:
            added.count([best])
            fresh.add(id(best))
            pool = [c for c in pool if c.added_pairs and c.expected_matches >= min_expected]
            continue
        pool.pop(0)
        if best.added_pairs > room - spent:
            continue
        best.chosen = True
        chosen.append(best)
        spent += best.added_pairs
        added.choose(best)
        fresh = set()  # every other gain is now stale
    return chosen


def _report(
    blocked_pairs: int, budget: int, expected_blocked, candidates: list, chosen: list, added: AddedPairs | None
) -> dict:
    gained = sum(c.expected_matches for c in chosen)
    return {
        "blocked_pairs": blocked_pairs,
        "max_comparisons": budget,
        "added_pairs": sum(c.added_pairs for c in chosen),
        "expected_matches_blocked": round(float(expected_blocked), 1),
        "expected_matches_gained": round(gained, 1),
        "chosen": [c.rule for c in chosen],
        "candidates": sorted((c.as_dict() for c in candidates), key=lambda d: -d["expected_matches"]),
        "scored_share": round(added.share, 4) if added else 1.0,  # of the added pairs' union (AddedPairs)
        "scored_pairs": added.scored_pairs if added else 0,
    }
