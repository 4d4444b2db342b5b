"""Route every scored pair: labels first, then gates and accept rules, conflicts, thresholds; the rest is the band.

Precedence, per pair: a human label, then a judge label (both already paid for; a judge answer below
`min_judge_confidence` is `unsure` and ends as needs_review), then an imported label (`splink-er labels import`:
an earlier process's answer, decided without the judge), then a gate (hard reject), then an accept rule (an
exact key: accepted at no cost), then a one-to-one conflict (sent to the judge even above `high`), then the
thresholds: p >= high accepted, p <= low rejected, anything between is the band. Band and conflict pairs go to
the judge, conflicts first and then the band nearest p = 0.5 first, up to the remaining budget; what is left is
needs_review.
"""

from __future__ import annotations

import pandas as pd

from .pairs import MODEL_STRENGTH, PAIR_KEY, evidence_strength_sql, gamma_columns
from .settings import Settings
from .sql import drop_relation, quote_ident, registered

KEY = ", ".join(PAIR_KEY)


def _first_rule_sql(rules) -> str:
    """The name of the first of `rules` (gates or accept rules) whose SQL holds for a pair, else NULL."""
    if not rules:
        return "NULL"
    whens = " ".join(f"WHEN COALESCE(({g.sql}), false) THEN '{g.name.replace(chr(39), '')}'" for g in rules)
    return f"CASE {whens} END"


def decided_by_rules_sql(settings: Settings) -> str | None:
    """SQL predicate over the scores: a gate rejects or an accept rule accepts the pair whatever the model and
    the judge say (None without rules). Sampling leaves these pairs out."""
    rules = settings.routing.gates + settings.routing.accept_rules
    return _any_holds_sql(rules) or None


def _any_holds_sql(rules) -> str:
    """SQL: any of `rules` (gates or accept rules) holds for a pair ('' without rules)."""
    return " OR ".join(f"COALESCE(({r.sql}), false)" for r in rules)


def rule_accepted_pairs(con, scores: str, settings: Settings) -> int:
    """How many scored pairs an accept rule accepts (and no gate rejects): matches sampling never sees."""
    r = settings.routing
    if not r.accept_rules:
        return 0
    accepted, gated = _any_holds_sql(r.accept_rules), _any_holds_sql(r.gates) or "false"
    return con.execute(f"SELECT count(*) FROM {scores} WHERE ({accepted}) AND NOT ({gated})").fetchall()[0][0]


def _conflict_sql(settings: Settings, scores: str) -> str:
    """Pairs at or above `high` whose left or right record has another such candidate in the same other source."""
    if not settings.routing.one_to_one:
        return f"SELECT {KEY} FROM {scores} WHERE false"
    high = settings.routing.high
    return f"""
        WITH confident AS (
            SELECT {KEY} FROM {scores} WHERE match_probability >= {high} AND source_dataset_l <> source_dataset_r
        ), per_left AS (
            SELECT source_dataset_l, unique_id_l, source_dataset_r, count(*) AS n FROM confident GROUP BY ALL
        ), per_right AS (
            SELECT source_dataset_r, unique_id_r, source_dataset_l, count(*) AS n FROM confident GROUP BY ALL
        )
        SELECT c.* FROM confident c
        JOIN per_left pl USING (source_dataset_l, unique_id_l, source_dataset_r)
        JOIN per_right pr USING (source_dataset_r, unique_id_r, source_dataset_l)
        WHERE pl.n > 1 OR pr.n > 1
    """


