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

from dataclasses import dataclass, field

import pandas as pd

from ..sql import drop_relation, registered, sql_literal
from .ids import mint_ids
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
    seen: str  # source_dataset, unique_id, content_hash, new: records new or changed (or back) in this run
    gone: str  # source_dataset, unique_id: records no longer in the inputs
    events: str  # EVENT_COLUMNS
    inputs: dict[str, str] | None = None  # source -> this run's input table, when the store keeps values
    all_records: bool = True  # the inputs are every record (a run), not only new ones (a resolve)
    resolutions: str | None = None  # RESOLUTION_COLUMNS rows (a resolve)
    key_rules: list[list[str]] = field(default_factory=list)  # the blocking rules the store keeps keys of


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
    if template == "{uuid}":  # the default: DuckDB mints them (a million in a blink, no Python loop)
        minted_sql = "SELECT cluster_id, CAST(uuid() AS VARCHAR) AS entity_id FROM ent_comp ANTI JOIN ent_heir USING (cluster_id)"
        table(
            "ent_map",
            f"""SELECT cluster_id, entity_id, false AS minted FROM ent_heir_ranked WHERE rk = 1
               UNION ALL SELECT cluster_id, entity_id, true FROM ({minted_sql})""",
        )
    else:
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
    # Records: only what changed is written (a run over the same inputs writes none): new records, records whose
    # content changed (or that came back), records no longer in the inputs. The content hash is DuckDB's 64-bit
    # hash of the whole normalized row, enough to tell a changed record from the same one.
    r = store.table("records")
    table(
        "ent_seen",
        " UNION ALL ".join(content_hash_sql(tbl) for tbl in inputs.values()),
    )
    seen = table(
        "ent_records_seen",
        f"""SELECT s.source_dataset, s.unique_id, s.content_hash, r.unique_id IS NULL AS new
            FROM ent_seen s LEFT JOIN {r} r USING (source_dataset, unique_id)
            WHERE r.unique_id IS NULL OR r.content_hash <> s.content_hash OR r.gone_run IS NOT NULL""",
    )
    gone = table(
        "ent_records_gone",
        f"""SELECT r.source_dataset, r.unique_id FROM {r} r ANTI JOIN ent_seen s USING (source_dataset, unique_id)
            WHERE r.gone_run IS NULL""",
    )
    events = table("ent_events", _events_sql(con, table, decisions, m, run))
    return Plan(assigned, added, removed, created, retired, changed, seen, gone, events, inputs)


def content_hash_sql(table: str) -> str:
    """Each record's content hash: DuckDB's 64-bit hash of its whole normalized row, enough to tell a changed
    record from the same one (runs and resolves compare it with the store's)."""
    return f"SELECT source_dataset, unique_id, printf('%016x', hash(t)) AS content_hash FROM {table} t"


def _mint(con, store: EntityStore, clusters: str, inputs: dict[str, str], template: str) -> pd.DataFrame:
    """New ids for the clusters heir to no stored entity, in record-key order (so a scoped `{seq}` is
    deterministic)."""
    ids = mint_ids(
        con,
        template,
        f"""SELECT c.cluster_id AS g, t.first_key AS k, c.source_dataset, c.unique_id
            FROM {clusters} c JOIN ent_comp t USING (cluster_id)
            WHERE c.cluster_id NOT IN (SELECT cluster_id FROM ent_heir)""",
        inputs,
        f"SELECT entity_id FROM {store.table('entities')}",
    )
    return pd.DataFrame({"cluster_id": list(ids), "entity_id": list(ids.values())}, dtype=object)


