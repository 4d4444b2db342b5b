"""Entity-level checks: what pairwise decisions cannot see.

Connected components chain A~B~C even when the judge, a person or a gate said A and C differ. After clustering
and before ids are assigned, `split_contradictions` finds such entities and (with `verify.contradictions:
split`, the default) cuts them: the entity's accepted pairs are added back strongest first (human, then judge,
then the model, each by probability), skipping any pair that would join two records decided different, so the
decided non-matches end up in different entities and the weakest links are the ones dropped. With `flag` the
entities are only listed. `check_rules` then flags entities that break the configured rules: columns that must
have one value per entity (`verify.single_valued`, e.g. state), changes worth a look (`verify.flag_changes`,
e.g. party) and spans too long for one career (`verify.max_span`). Everything found goes to verification.json.
"""

from __future__ import annotations

import pandas as pd

from ..pairs import EVIDENCE_STRENGTH, MODEL_STRENGTH, PAIR_KEY, canonical_key
from ..sql import drop_relation, quote_ident, registered
from .registry import members_sql

DECIDED = ("human", "judge", "imported", "gate")  # a non-match these decided is a fact the clustering must respect


def split_contradictions(
    con, clusters: str, decisions: str, mode: str, table: str = "verified_clusters", apart: pd.DataFrame | None = None
) -> tuple[str, dict]:
    """`clusters` (source_dataset, unique_id, cluster_id) with contradicted entities split (mode 'split') or
    as they are ('flag', 'off'); and what was found. `apart`: more pairs decided different (pair key and
    decided_by; an entity audit's answers)."""
    drop_relation(con, table)
    if mode == "off":
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {clusters}")
        return table, {}
    key = ", ".join(PAIR_KEY)
    extra = apart if apart is not None else pd.DataFrame(columns=[*PAIR_KEY, "decided_by"])
    with registered(con, "apart_extra", extra[[*PAIR_KEY, "decided_by"]].astype(str)):
        contradicted = con.execute(f"""
            WITH decided_apart AS (
                SELECT {key}, decided_by FROM {decisions} WHERE NOT final_match AND decided_by IN {DECIDED}
                UNION ALL SELECT {key}, decided_by FROM apart_extra)
            SELECT DISTINCT a.cluster_id, {", ".join("d." + k for k in PAIR_KEY)}, d.decided_by
            FROM decided_apart d
            JOIN {clusters} a ON a.source_dataset = d.source_dataset_l AND a.unique_id = d.unique_id_l
            JOIN {clusters} b ON b.source_dataset = d.source_dataset_r AND b.unique_id = d.unique_id_r
            WHERE a.cluster_id = b.cluster_id
            ORDER BY a.cluster_id, {key}""").df()
    found = {
        "contradicted_entities": int(contradicted["cluster_id"].nunique()),
        "contradicting_pairs": len(contradicted),
        "action": mode,
        "examples": [
            {"pair": [f"{r.source_dataset_l}:{r.unique_id_l}", f"{r.source_dataset_r}:{r.unique_id_r}"],
             "decided_by": r.decided_by}
            for r in contradicted.head(5).itertuples(index=False)
        ],
    }  # fmt: skip
    if mode == "flag" or contradicted.empty:
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {clusters}")
        return table, found
    with registered(con, "contradicted_ids", contradicted[["cluster_id"]].drop_duplicates()):
        links = con.execute(f"""
            SELECT a.cluster_id, {", ".join("d." + k for k in PAIR_KEY)}, d.decided_by, d.match_probability
            FROM {decisions} d
            JOIN {clusters} a ON a.source_dataset = d.source_dataset_l AND a.unique_id = d.unique_id_l
            JOIN contradicted_ids c ON c.cluster_id = a.cluster_id
            -- Only links inside the entity: `clusters` may already be cut (an audit after a split), and a
            -- final match across two entities is no link of either.
            JOIN {clusters} b ON b.source_dataset = d.source_dataset_r AND b.unique_id = d.unique_id_r
                AND b.cluster_id = a.cluster_id
            WHERE d.final_match""").df()
        members = con.execute(
            f"SELECT m.* FROM {clusters} m JOIN contradicted_ids c USING (cluster_id) ORDER BY source_dataset, unique_id"
        ).df()
    parts = _cut(members, links, contradicted)
    found["split_into"] = int(parts.groupby("old")["cluster_id"].nunique().sum())
    with registered(con, "split_parts", parts[["source_dataset", "unique_id", "cluster_id"]]):
        con.execute(f"""
            CREATE TEMP TABLE {table} AS
            SELECT c.source_dataset, c.unique_id, coalesce(p.cluster_id, CAST(c.cluster_id AS VARCHAR)) AS cluster_id
            FROM {clusters} c LEFT JOIN split_parts p USING (source_dataset, unique_id)""")
    return table, found


