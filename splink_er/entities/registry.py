"""The canonical layer: per entity one canonical value per configured field, every alias, and temporal chains.

As the election design documents choose canonical names: among an entity's records, the value of the most
complete record (most configured fields filled), then of the source earliest in `registry.source_priority`, then
of the most recent record (`registry.recency_column`), then the longest value, then the smallest; a field that
record lacks comes from the next record that has it. Aliases are every distinct raw value of a field with its
sources and how many records carry it. A chain has one row per entity and value of `registry.chain.keys` (e.g.
election date and contest) with the records' count and the sums of `registry.chain.sums` (e.g. votes).

All in DuckDB SQL over the run's inputs and its stable ids; written as entities.parquet, aliases.parquet,
chains.parquet and records.parquet / records.csv (every input record with its entity id and canonical fields).
"""

from __future__ import annotations

from ..sql import drop_relation, quote_ident, sql_literal


def members_sql(clusters: str, inputs: dict[str, str], columns: list[str]) -> str:
    """Every input record's chosen columns (as text) with its entity id (`clusters`: source_dataset, unique_id,
    entity_id)."""
    cols = "".join(f", CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in columns)
    union = " UNION ALL ".join(f"SELECT source_dataset, unique_id{cols} FROM {t}" for t in inputs.values())
    return f"SELECT c.entity_id, i.* FROM {clusters} c JOIN ({union}) i USING (source_dataset, unique_id)"


def build(con, settings, clusters: str, inputs: dict[str, str]) -> dict[str, str]:
    """Create the registry tables (`reg_entities`, `reg_aliases`, `reg_chains`, `reg_records`); returns
    {output file stem: table}."""
    r = settings.registry
    fields = list(r.fields)
    chain_cols = list(r.chain.keys) + list(r.chain.sums) if r.chain else []
    recency = [r.recency_column] if r.recency_column else []
    cols = list(dict.fromkeys(fields + list(r.alias_fields) + chain_cols + recency))
    drop_relation(con, "reg_members")
    con.execute(f"CREATE TEMP TABLE reg_members AS {members_sql(clusters, inputs, cols)}")
    priority = " ".join(f"WHEN {sql_literal(s)} THEN {i}" for i, s in enumerate(r.source_priority))
    priority_sql = f"CASE source_dataset {priority} ELSE {len(r.source_priority)} END" if priority else "0"
    filled = " + ".join(f"(nullif(trim({quote_ident(f)}), '') IS NOT NULL)::INT" for f in fields) or "0"
    recent = f"{quote_ident(r.recency_column)} DESC NULLS LAST, " if r.recency_column else ""
    drop_relation(con, "reg_ranked")
    con.execute(
        f"CREATE TEMP TABLE reg_ranked AS SELECT *, {filled} AS completeness, {priority_sql} AS priority "
        "FROM reg_members"
    )
    tables = {}

    # One row per entity: size, sources, and the canonical value of each field (see the module docstring).
    joins = ""
    for i, f in enumerate(fields):
        q = quote_ident(f)
        joins += f"""
            LEFT JOIN (SELECT entity_id, v AS {q} FROM (
                SELECT entity_id, nullif(trim({q}), '') AS v, row_number() OVER (PARTITION BY entity_id ORDER BY
                    completeness DESC, priority, {recent}length({q}) DESC, {q}, source_dataset, unique_id) AS rk
                FROM reg_ranked WHERE nullif(trim({q}), '') IS NOT NULL) WHERE rk = 1) f{i} USING (entity_id)"""
    drop_relation(con, "reg_entities")
    con.execute(f"""
        CREATE TEMP TABLE reg_entities AS
        SELECT e.entity_id, e.size, e.sources{"".join(", " + quote_ident(f) for f in fields)}
        FROM (SELECT entity_id, count(*) AS size, list(DISTINCT source_dataset ORDER BY source_dataset) AS sources
              FROM reg_members GROUP BY entity_id) e{joins}
        ORDER BY e.entity_id""")
    tables["entities"] = "reg_entities"

    alias_fields = list(r.alias_fields) or fields
    if alias_fields:
        drop_relation(con, "reg_aliases")
        con.execute(
            "CREATE TEMP TABLE reg_aliases AS "
            + " UNION ALL ".join(
                f"""SELECT entity_id, {sql_literal(f)} AS field, {quote_ident(f)} AS value, count(*) AS records,
                    list(DISTINCT source_dataset ORDER BY source_dataset) AS sources
                    FROM reg_members WHERE nullif(trim({quote_ident(f)}), '') IS NOT NULL GROUP BY ALL"""
                for f in alias_fields
            )
            + " ORDER BY entity_id, field, records DESC, value"
        )
        tables["aliases"] = "reg_aliases"

    if r.chain:
        keys = ", ".join(quote_ident(k) for k in r.chain.keys)
        sums = "".join(f", sum(TRY_CAST({quote_ident(s)} AS DOUBLE)) AS {quote_ident(s)}" for s in r.chain.sums)
        drop_relation(con, "reg_chains")
        con.execute(f"""
            CREATE TEMP TABLE reg_chains AS
            SELECT entity_id, {keys}, count(*) AS records,
                list(DISTINCT source_dataset ORDER BY source_dataset) AS sources{sums}
            FROM reg_members GROUP BY entity_id, {keys} ORDER BY entity_id, {keys}""")
        tables["chains"] = "reg_chains"

    canon_cols = "".join(f", e.{quote_ident(f)} AS {quote_ident('canonical_' + f)}" for f in fields)
    drop_relation(con, "reg_records")
    con.execute(f"""
        CREATE TEMP TABLE reg_records AS
        SELECT m.source_dataset, m.unique_id, m.entity_id{canon_cols}
        FROM {clusters} m JOIN reg_entities e USING (entity_id) ORDER BY m.source_dataset, m.unique_id""")
    tables["records"] = "reg_records"
    return tables