def pair_scores(con, scores: str, settings: Settings, table: bool, name: str = "pair_scores") -> str:
    """Create `name`: what routing reads of each scored pair, fixed until the next scoring: its key, probability
    and weight, the gate and the accept rule that hold for it, and whether it is a one-to-one conflict.

    A table (`table`), with a hash of the pair key: every count, judge queue, decision and metric of a round then
    reads a few narrow columns, and labels find their pairs by one integer (`route`). At 2.5M pairs that made each
    read 0.02-0.1 s instead of 0.35 s (Splink's weights computed again over the stored vectors), seven or more
    reads a round, for one 0.6 s copy per scoring. Else a view, computed at each read: at 24M pairs the table
    would be some 3 GB (engine.routing_scores)."""
    drop_relation(con, name)
    pair = ", ".join("s." + k for k in PAIR_KEY)
    # The comparison vector too: training reads it of the labelled pairs (`scores_of_pairs`).
    gammas = "".join(f", s.{quote_ident(c)}" for c in gamma_columns(con, scores))
    con.execute(f"""
        CREATE {"TABLE" if table else "VIEW"} {name} AS
        WITH conflicts AS ({_conflict_sql(settings, scores)})
        SELECT {pair}, s.match_probability, s.match_weight,
            {_first_rule_sql(settings.routing.gates)} AS gate,
            {_first_rule_sql(settings.routing.accept_rules)} AS accept_rule,
            c.unique_id_l IS NOT NULL AS conflict
            {gammas}{f", hash({pair}) AS pair_hash" if table else ""}
        FROM {scores} s
        LEFT JOIN conflicts c USING ({KEY})
    """)
    return name


# What routing reads of a label besides its pair key, with the types an empty label table must have.
_LABEL_TYPES = {"match": "bool", "confidence": "float", "reasoning": "str", "source": "str", "source_kind": "str"}
_LABEL_COLUMNS = list(_LABEL_TYPES)