def _events_sql(con, table, decisions: str, m: str, run: str) -> str:
    """The events of this run (see the module docstring), numbered in a deterministic order. The evidence is
    looked up only for the records that changed entity, so a run that changes nothing costs next to nothing."""
    # Accepted pairs of each record that changed entity, to a record of its new entity (both ways round).
    table(
        "ent_added_links",
        f"""WITH d AS (SELECT * FROM {decisions} WHERE final_match), both_ways AS (
                SELECT a.source_dataset AS sd, a.unique_id AS uid, a.entity_id, d.source_dataset_r AS o_sd,
                    d.unique_id_r AS o_uid, d.decided_by, d.match_probability
                FROM ent_added a JOIN d ON d.source_dataset_l = a.source_dataset AND d.unique_id_l = a.unique_id
                UNION ALL
                SELECT a.source_dataset, a.unique_id, a.entity_id, d.source_dataset_l, d.unique_id_l, d.decided_by,
                    d.match_probability
                FROM ent_added a JOIN d ON d.source_dataset_r = a.source_dataset AND d.unique_id_r = a.unique_id)
            SELECT l.* FROM both_ways l JOIN ent_assigned o
                ON o.source_dataset = l.o_sd AND o.unique_id = l.o_uid AND o.entity_id = l.entity_id""",
    )
    merge_evidence = strongest_pairs_sql(
        f"""SELECT r.merged_into, r.entity_id, l.o_sd, l.o_uid, l.decided_by, l.match_probability
            FROM ent_retired r
            JOIN ent_removed x ON x.entity_id = r.entity_id
            JOIN ent_added_links l ON l.sd = x.source_dataset AND l.uid = x.unique_id
            LEFT JOIN {m} oo ON oo.source_dataset = l.o_sd AND oo.unique_id = l.o_uid
            WHERE r.merged_into IS NOT NULL AND oo.entity_id IS DISTINCT FROM r.entity_id""",
        "merged_into, entity_id",
    )
    parts = [
        """SELECT 1 AS k, 'created' AS event, entity_id, NULL AS other_entity_id, NULL AS source_dataset,
            NULL AS unique_id, json_object('size', size)::VARCHAR AS detail FROM ent_created""",
        # Its evidence is joined after numbering: the sort then moves narrow rows (1.35M at 1M records: 0.3 s less).
        "SELECT 2, 'record_added', entity_id, prev_entity, source_dataset, unique_id, NULL FROM ent_added",
        """SELECT 3, 'record_removed', entity_id, new_entity, source_dataset, unique_id,
            CASE WHEN new_entity IS NULL THEN 'not in this run''s inputs' ELSE 'moved' END FROM ent_removed""",
        """SELECT 5, 'retired', entity_id, merged_into, NULL, NULL,
            CASE WHEN merged_into IS NULL THEN 'no records left' ELSE 'merged' END FROM ent_retired""",
        # A merge: the accepted pairs that joined the retired entity's records to records it did not hold.
        f"SELECT 4, 'merged', merged_into, entity_id, NULL, NULL, detail FROM ({merge_evidence})",
    ]
    split = con.execute(
        "SELECT count(*) FROM ent_overlap o JOIN ent_map p USING (cluster_id) WHERE p.minted"
    ).fetchall()[0][0]
    if split:  # a part of an entity went to a new entity: the decided non-matches between the parts
        table(
            "ent_split_moved",
            """SELECT a.source_dataset AS sd, a.unique_id AS uid, a.prev_entity AS old_e, a.entity_id AS new_e
               FROM ent_added a JOIN ent_map p ON p.entity_id = a.entity_id AND p.minted
               WHERE a.prev_entity IS NOT NULL""",
        )
        evidence = f"""
            SELECT old_e, new_e, to_json(list({{'pair': [pair_l, pair_r], 'decided_by': decided_by,
                'match_probability': round(match_probability, 4)}}
                ORDER BY match_probability DESC, pair_l, pair_r)[1:3])::VARCHAR AS detail
            FROM (
                SELECT mv.old_e, mv.new_e, d.source_dataset_l || ':' || d.unique_id_l AS pair_l,
                    d.source_dataset_r || ':' || d.unique_id_r AS pair_r, d.decided_by, d.match_probability
                FROM ent_split_moved mv
                JOIN {decisions} d ON NOT d.final_match AND d.source_dataset_l = mv.sd AND d.unique_id_l = mv.uid
                JOIN ent_assigned o ON o.source_dataset = d.source_dataset_r AND o.unique_id = d.unique_id_r
                WHERE o.entity_id = mv.old_e
                UNION ALL
                SELECT mv.old_e, mv.new_e, d.source_dataset_l || ':' || d.unique_id_l,
                    d.source_dataset_r || ':' || d.unique_id_r, d.decided_by, d.match_probability
                FROM ent_split_moved mv
                JOIN {decisions} d ON NOT d.final_match AND d.source_dataset_r = mv.sd AND d.unique_id_r = mv.uid
                JOIN ent_assigned o ON o.source_dataset = d.source_dataset_l AND o.unique_id = d.unique_id_l
                WHERE o.entity_id = mv.old_e)
            GROUP BY old_e, new_e"""
        # Every split, with the decided non-matches between its parts ([] when they were joined through
        # records that are gone).
        parts.append(f"""
            SELECT 4, 'split', s.old_e, s.new_e, NULL, NULL, coalesce(ev.detail, '[]')
            FROM (SELECT DISTINCT h.entity_id AS old_e, p.entity_id AS new_e FROM ent_overlap o
                  JOIN ent_map p USING (cluster_id) JOIN ent_heir h ON h.entity_id = o.entity_id WHERE p.minted) s
            LEFT JOIN ({evidence}) ev USING (old_e, new_e)""")
    body = " UNION ALL ".join(parts)
    return f"""
        SELECT {run} AS run_id, e.seq, e.event, e.entity_id, e.other_entity_id, e.source_dataset, e.unique_id,
            coalesce(e.detail, c.detail) AS detail, now() AS time
        FROM (SELECT row_number() OVER (ORDER BY k, entity_id, source_dataset, unique_id, other_entity_id) AS seq, *
              FROM ({body})) e
        LEFT JOIN ({strongest_pairs_sql("SELECT * FROM ent_added_links", "sd, uid")}) c
            ON e.k = 2 AND c.sd = e.source_dataset AND c.uid = e.unique_id"""


def strongest_pairs_sql(rows: str, keys: str) -> str:
    """Per group of `keys` of the `rows` query (with o_sd, o_uid, decided_by, match_probability), the three
    strongest pairs as a JSON array in column `detail`; ties in probability go by a hash of the other record's key
    (deterministic). Ranked by a window and joined back, not aggregated: a top-n aggregate's per-group state
    cannot spill, and at 1M records under a 1 GB memory limit it ran out of memory; windows and joins spill."""
    return f"""WITH ranked AS (
            SELECT {keys}, to_json({{'with': o_sd || ':' || o_uid, 'decided_by': decided_by,
                'match_probability': round(match_probability, 4)}})::VARCHAR AS j,
                row_number() OVER (PARTITION BY {keys} ORDER BY match_probability DESC, hash(o_sd, o_uid) DESC) AS rk
            FROM ({rows}))
        SELECT {keys}, '[' || a.j || coalesce(',' || b.j, '') || coalesce(',' || c.j, '') || ']' AS detail
        FROM (SELECT * FROM ranked WHERE rk = 1) a
        LEFT JOIN (SELECT * FROM ranked WHERE rk = 2) b USING ({keys})
        LEFT JOIN (SELECT * FROM ranked WHERE rk = 3) c USING ({keys})"""


__all__ = ["Plan", "plan_changes", "strongest_pairs_sql", "EVENT_COLUMNS"]
