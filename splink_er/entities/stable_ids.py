"""This run's clusters + the stored membership -> stable entity ids and the events between the two.

The rules, applied in order (all in DuckDB SQL, so a million records cost seconds):
1. Every stored entity has one heir: the new cluster holding most of its members (ties: the larger cluster, then
   the smallest record key). A split entity's id so goes to its largest part.
2. A cluster that is heir to one entity takes its id. Heir to several (a merge), it takes the id of the oldest
   (created first), then the larger, then the smallest id; the others are retired, pointing to it.
3. A cluster heir to none gets a new id (`entities.id_template`): new records, or a part split off.
4. A stored entity none of whose records is in this run's inputs is retired.

Events (the change feed; one row each, numbered in `seq`): `created`; `record_added` and `record_removed` for
every change of a record's entity (with the entity it came from or went to, and as `detail` the accepted pairs
that put it there); `merged` on the survivor and `retired` on each entity merged into it (with pairs that joined
them); `split` on an entity that lost a part to a new entity (with pairs between the parts that were decided
non-matches); `retired` for an entity with no records left. A run that changes no membership has no events.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..sql import drop_relation, registered, sql_literal
from .ids import IdTemplate
from .store import EVENT_COLUMNS, EntityStore

SEP = "chr(31)"  # between source and id in a record key: a character no id contains


@dataclass
class Plan:
    """Names of the tables (in the job's database) that say what a run changes in the store."""

    assigned: str  # source_dataset, unique_id, entity_id: every record of this run
    added: str  # membership rows to insert (with prev_entity)
    removed: str  # membership rows to delete (with new_entity)
    created: str  # entity_id, size, created_seq
    retired: str  # entity_id, merged_into
    changed_sizes: str  # entity_id, size
    seen: str  # source_dataset, unique_id, content_hash
    events: str  # EVENT_COLUMNS


def plan_changes(
    con,
    store: EntityStore,
    clusters: str,
    decisions: str,
    inputs: dict[str, str],
    run_id: str,
    template: str,
) -> Plan:
    """What this run changes (see the module docstring); reads the store, writes only `ent_*` tables here."""
    m, e = store.table("membership"), store.table("entities")
    run = sql_literal(run_id)

    def table(name: str, sql: str) -> str:
        drop_relation(con, name)
        con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        return name

    table(
        "ent_comp",
        f"SELECT cluster_id, count(*) AS n, min(source_dataset || {SEP} || unique_id) AS first_key "
        f"FROM {clusters} GROUP BY cluster_id",
    )
    table(
        "ent_overlap",
        f"SELECT c.cluster_id, m.entity_id, count(*) AS shared FROM {clusters} c "
        f"JOIN {m} m USING (source_dataset, unique_id) GROUP BY ALL",
    )
    table(
        "ent_heir",
        """SELECT entity_id, cluster_id FROM (
            SELECT o.entity_id, o.cluster_id, row_number() OVER (
                PARTITION BY o.entity_id ORDER BY o.shared DESC, c.n DESC, c.first_key) AS rk
            FROM ent_overlap o JOIN ent_comp c USING (cluster_id)) WHERE rk = 1""",
    )
    table(
        "ent_heir_ranked",
        f"""SELECT h.cluster_id, h.entity_id, row_number() OVER (
                PARTITION BY h.cluster_id ORDER BY s.created_seq, s.size DESC, s.entity_id) AS rk
            FROM ent_heir h JOIN {e} s USING (entity_id)""",
    )
    minted = _mint(con, store, clusters, inputs, template)
    with registered(con, "ent_minted_df", minted):
        table(
            "ent_map",
            """SELECT cluster_id, entity_id, false AS minted FROM ent_heir_ranked WHERE rk = 1
               UNION ALL SELECT cluster_id, entity_id, true FROM ent_minted_df""",
        )
    assigned = table(
        "ent_assigned",
        f"SELECT c.source_dataset, c.unique_id, p.entity_id FROM {clusters} c JOIN ent_map p USING (cluster_id)",
    )
    added = table(
        "ent_added",
        f"""SELECT a.source_dataset, a.unique_id, a.entity_id, m.entity_id AS prev_entity
            FROM ent_assigned a LEFT JOIN {m} m USING (source_dataset, unique_id)
            WHERE m.entity_id IS DISTINCT FROM a.entity_id""",
    )
    removed = table(
        "ent_removed",
        f"""SELECT m.source_dataset, m.unique_id, m.entity_id, a.entity_id AS new_entity
            FROM {m} m LEFT JOIN ent_assigned a USING (source_dataset, unique_id)
            WHERE a.entity_id IS DISTINCT FROM m.entity_id""",
    )
    next_seq = store.next_created_seq()
    created = table(
        "ent_created",
        f"""SELECT p.entity_id, c.n AS size, {next_seq} - 1 + row_number() OVER (ORDER BY c.first_key) AS created_seq
            FROM ent_map p JOIN ent_comp c USING (cluster_id) WHERE p.minted""",
    )
    retired = table(
        "ent_retired",
        f"""SELECT r.entity_id, w.entity_id AS merged_into
            FROM ent_heir_ranked r JOIN ent_heir_ranked w ON w.cluster_id = r.cluster_id AND w.rk = 1
            WHERE r.rk > 1
            UNION ALL
            SELECT s.entity_id, NULL FROM {e} s
            WHERE s.status = 'active' AND s.entity_id NOT IN (SELECT entity_id FROM ent_heir)""",
    )
    changed = table(
        "ent_changed_sizes",
        f"""SELECT p.entity_id, c.n AS size FROM ent_map p JOIN ent_comp c USING (cluster_id)
            JOIN {e} s USING (entity_id) WHERE NOT p.minted AND s.size IS DISTINCT FROM c.n""",
    )
    seen = table(
        "ent_seen",
        " UNION ALL ".join(
            f"SELECT source_dataset, unique_id, md5(CAST(t AS VARCHAR)) AS content_hash FROM {tbl} t"
            for tbl in inputs.values()
        ),
    )
    events = table("ent_events", _events_sql(con, decisions, m, run))
    return Plan(assigned, added, removed, created, retired, changed, seen, events)


def _mint(con, store: EntityStore, clusters: str, inputs: dict[str, str], template: str) -> pd.DataFrame:
    """New ids for the clusters heir to no stored entity, in record-key order (so a scoped `{seq}` is
    deterministic)."""
    tpl = IdTemplate(template)
    todo = con.execute(
        "SELECT c.cluster_id, c.first_key FROM ent_comp c "
        "WHERE c.cluster_id NOT IN (SELECT cluster_id FROM ent_heir) ORDER BY c.first_key"
    ).df()
    if todo.empty:
        return pd.DataFrame({"cluster_id": pd.Series(dtype=str), "entity_id": pd.Series(dtype=str)})
    values = pd.DataFrame(index=todo["cluster_id"])
    if tpl.fields:
        members = " UNION ALL ".join(
            f"SELECT source_dataset, unique_id, {', '.join(tpl.fields)} FROM {t}" for t in inputs.values()
        )
        for f in tpl.fields:  # the most common non-empty value of each field per cluster (ties: the smallest)
            top = con.execute(f"""
                SELECT cluster_id, v FROM (
                    SELECT c.cluster_id, CAST(i.{f} AS VARCHAR) AS v, row_number() OVER (
                        PARTITION BY c.cluster_id ORDER BY count(*) DESC, CAST(i.{f} AS VARCHAR)) AS rk
                    FROM {clusters} c JOIN ({members}) i USING (source_dataset, unique_id)
                    WHERE i.{f} IS NOT NULL AND CAST(i.{f} AS VARCHAR) <> ''
                    GROUP BY c.cluster_id, CAST(i.{f} AS VARCHAR)) WHERE rk = 1""").df()
            values[f] = top.set_index("cluster_id")["v"]
    taken = {r[0] for r in con.execute(f"SELECT entity_id FROM {store.table('entities')}").fetchall()}
    mint = tpl.minter(taken)
    rows = values.astype(object).where(values.notna(), None).to_dict("records") if tpl.fields else [{}] * len(todo)
    return pd.DataFrame({"cluster_id": todo["cluster_id"], "entity_id": [mint(v) for v in rows]})


def _events_sql(con, decisions: str, m: str, run: str) -> str:
    """The events of this run (see the module docstring), numbered in a deterministic order."""
    # Accepted pairs, both ways round: the evidence that put a record in its entity.
    links = f"""
        SELECT source_dataset_l AS sd, unique_id_l AS uid, source_dataset_r AS o_sd, unique_id_r AS o_uid,
            decided_by, match_probability FROM {decisions} WHERE final_match
        UNION ALL
        SELECT source_dataset_r, unique_id_r, source_dataset_l, unique_id_l, decided_by, match_probability
        FROM {decisions} WHERE final_match"""

    # The three strongest of them, as JSON.
    pairs = """to_json(list({'with': l.o_sd || ':' || l.o_uid, 'decided_by': l.decided_by,
        'match_probability': round(l.match_probability, 4)} ORDER BY l.match_probability DESC,
        l.o_sd, l.o_uid)[1:3])::VARCHAR"""

    has_merge = con.execute("SELECT count(*) FROM ent_heir_ranked WHERE rk > 1").fetchall()[0][0] > 0
    has_split = (
        con.execute(
            "SELECT count(*) FROM ent_overlap o JOIN ent_map p USING (cluster_id) "
            "JOIN ent_heir h ON h.entity_id = o.entity_id WHERE p.minted"
        ).fetchall()[0][0]
        > 0
    )
    parts = [
        """SELECT 1 AS k, 'created' AS event, entity_id, NULL AS other_entity_id, NULL AS source_dataset,
            NULL AS unique_id, json_object('size', size)::VARCHAR AS detail FROM ent_created""",
        f"""SELECT 2, 'record_added', a.entity_id, a.prev_entity, a.source_dataset, a.unique_id,
            (SELECT {pairs} FROM ({links}) l JOIN ent_assigned o
                ON o.source_dataset = l.o_sd AND o.unique_id = l.o_uid
             WHERE l.sd = a.source_dataset AND l.uid = a.unique_id AND o.entity_id = a.entity_id)
            FROM ent_added a""",
        """SELECT 3, 'record_removed', entity_id, new_entity, source_dataset, unique_id,
            CASE WHEN new_entity IS NULL THEN 'not in this run''s inputs' ELSE 'moved' END FROM ent_removed""",
        """SELECT 5, 'retired', entity_id, merged_into, NULL, NULL,
            CASE WHEN merged_into IS NULL THEN 'no records left' ELSE 'merged' END FROM ent_retired""",
    ]
    if has_merge:  # the pairs that joined a retired entity's records to the rest of the survivor's cluster
        parts.append(f"""
            SELECT 4, 'merged', r.merged_into, r.entity_id, NULL, NULL,
                (SELECT {pairs} FROM ({links}) l
                 JOIN {m} om ON om.source_dataset = l.sd AND om.unique_id = l.uid AND om.entity_id = r.entity_id
                 JOIN ent_assigned o ON o.source_dataset = l.o_sd AND o.unique_id = l.o_uid
                 LEFT JOIN {m} oo ON oo.source_dataset = l.o_sd AND oo.unique_id = l.o_uid
                 WHERE o.entity_id = r.merged_into AND oo.entity_id IS DISTINCT FROM r.entity_id)
            FROM ent_retired r WHERE r.merged_into IS NOT NULL""")
    if has_split:  # a part of an entity went to a new entity: the decided non-matches between the parts
        parts.append(f"""
            SELECT 4, 'split', h.entity_id, p.entity_id, NULL, NULL,
                (SELECT to_json(list({{'pair': [d.source_dataset_l || ':' || d.unique_id_l,
                        d.source_dataset_r || ':' || d.unique_id_r], 'decided_by': d.decided_by,
                        'match_probability': round(d.match_probability, 4)}}
                        ORDER BY d.match_probability DESC)[1:3])::VARCHAR
                 FROM {decisions} d
                 JOIN ent_assigned x ON x.source_dataset = d.source_dataset_l AND x.unique_id = d.unique_id_l
                 JOIN ent_assigned y ON y.source_dataset = d.source_dataset_r AND y.unique_id = d.unique_id_r
                 JOIN {m} mx ON mx.source_dataset = x.source_dataset AND mx.unique_id = x.unique_id
                 JOIN {m} my ON my.source_dataset = y.source_dataset AND my.unique_id = y.unique_id
                 WHERE NOT d.final_match AND mx.entity_id = h.entity_id AND my.entity_id = h.entity_id
                   AND ((x.entity_id = p.entity_id) <> (y.entity_id = p.entity_id)))
            FROM ent_overlap o JOIN ent_map p USING (cluster_id) JOIN ent_heir h ON h.entity_id = o.entity_id
            WHERE p.minted""")
    body = " UNION ALL ".join(parts)
    return f"""
        SELECT {run} AS run_id, row_number() OVER (ORDER BY k, entity_id, source_dataset, unique_id,
            other_entity_id) AS seq, event, entity_id, other_entity_id, source_dataset, unique_id, detail,
            now() AS time
        FROM ({body})"""


__all__ = ["Plan", "plan_changes", "EVENT_COLUMNS"]
