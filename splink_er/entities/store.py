"""The entity store: one DuckDB file, readable with plain SQL.

Tables (DuckDB SQL reads them directly: `ATTACH 'x.entities.duckdb' AS s (READ_ONLY); FROM s.entities`):
    records     source_dataset, unique_id, content_hash, first_seen_run, changed_run (content last changed),
                gone_run (the run whose inputs first lacked it; NULL while the inputs hold it)
    entities    entity_id, status (active / retired), created_run, updated_run, merged_into, size, created_seq
    membership  source_dataset, unique_id, entity_id, since_run   (active entities only)
    events      run_id, seq, event, entity_id, other_entity_id, source_dataset, unique_id, detail, time
    runs        run_id, time, records, entities, events
    resolutions run_id, source_dataset, unique_id, content_hash, action (MERGE / REVIEW / INSERT), entity_id:
                what `resolve` decided for each record it was sent
    values__<source>  every record's normalized values (entities.keep_values), what `resolve` compares with
    keys__<source>    the blocking rules' columns of those values hashed, how `resolve` finds its candidates
                      (blocking_keys.py)

A run changes the store in one DuckDB transaction (`commit`): a run killed at any moment leaves the store as it
was before or as it is after, never between. One process writes at a time (`locks.hold` beside the file, taken
when the job starts, so a second writer stops before loading anything).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from ..errors import Busy, InputError
from ..sql import drop_relation, quote_ident, sql_literal
from . import blocking_keys, serving_indexes

ALIAS = "entity_store"

# No keys, and no index unless the store serves lookups (serving_indexes.py, built by `splink-er serve`): every
# write is a set computed to be unique (stable_ids.py), and an index would cost a batch run more than it saves
# (a million-row insert into an ART index took longer than the rest of the commit).
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS {s}.records (
        source_dataset VARCHAR, unique_id VARCHAR, content_hash VARCHAR, first_seen_run VARCHAR,
        changed_run VARCHAR, gone_run VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS {s}.entities (
        entity_id VARCHAR, status VARCHAR, created_run VARCHAR, updated_run VARCHAR,
        merged_into VARCHAR, size BIGINT, created_seq BIGINT)""",
    """CREATE TABLE IF NOT EXISTS {s}.membership (
        source_dataset VARCHAR, unique_id VARCHAR, entity_id VARCHAR, since_run VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS {s}.events (
        run_id VARCHAR, seq BIGINT, event VARCHAR, entity_id VARCHAR, other_entity_id VARCHAR,
        source_dataset VARCHAR, unique_id VARCHAR, detail VARCHAR, time TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS {s}.runs (
        run_id VARCHAR, time TIMESTAMPTZ, records BIGINT, entities BIGINT, events BIGINT)""",
    """CREATE TABLE IF NOT EXISTS {s}.resolutions (
        run_id VARCHAR, source_dataset VARCHAR, unique_id VARCHAR, content_hash VARCHAR, action VARCHAR,
        entity_id VARCHAR)""",
]

EVENT_COLUMNS = [
    "run_id", "seq", "event", "entity_id", "other_entity_id", "source_dataset", "unique_id", "detail", "time",
]  # fmt: skip