def _cut(members: pd.DataFrame, links: pd.DataFrame, cannot: pd.DataFrame) -> pd.DataFrame:
    """Union-find over each contradicted entity's accepted pairs, strongest first, never joining two records
    decided different. Returns members with their part's cluster id ('<old>~<n>').

    Records are numbered by their row in `members` and pairs looked up as numbers before the loop: reading the key
    columns pair by pair (itertuples over Arrow strings) was most of this at 200K links (historical_50k)."""
    record = pd.Index(members["source_dataset"].astype(str) + "\x1f" + members["unique_id"].astype(str))

    def numbered(frame: pd.DataFrame, side: str) -> list[int]:
        keys = frame[f"source_dataset_{side}"].astype(str) + "\x1f" + frame[f"unique_id_{side}"].astype(str)
        found = record.get_indexer(keys)
        if (found < 0).any():  # -1 would silently name the last record
            raise ValueError(f"a pair names a record outside its entity: {keys[found < 0].iloc[0]!r}")
        return found.tolist()

    parent = list(range(len(record)))
    group = {i: {i} for i in range(len(record))}
    apart: dict[int, set[int]] = {}
    for a, b in zip(numbered(cannot, "l"), numbered(cannot, "r")):
        apart.setdefault(a, set()).add(b)
        apart.setdefault(b, set()).add(a)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = links.assign(strength=links["decided_by"].map(EVIDENCE_STRENGTH).fillna(MODEL_STRENGTH)).sort_values(
        ["strength", "match_probability", *PAIR_KEY], ascending=[True, False, True, True, True, True]
    )
    for left, right in zip(numbered(order, "l"), numbered(order, "r")):
        a, b = root(left), root(right)
        if a == b:
            continue
        small, large = sorted((a, b), key=lambda g: len(group[g]))
        if any(apart.get(x, set()) & group[large] for x in group[small]):
            continue  # this link would put two records decided different in one entity
        parent[small] = large
        group[large] |= group.pop(small)
    out = members.copy()
    out["old"] = out["cluster_id"].astype(str)
    out["root"] = [root(i) for i in range(len(record))]
    # Parts numbered by their first record, so the same cut gives the same labels.
    first = pd.Series(record, index=out.index).groupby(out["root"]).transform("first")
    out["rank"] = first.groupby(out["old"]).rank(method="dense").astype(int)
    out["cluster_id"] = out["old"] + "~" + out["rank"].astype(str)
    return out


