"""One DuckDB connection kept across resolves: what `splink-er serve` keeps warm between requests.

Opening a DuckDB database costs about 40 ms, as much as a one-record resolve's replayed predict. Each use starts
from the state the connection had when it was made: every table, view and attached database a use created is
dropped after it (a failed use too), so nothing of one request can reach the next; when that cleaning fails,
the connection is replaced by a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..sql import quote_ident


class WarmConnection:
    def __init__(self) -> None:
        self.con = self._connect()
        self._clean = self._objects()

    @staticmethod
    def _connect():
        import duckdb

        return duckdb.connect()

    def _objects(self) -> set[tuple[str, str, str, str]]:
        """(kind, database, schema, name) of every relation and attached database a use can create."""
        return set(
            self.con.execute("""
                SELECT 'VIEW', database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal
                UNION ALL SELECT 'TABLE', database_name, schema_name, table_name FROM duckdb_tables()
                UNION ALL SELECT 'DATABASE', database_name, '', '' FROM duckdb_databases() WHERE NOT internal
            """).fetchall()
        )

    @contextmanager
    def use(self) -> Iterator:
        """The connection, cleaned after the block (see the module docstring)."""
        try:
            yield self.con
        finally:
            self.reset()

    def reset(self) -> None:
        try:
            self._drop_new()
            if self._objects() == self._clean:
                return
        except Exception:  # noqa: BLE001 - whatever went wrong, a new connection is clean
            pass
        self.close()
        self.con = self._connect()

    def _drop_new(self) -> None:
        con = self.con
        try:
            con.execute("ROLLBACK")  # a use that failed inside a transaction
        except Exception:  # noqa: BLE001 - none was open: the usual case
            pass
        order = {"VIEW": 0, "TABLE": 1, "DATABASE": 2}  # views read tables; attached databases go last
        own = {d for k, d, _, _ in self._clean if k == "DATABASE"} | {"temp", "memory"}  # not an attached file's
        for kind, db, schema, name in sorted(self._objects() - self._clean, key=lambda o: order[o[0]]):
            if kind == "DATABASE":
                con.execute(f"DETACH DATABASE IF EXISTS {quote_ident(db)}")
            elif db in own:
                con.execute(f"DROP {kind} IF EXISTS {quote_ident(db)}.{quote_ident(schema)}.{quote_ident(name)}")

    def close(self) -> None:
        try:
            self.con.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