def _by_key_hash(con, pairs: str, keyed: str, columns: str, out: str) -> None:
    """Create table `out`: `columns` of each row `k` of the query `keyed` (it has the pair key) with its row `p`
    of `pairs` (a pair_scores table), found by the key's hash and then checked on the key itself. The join on one
    integer costs 0.01 s at 2.5M pairs, on the four key columns 0.17 s; two statements, because DuckDB folds a
    check in the same query into the join's keys."""
    keys = ", ".join(f"p.{k} AS p_{k}, k.{k} AS k_{k}" for k in PAIR_KEY)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out}_found AS
        SELECT {columns}, {keys}
        FROM {pairs} p JOIN (SELECT *, hash({KEY}) AS pair_hash FROM ({keyed})) k USING (pair_hash)
    """)
    checked = " AND ".join(f"p_{k} = k_{k}" for k in PAIR_KEY)
    helpers = ", ".join(f"p_{k}, k_{k}" for k in PAIR_KEY)
    con.execute(f"CREATE OR REPLACE TABLE {out} AS SELECT * EXCLUDE ({helpers}) FROM {out}_found WHERE {checked}")
    con.execute(f"DROP TABLE {out}_found")


def _labels_by_pair(con, pairs: str, labels: str) -> str:
    """Create `<labels>_at`: each label with the row of `pairs` (a pair_scores table) it is about."""
    at = f"{labels}_at"
    _by_key_hash(con, pairs, labels, "p.rowid AS pair_id, " + ", ".join(f"k.{c}" for c in _LABEL_COLUMNS), at)
    return at


def scores_of_pairs(con, pairs: str, keys: str, out: str) -> str:
    """Create `out`: the rows of `pairs` (a pair_scores table) of the pair keys in the query `keys` (distinct)."""
    _by_key_hash(con, pairs, keys, "p.*", out)
    return out


def route(
    con, pairs: str, labels: pd.DataFrame, settings: Settings, table: str = "routed", hashed: bool = False
) -> str:
    """Create view `table` over `pairs` (see `pair_scores`; `hashed`: it is a table with key hashes): one row per
    scored pair with its route and any label it has.

    A view, not a table: at 24M pairs a routed table cost 5 s and spilled past a 1 GB memory limit, while the
    few scans that read it (counts, the pairs to judge, the decisions file) read only the columns they need."""
    lab = (
        labels[PAIR_KEY + _LABEL_COLUMNS]
        if len(labels)
        else pd.DataFrame({c: pd.Series(dtype=t) for c, t in ({k: "str" for k in PAIR_KEY} | _LABEL_TYPES).items()})
    )
    # A table (labels are few): the view must outlive this call, a registered DataFrame would not.
    with registered(con, "current_labels_frame", lab):
        con.execute(f"CREATE OR REPLACE TABLE {table}_labels AS SELECT * FROM current_labels_frame")
    joined = (
        f"LEFT JOIN {_labels_by_pair(con, pairs, f'{table}_labels')} l ON l.pair_id = s.rowid"
        if hashed
        else f"LEFT JOIN {table}_labels l USING ({KEY})"
    )
    drop_relation(con, table)
    con.execute(f"""
        CREATE VIEW {table} AS
        WITH base AS (
            SELECT {", ".join("s." + k for k in PAIR_KEY)}, s.match_probability, s.match_weight,
                l.match AS label_match, l.confidence AS label_confidence, l.reasoning AS label_reasoning,
                l.source AS label_source, l.source_kind AS label_kind, s.gate, s.accept_rule, s.conflict
            FROM {pairs} s
            {joined}
        )
        SELECT *, CASE
            WHEN label_kind = 'human' THEN 'human'
            WHEN label_kind = 'judge' AND label_confidence < {settings.routing.min_judge_confidence} THEN 'unsure'
            WHEN label_kind = 'judge' THEN 'judge'
            WHEN label_kind = 'imported' THEN 'imported'
            WHEN gate IS NOT NULL THEN 'gate'
            WHEN accept_rule IS NOT NULL THEN 'rule'
            WHEN conflict THEN 'conflict'
            WHEN match_probability >= {settings.routing.high} THEN 'model_accept'
            WHEN match_probability <= {settings.routing.low} THEN 'model_reject'
            ELSE 'band' END AS route
        FROM base
    """)
    return table


SELECTION_MAX_CANDIDATES = 10  # candidates in one selection question: the most probable (a prompt stays readable)


def routes_sql(routed: str, routes: tuple[str, ...], settings: Settings) -> str:
    """SQL: the rows of `routed` whose route is one of `routes` ('band', 'conflict', 'model_accept'), read so
    that DuckDB filters the scored pairs before routing them: a route is only computed after a join with the
    labels, so `WHERE route IN (...)` alone reads and routes every pair, keys and all (0.15 s at 2.5M pairs for
    the 12,000 of the band). Each branch adds what its routes imply of the probability and the conflict flag
    (the branches are disjoint); the route filter stays, so the rows are exactly those of the plain filter."""
    low, high = settings.routing.low, settings.routing.high
    branches = []
    if "band" in routes:
        branches += [f"match_probability > {low} AND match_probability < {high}", "match_probability IS NULL"]
    if "model_accept" in routes:
        branches.append(f"match_probability >= {high}")
    wanted = f"route IN ({', '.join(repr(r) for r in routes)})"
    parts = [f"SELECT * FROM {routed} WHERE NOT conflict AND {b} AND {wanted}" for b in branches]
    if "conflict" in routes:
        parts.append(f"SELECT * FROM {routed} WHERE conflict AND {wanted}")
    return "(" + " UNION ALL ".join(parts) + ")"


def judge_queue_sql(routed: str, settings: Settings, limit: int | None = None, selection: bool = False) -> str:
    """SQL of the band and conflict pairs without a label, in the order the budget is spent on them (the first
    `limit`): conflicts first, then the band nearest p = 0.5. With `selection` (see `_selection_queue_sql`),
    a record's band candidates in one other source are one selection question."""
    if selection:
        return _selection_queue_sql(routed, settings, limit)
    return f"""
        SELECT {KEY}, match_probability, route AS reason FROM {routes_sql(routed, ("band", "conflict"), settings)}
        ORDER BY route = 'conflict' DESC, abs(match_probability - 0.5), {KEY}
        {f"LIMIT {int(limit)}" if limit is not None else ""}"""