def rule_hits(con, settings, clusters: str, inputs: dict[str, str], id_column: str = "entity_id") -> dict:
    """Every entity that breaks one of `verify`'s rules: {check name: DataFrame (entity_id, what)}."""
    v = settings.verify
    checks = [(c, "single_valued") for c in v.single_valued] + [(c, "changes") for c in v.flag_changes]
    cols = list(dict.fromkeys([c for c, _ in checks] + ([v.max_span.column] if v.max_span else [])))
    if not cols:
        return {}
    ids = f"(SELECT source_dataset, unique_id, {id_column} AS entity_id FROM {clusters})"
    members = members_sql(ids, inputs, cols)
    out = {}
    for col, kind in checks:
        q = quote_ident(col)
        out[f"{kind}:{col}"] = con.execute(f"""
            SELECT entity_id, list(DISTINCT {q} ORDER BY {q}) AS values FROM ({members})
            WHERE nullif(trim({q}), '') IS NOT NULL GROUP BY entity_id HAVING count(DISTINCT {q}) > 1
            ORDER BY count(DISTINCT {q}) DESC, entity_id""").df()
    if v.max_span:
        q = quote_ident(v.max_span.column)
        out[f"span:{v.max_span.column}"] = con.execute(f"""
            SELECT entity_id, min(TRY_CAST(left({q}, 4) AS INT)) AS first, max(TRY_CAST(left({q}, 4) AS INT)) AS last
            FROM ({members}) GROUP BY entity_id HAVING last - first > {int(v.max_span.years)}
            ORDER BY last - first DESC, entity_id""").df()
    return out


def check_rules(con, settings, clusters: str, inputs: dict[str, str]) -> dict:
    """Entities (with their stable ids) that break `verify`'s rules: counts and up to 5 examples per check."""
    return {
        name: {"entities": len(hits), "examples": hits.head(5).to_dict("records")}
        for name, hits in rule_hits(con, settings, clusters, inputs).items()
    }


def audit_questions(con, settings, clusters: str, decisions: str, inputs: dict[str, str]) -> pd.DataFrame:
    """The pairs an entity audit asks the judge: for each entity to audit (flagged by a rule, or at least
    `verify.audit.min_size` records; largest first, at most `verify.audit.max_entities`), its anchor (the record
    with the most accepted pairs in it, then the first) against each of its other records. Columns: the pair
    key, match_probability (None for a pair blocking never scored), entity."""
    a = settings.verify.audit
    flagged = set()
    if a.flagged:
        for hits in rule_hits(con, settings, clusters, inputs, id_column="cluster_id").values():
            flagged |= set(hits["entity_id"].astype(str))
    sizes = con.execute(f"SELECT CAST(cluster_id AS VARCHAR) AS e, count(*) AS n FROM {clusters} GROUP BY 1").df()
    chosen = sizes[(sizes.n > 1) & ((sizes.n >= a.min_size) | sizes.e.isin(flagged))]
    chosen = chosen.sort_values(["n", "e"], ascending=[False, True]).head(a.max_entities)
    columns = [*PAIR_KEY, "match_probability", "entity"]
    if chosen.empty:
        return pd.DataFrame(columns=columns)
    with registered(con, "audit_entities", chosen[["e"]]):
        members = con.execute(f"""
            SELECT CAST(c.cluster_id AS VARCHAR) AS e, c.source_dataset, c.unique_id,
                (SELECT count(*) FROM {decisions} d WHERE d.final_match AND (
                    (d.source_dataset_l = c.source_dataset AND d.unique_id_l = c.unique_id) OR
                    (d.source_dataset_r = c.source_dataset AND d.unique_id_r = c.unique_id))) AS links
            FROM {clusters} c JOIN audit_entities a ON a.e = CAST(c.cluster_id AS VARCHAR)
            ORDER BY e, links DESC, source_dataset, unique_id""").df()
    rows = []
    for e, m in members.groupby("e", sort=False):
        anchor = m.iloc[0]
        for r in m.iloc[1:].itertuples(index=False):
            rows.append((*canonical_key(anchor.source_dataset, anchor.unique_id, r.source_dataset, r.unique_id), e))
    asked = pd.DataFrame(rows, columns=[*PAIR_KEY, "entity"])
    with registered(con, "audit_asked", asked):
        return con.execute(f"""
            SELECT q.*, d.match_probability FROM audit_asked q LEFT JOIN {decisions} d USING ({", ".join(PAIR_KEY)})
            ORDER BY q.entity, {", ".join("q." + k for k in PAIR_KEY)}""").df()[columns]
