"""Indexes that let a resolve read a few stored records without scanning them all (what `splink-er serve` keeps).

A one-record resolve against a 1M-record store read every stored row a dozen times (membership, records, values,
keys, entities): about 60 ms a table at 1M rows, most of a 700 ms request. DuckDB answers a filter on a column
with an ART index by looking the values up, when they are few (`index_scan_max_count`, 2048 rows) and the filter
is on that one column: `col = value`, `col IN (values)`, or a join whose other side has at most
`dynamic_or_filter_threshold` values (raised by `for_lookups`). So the store indexes each table's one-column
lookup keys: unique_id (membership, records, resolutions, values), entity_id (membership, entities), and each
hashed blocking key (blocking_keys.py). A resolve reads the rows of its records in two statements
(`EntityStore.rows_of`): first by unique_id alone (the index serves it), then by (source_dataset, unique_id) on
that handful; one statement would join on both columns, which no one-column index serves.

Indexes cost space (about 3x the store's file at 1M records) and 7 s to build at 1M records, and an index makes
writing a million rows slow. So they are the service's choice, not every store's: `ensure` builds the missing ones
(`splink-er serve` at start, or `splink-er entities index`); a batch run's commit drops them before rewriting
and builds them again after, so a store indexed for serving stays indexed. A store without them resolves the
same records the same way, by scanning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from ..sql import quote_ident
from . import blocking_keys

# table -> the columns a resolve looks rows up by (values__/keys__ tables are per source: see `wanted`)
LOOKUP_COLUMNS = {
    "membership": ["unique_id", "entity_id"],
    "records": ["unique_id"],
    "resolutions": ["unique_id"],
    "entities": ["entity_id"],
}
PREFIX = "serving_"
# DuckDB pushes a join's other side into the scan as an IN filter (which an index answers) only up to this many
# values (default 50): a one-record resolve has a few hundred candidates. Beyond about a thousand the lookups
# (some 45 us each on 1M string keys) cost more than the scan they save (measured: 200 keys 15 ms instead of 83,
# 1,000 keys 57 instead of 74, 1,700 keys 90 instead of 70).
LOOKUP_FILTER_VALUES = 1000


def index_name(table: str, column: str) -> str:
    digest = hashlib.sha256(f"{table}.{column}".encode()).hexdigest()[:12]
    return f"{PREFIX}{digest}"


def wanted(con, database: str) -> list[tuple[str, str]]:
    """(table, column) of every index the store's tables call for now."""
    tables = {
        t: blocking_keys.table_columns(con, database, t)
        for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [database]).fetchall()
    }
    out = [(t, c) for t, cols in LOOKUP_COLUMNS.items() for c in cols if c in tables.get(t, {})]
    for t, cols in sorted(tables.items()):
        if t.startswith("values__") and "unique_id" in cols:
            out.append((t, "unique_id"))
        elif t.startswith("keys__"):
            out += [(t, c) for c in cols if c.startswith("k_")]
    return out


def present(con, database: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT index_name FROM duckdb_indexes() WHERE database_name = ? AND starts_with(index_name, ?)",
            [database, PREFIX],
        ).fetchall()
    }


def ensure(con, database: str) -> list[str]:
    """Build the indexes the store lacks (inside the caller's transaction, if any); returns the tables.columns
    built."""
    have = present(con, database)
    built = []
    for table, column in wanted(con, database):
        name = index_name(table, column)
        if name not in have:
            con.execute(f"CREATE INDEX {name} ON {quote_ident(database)}.{quote_ident(table)} ({quote_ident(column)})")
            built.append(f"{table}.{column}")
    return built


def drop(con, database: str) -> bool:
    """Drop every serving index; returns whether there was any (then the caller builds them again after)."""
    names = present(con, database)
    for name in sorted(names):
        con.execute(f"DROP INDEX IF EXISTS {quote_ident(database)}.{quote_ident(name)}")
    return bool(names)


def for_lookups(con) -> None:
    """Let joins with a few hundred values on one side be answered by the indexes (see LOOKUP_FILTER_VALUES)."""
    con.execute(f"SET dynamic_or_filter_threshold = {LOOKUP_FILTER_VALUES}")


@contextmanager
def scanning(con) -> Iterator[None]:
    """DuckDB's own threshold inside the block, for lookups whose values each match many rows (blocking keys: a
    common surname with a birth year): 100 records' candidates took 119 ms looked up, 66 ms scanned; up to 50
    values DuckDB still looks them up."""
    con.execute("RESET dynamic_or_filter_threshold")
    try:
        yield
    finally:
        for_lookups(con)