def _anchored_sql(cand: str, side: str, cap: int) -> str:
    """The pairs of `cand` in selection groups anchored on the `side` record: two or more candidates in the same
    other source (the `cap` most probable), at least one of them in the band."""
    other = "r" if side == "l" else "l"
    anchor = f"source_dataset_{side}, unique_id_{side}, source_dataset_{other}"
    return f"""
        SELECT * FROM (
            SELECT *, row_number() OVER (PARTITION BY {anchor} ORDER BY match_probability DESC, unique_id_{other})
                AS k
            FROM {cand}
        ) WHERE k <= {cap}
        QUALIFY count(*) OVER (PARTITION BY {anchor}) >= 2 AND bool_or(route = 'band') OVER (PARTITION BY {anchor})
    """


def _selection_queue_sql(routed: str, settings: Settings, limit: int | None) -> str:
    """The judge queue with selection questions. A record with two or more unjudged candidates in one other
    source, at least one in the band and the others in the band or accepted by the model, is one group
    (`selection_group`, anchored on the `selection_side` record): the most probable SELECTION_MAX_CANDIDATES of
    them. A pair in both its records' groups goes to its left record's. Accepted candidates are in the queue only
    through a group (reason 'selection'). Groups are ranked by their band pair nearest p = 0.5 and kept whole:
    a group that does not fit in `limit` is left for the next round."""
    cap = SELECTION_MAX_CANDIDATES
    unit = f"coalesce(selection_group, concat_ws('|', {KEY}))"
    return f"""
        WITH cand AS (
            SELECT {KEY}, match_probability, route FROM {routes_sql(routed, ("band", "model_accept"), settings)}
            WHERE source_dataset_l <> source_dataset_r
        ), in_left AS ({_anchored_sql("cand", "l", cap)}
        ), rest AS (
            SELECT * FROM cand ANTI JOIN in_left USING ({KEY})
        ), in_right AS ({_anchored_sql("rest", "r", cap)}
        ), grouped AS (
            SELECT {KEY}, match_probability, route,
                source_dataset_l || ':' || unique_id_l || '>' || source_dataset_r AS selection_group,
                'left' AS selection_side
            FROM in_left
            UNION ALL
            SELECT {KEY}, match_probability, route,
                source_dataset_r || ':' || unique_id_r || '>' || source_dataset_l, 'right'
            FROM in_right
        ), queue AS (
            SELECT {KEY}, match_probability, route AS reason, NULL::VARCHAR AS selection_group,
                NULL::VARCHAR AS selection_side
            FROM (SELECT {KEY}, match_probability, route FROM {routes_sql(routed, ("band", "conflict"), settings)})
            ANTI JOIN grouped USING ({KEY})
            UNION ALL
            SELECT {KEY}, match_probability, CASE WHEN route = 'band' THEN 'band' ELSE 'selection' END,
                selection_group, selection_side
            FROM grouped
        ), units AS (
            SELECT *, {unit} AS unit,
                min(abs(match_probability - 0.5)) FILTER (WHERE reason <> 'selection') OVER (PARTITION BY {unit})
                    AS unit_rank
            FROM queue
        ), ranked AS (
            SELECT *, row_number() OVER (ORDER BY reason = 'conflict' DESC, unit_rank, unit, {KEY}) AS pos FROM units
        )
        SELECT {KEY}, match_probability, reason, selection_group, selection_side FROM ranked
        {f"QUALIFY max(pos) OVER (PARTITION BY unit) <= {int(limit)}" if limit is not None else ""}
        ORDER BY pos"""


def pairs_to_judge(
    con, routed: str, settings: Settings, limit: int | None = None, selection: bool = False
) -> pd.DataFrame:
    """The judge queue (see judge_queue_sql) as a DataFrame."""
    return con.execute(judge_queue_sql(routed, settings, limit, selection)).df()


def route_counts(con, routed: str) -> dict[str, int]:
    return dict(con.execute(f"SELECT route, count(*) FROM {routed} GROUP BY 1 ORDER BY 1").fetchall())


# Routes that carry an answer (a person's, the judge's, an import's): decisions show it as judge_match etc.
ANSWERED = ("judge", "human", "unsure", "imported")
# Routes whose pairs wait for a person (decided_by needs_review).
WAITING = ("band", "conflict", "unsure")


