"""The one pair-count formula (sql.pairs_in_groups) against brute force: possible pairs and true pairs."""

import itertools
from types import SimpleNamespace

import duckdb
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from splink_er.evaluate import true_pair_count
from splink_er.sources import LoadedSources
from splink_er.sql import possible_pairs

LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")


def brute_force(link_type: str, records: list[tuple[str, str | None]]) -> tuple[int, int]:
    """(possible pairs, pairs sharing a truth value) by listing every pair the job could compare."""
    possible = true = 0
    for (sa, ta), (sb, tb) in itertools.combinations(records, 2):
        if link_type == "link_only" and sa == sb:
            continue
        possible += 1
        true += ta is not None and ta == tb
    return possible, true


sources = st.lists(st.lists(st.sampled_from(["x", "y", "z", None]), max_size=7), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(truths=sources, link_type=st.sampled_from(LINK_TYPES))
def test_pair_counts_match_brute_force(truths, link_type):
    if link_type == "dedupe_only":
        truths = truths[:1]
    records = [(f"s{i}", t) for i, ts in enumerate(truths) for t in ts]
    con = duckdb.connect()
    tables = {}
    for i, ts in enumerate(truths):
        frame = pd.DataFrame({"source_dataset": f"s{i}", "unique_id": range(len(ts)), "t": pd.Series(ts, dtype=object)})
        con.register(f"f{i}", frame)
        con.execute(f"CREATE TABLE s{i} AS SELECT * FROM f{i}")
        tables[f"s{i}"] = f"s{i}"
    loaded = LoadedSources(tables=tables, row_counts={k: len(ts) for k, ts in zip(tables, truths)}, input_hashes={})
    possible, true = brute_force(link_type, records)
    assert possible_pairs(link_type, [len(ts) for ts in truths]) == possible
    assert true_pair_count(con, loaded, SimpleNamespace(link_type=link_type), "t") == true
