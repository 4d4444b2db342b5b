"""Clusters: connected components over the final matches, with Splink's own clustering (the entity layer,
splink_er/entities, then gives each cluster its stable entity id)."""

from __future__ import annotations

from .model import make_linker
from .pairs import PAIR_KEY


def cluster(db, sdfs: list, model: dict, decisions: str, table: str = "run_clusters") -> str:
    """Create DuckDB table `table` (source_dataset, unique_id, cluster_id) from decisions.final_match.

    Every input record gets a cluster; records with no final match are clusters of their own.
    """
    con = db.duckdb_con
    con.execute(
        f"CREATE OR REPLACE TABLE final_links AS SELECT {', '.join(PAIR_KEY)}, "
        f"CASE WHEN final_match THEN 1.0 ELSE 0.0 END AS match_probability FROM {decisions} WHERE final_match"
    )
    links = db.table_to_splink_dataframe("final_links", "final_links")
    linker = make_linker(sdfs, model)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(links, threshold_match_probability=0.5)
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT source_dataset, unique_id, cluster_id "
        f"FROM {clustered.physical_name} ORDER BY source_dataset, unique_id"
    )
    clustered.drop_table_from_database_and_remove_from_cache()
    return table