def decide(
    con, routed: str, round_no: int, table: str = "decisions", one_to_one: bool = False, min_confidence: float = 0
) -> str:
    """Final decisions: one row per scored pair. Unjudged band/conflict pairs are needs_review, with
    final_match = (p >= 0.5) as the model's best guess; an unsure judge answer (below `min_confidence`) is
    needs_review with the judge's answer as final_match. With `one_to_one`, see `_keep_one_match`.

    A view over `routed` (a projection: a copy of 24M rows cost 7 s), except with one_to_one, whose ranking is
    kept as a table."""
    base = f"{table}_all" if one_to_one else table
    drop_relation(con, base)
    con.execute(f"""
        CREATE VIEW {base} AS
        SELECT {KEY}, match_probability, match_weight,
            CASE WHEN route IN {WAITING} THEN 'needs_review' ELSE route END AS decided_by,
            CASE WHEN route IN {ANSWERED} THEN label_match END AS judge_match,
            CASE WHEN route IN {ANSWERED} THEN label_confidence
                 WHEN route = 'rule' THEN 1.0 END AS judge_confidence,
            CASE WHEN route IN ('judge', 'human', 'imported') THEN label_reasoning
                 WHEN route = 'unsure' THEN 'judge confidence ' || round(label_confidence, 2)
                     || ' below routing.min_judge_confidence {min_confidence}: ' || coalesce(label_reasoning, '')
                 WHEN route = 'gate' THEN 'gate: ' || gate
                 WHEN route = 'rule' THEN 'rule: ' || accept_rule END AS judge_reasoning,
            CASE WHEN route IN {ANSWERED} THEN label_source END AS label_source,
            CASE WHEN route IN {ANSWERED} THEN label_match
                 WHEN route IN ('gate', 'model_reject') THEN false WHEN route IN ('rule', 'model_accept') THEN true
                 ELSE match_probability >= 0.5 END AS final_match,
            route IN {WAITING} AS needs_review,
            conflict,
            {round_no} AS round
        FROM {routed}
    """)
    if one_to_one:
        _keep_one_match(con, base, table)
    return table


def _keep_one_match(con, source: str, table: str) -> None:
    """A record keeps at most one final match in each other source: the pair must be the best for both of its
    records (the strongest evidence first: a person, the judge, an imported label, an accept rule, the model; then
    the higher confidence of that evidence, then the higher probability). The others become decided_by =
    'one_to_one', final_match = false. Mutual-best is conservative: it never adds a match."""
    # The confidence counts only between answers of one kind: an unsure answer (needs_review) keeps its judge
    # confidence, and must not outrank a model accept through it.
    confident = f"CASE WHEN {evidence_strength_sql()} < {MODEL_STRENGTH} THEN judge_confidence END"
    rank = f"ORDER BY {evidence_strength_sql()}, {confident} DESC NULLS LAST, match_probability DESC"
    drop_relation(con, table)
    con.execute(f"""
        CREATE TABLE {table} AS
        WITH ranked AS (
            SELECT *,
                CASE WHEN final_match AND source_dataset_l <> source_dataset_r THEN
                    row_number() OVER (PARTITION BY source_dataset_l, unique_id_l, source_dataset_r, final_match
                                       {rank}, source_dataset_r, unique_id_r) END AS rank_l,
                CASE WHEN final_match AND source_dataset_l <> source_dataset_r THEN
                    row_number() OVER (PARTITION BY source_dataset_r, unique_id_r, source_dataset_l, final_match
                                       {rank}, source_dataset_l, unique_id_l) END AS rank_r
            FROM {source}
        )
        SELECT * EXCLUDE (rank_l, rank_r) REPLACE (
            CASE WHEN rank_l > 1 OR rank_r > 1 THEN 'one_to_one' ELSE decided_by END AS decided_by,
            CASE WHEN rank_l > 1 OR rank_r > 1 THEN 'one-to-one: a record of this pair has a better match'
                 ELSE judge_reasoning END AS judge_reasoning,
            CASE WHEN rank_l > 1 OR rank_r > 1 THEN false ELSE final_match END AS final_match)
        FROM ranked
    """)