class EntityStore:
    """The store attached to a DuckDB connection as `entity_store` (see the module docstring)."""

    def __init__(self, con, path: str | Path, read_only: bool = False) -> None:
        self.con, self.path, self.read_only = con, Path(path), read_only
        if read_only and not self.path.exists():
            raise InputError(f"{self.path} not found: no entity store yet (a run with entities.enabled creates it)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con.execute(
                f"ATTACH IF NOT EXISTS {sql_literal(self.path)} AS {ALIAS}" + (" (READ_ONLY)" if read_only else "")
            )
        except Exception as e:  # duckdb raises its own classes; the message says what the file is
            if "lock" in str(e).lower():
                raise Busy(
                    f"entity store {self.path} is being written by another splink-er process; try again when it "
                    "has finished"
                ) from None
            raise InputError(f"{self.path} is not a readable entity store (a DuckDB file): {e}") from None
        if not read_only:
            for ddl in SCHEMA:
                con.execute(ddl.format(s=ALIAS))

    def table(self, name: str) -> str:
        return f"{ALIAS}.{name}"

    def is_empty(self) -> bool:
        return self.con.execute(f"SELECT count(*) FROM {self.table('entities')}").fetchall()[0][0] == 0

    def next_created_seq(self) -> int:
        return self.con.execute(f"SELECT coalesce(max(created_seq), 0) + 1 FROM {self.table('entities')}").fetchall()[
            0
        ][0]

    def rows_of(self, table: str, records: str, into: str) -> str:
        """A temp table `into` holding the rows of the store's `table` (a name, or `values_table(...)`) whose
        (source_dataset, unique_id) is a row of `records` (a SELECT). Two statements: by unique_id alone, which
        the store's serving index answers without a scan, then by both columns on those few rows
        (serving_indexes.py). Returns `into`."""
        con = self.con
        drop_relation(con, into)
        con.execute(f"CREATE TEMP TABLE {into} AS {self.lookup_sql(table, records)}")
        con.execute(f"""
            DELETE FROM {into} x WHERE NOT EXISTS (
                SELECT 1 FROM ({records}) r WHERE r.source_dataset = x.source_dataset AND r.unique_id = x.unique_id)""")
        return into

    def lookup_sql(self, table: str, records: str) -> str:
        """rows_of's first statement: the rows of `table` whose unique_id is one of `records`' (any source)."""
        full = table if "." in table else self.table(table)
        return f"SELECT * FROM {full} WHERE unique_id IN (SELECT unique_id FROM ({records}))"

    def commit(self, run_id: str, plan) -> None:
        """Apply one run's changes (a `stable_ids.Plan`, whose tables live in the job's own database) in one
        transaction: all of it or nothing. A run's commit rewrites most rows: the serving indexes are dropped
        first and built again after the commit (serving_indexes.py), which costs less than keeping them on the
        way; a failed rebuild (a full disk: they triple the file) loses no run, the service builds them again.
        """
        t = self.table
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            indexed = plan.all_records and serving_indexes.drop(con, ALIAS)
            con.execute(f"""
                DELETE FROM {t("membership")} m USING {plan.removed} r
                WHERE m.source_dataset = r.source_dataset AND m.unique_id = r.unique_id""")
            con.execute(f"""
                INSERT INTO {t("membership")}
                SELECT source_dataset, unique_id, entity_id, {sql_literal(run_id)} FROM {plan.added}""")
            con.execute(f"""
                UPDATE {t("entities")} e SET status = 'retired', merged_into = r.merged_into,
                    updated_run = {sql_literal(run_id)}, size = 0
                FROM {plan.retired} r WHERE e.entity_id = r.entity_id""")
            con.execute(f"""
                UPDATE {t("entities")} e SET size = c.size, updated_run = {sql_literal(run_id)}
                FROM {plan.changed_sizes} c WHERE e.entity_id = c.entity_id""")
            con.execute(f"""
                INSERT INTO {t("entities")}
                SELECT entity_id, 'active', {sql_literal(run_id)}, {sql_literal(run_id)}, NULL, size, created_seq
                FROM {plan.created}""")
            con.execute(f"""
                UPDATE {t("records")} r SET content_hash = s.content_hash, changed_run = {sql_literal(run_id)},
                    gone_run = NULL
                FROM {plan.seen} s WHERE NOT s.new AND r.source_dataset = s.source_dataset
                    AND r.unique_id = s.unique_id""")
            con.execute(f"""
                INSERT INTO {t("records")}
                SELECT source_dataset, unique_id, content_hash, {sql_literal(run_id)}, NULL, NULL
                FROM {plan.seen} WHERE new""")
            con.execute(f"""
                UPDATE {t("records")} r SET gone_run = {sql_literal(run_id)}
                FROM {plan.gone} g WHERE r.source_dataset = g.source_dataset AND r.unique_id = g.unique_id""")
            if plan.inputs:
                self._write_values(plan)
            if plan.resolutions:
                con.execute(f"INSERT INTO {t('resolutions')} SELECT * FROM {plan.resolutions}")
            con.execute(f"INSERT INTO {t('events')} SELECT {', '.join(EVENT_COLUMNS)} FROM {plan.events}")
            con.execute(f"""
                INSERT INTO {t("runs")} VALUES ({sql_literal(run_id)}, now(),
                    (SELECT count(*) FROM {t("membership")}),
                    (SELECT count(*) FROM {t("entities")} WHERE status = 'active'),
                    (SELECT count(*) FROM {plan.events}))""")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if indexed:
            try:
                serving_indexes.ensure(con, ALIAS)
            except duckdb.Error as e:
                logging.getLogger("splink_er").warning(
                    "the entity store's serving indexes were not rebuilt (%s); `splink-er serve` or "
                    "`splink-er entities index` builds them",
                    e,
                )

    def values_table(self, source: str) -> str:
        return f"{ALIAS}.{quote_ident(blocking_keys.tables(source)[0])}"

    def keys_table(self, source: str) -> str:
        """The hashed blocking keys of `values_table(source)` (blocking_keys.py)."""
        return f"{ALIAS}.{quote_ident(blocking_keys.tables(source)[1])}"

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> type of one of the store's tables (empty when there is none)."""
        return blocking_keys.table_columns(self.con, ALIAS, table)

    def has_values(self, source: str) -> bool:
        return bool(self.columns(blocking_keys.tables(source)[0]))

    def _columns(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()]

    def values_match(self, source: str, table: str) -> bool:
        """Whether the stored values of `source` have the columns of `table` (the same settings made both)."""
        return self._columns(self.values_table(source)) == self._columns(table)

    def require_values_match(self, source: str, table: str) -> None:
        """InputError unless `values_match`: new records cannot be compared with records normalized otherwise."""
        if not self.values_match(source, table):
            raise InputError(
                f"the store's records of {source!r} have columns {self._columns(self.values_table(source))}, these "
                f"settings make {self._columns(table)}: run `splink-er run` with these settings first"
            )

    def _write_values(self, plan) -> None:
        """Each record's normalized values (inside the commit's transaction): rows of new, changed or returning
        records replaced, rows of records gone deleted; the whole table rewritten when the columns changed (new
        settings)."""
        con = self.con
        for source, table in plan.inputs.items():
            vt = self.values_table(source)
            exists = self.has_values(source)
            if exists and not self.values_match(source, table):
                if not plan.all_records:
                    self.require_values_match(source, table)  # raises, naming both column lists
                con.execute(f"DROP TABLE {vt}")
                exists = False
            changed = None  # the rows whose values changed (None: the table was written whole)
            if not exists:
                con.execute(f"CREATE TABLE {vt} AS SELECT * FROM {table}")
            else:
                con.execute(f"""
                    DELETE FROM {vt} v USING (SELECT source_dataset, unique_id FROM {plan.seen} WHERE NOT new
                                              UNION ALL SELECT source_dataset, unique_id FROM {plan.gone}) x
                    WHERE v.source_dataset = x.source_dataset AND v.unique_id = x.unique_id""")
                con.execute(f"""
                    INSERT INTO {vt} SELECT t.* FROM {table} t
                    SEMI JOIN {plan.seen} s USING (source_dataset, unique_id)""")
                changed = (
                    f"SELECT source_dataset, unique_id FROM {plan.seen} "
                    f"UNION ALL SELECT source_dataset, unique_id FROM {plan.gone}"
                )
            blocking_keys.write(con, ALIAS, source, plan.key_rules, changed)  # every write, so keys never lag

    # ---- reading --------------------------------------------------------------------------------------
    @classmethod
    def reader(cls, path: str | Path) -> EntityStore:
        """The store opened read-only on a connection of its own (for the CLI and notebooks)."""
        import duckdb

        return cls(duckdb.connect(), path, read_only=True)

    def df(self, sql: str, params: list | None = None):
        return self.con.execute(sql, params or []).df()

    def survivor(self, entity_id: str) -> str | None:
        """The active entity an id now belongs to: itself, or the entity it was merged into (followed)."""
        seen = set()
        while entity_id is not None and entity_id not in seen:
            seen.add(entity_id)
            row = self.con.execute(
                f"SELECT status, merged_into FROM {self.table('entities')} WHERE entity_id = ?", [entity_id]
            ).fetchall()
            if not row:
                return None
            status, merged_into = row[0]
            if status == "active":
                return entity_id
            entity_id = merged_into
        return None

    def entity(self, entity_id: str) -> dict:
        """An entity's row, its records and its events; InputError naming the store when it has no such id."""
        t = self.table
        row = self.df(f"SELECT * FROM {t('entities')} WHERE entity_id = ?", [entity_id])
        if row.empty:
            raise InputError(f"no entity {entity_id!r} in {self.path}")
        return {
            "entity": row.iloc[0].to_dict(),
            "now": self.survivor(entity_id),
            "records": self.df(
                f"SELECT source_dataset, unique_id, since_run FROM {t('membership')} WHERE entity_id = ? "
                "ORDER BY source_dataset, unique_id",
                [entity_id],
            ),
            "events": self.df(
                f"SELECT * FROM {t('events')} WHERE entity_id = ? OR other_entity_id = ? ORDER BY time, seq",
                [entity_id, entity_id],
            ),
        }

    def runs(self):
        return self.df(f"SELECT * FROM {self.table('runs')} ORDER BY time")

    def changes(self, run_id: str | None = None):
        """The events of one run (default: the latest run that committed)."""
        runs = self.runs()
        if runs.empty:
            raise InputError(f"{self.path} holds no run yet")
        rid = run_id or runs["run_id"].iloc[-1]
        if rid not in set(runs["run_id"]):
            raise InputError(f"{self.path} has no run {rid!r}; its runs: {', '.join(runs['run_id'])}")
        out = self.df(f"SELECT * FROM {self.table('events')} WHERE run_id = ? ORDER BY seq", [rid])
        out.attrs["run_id"] = rid
        return out

    def export(self, folder: str | Path) -> list[Path]:
        """Every table of the store as Parquet in `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        values = [
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND table_name LIKE 'values__%'",
                [ALIAS],
            ).fetchall()
        ]
        for name in ("entities", "membership", "records", "events", "runs", "resolutions", *values):
            path = folder / f"{name}.parquet"
            self.con.execute(f"COPY {self.table(quote_ident(name))} TO {sql_literal(path)} (FORMAT parquet)")
            written.append(path)
        return written

    def detach(self) -> None:
        self.con.execute(f"DETACH DATABASE IF EXISTS {ALIAS}")
