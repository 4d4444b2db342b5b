"""Read sources into DuckDB, validate them before any compute, register them with Splink.

Every source becomes one DuckDB table `input_<name>` with `unique_id` (text), `source_dataset` (the source
name) and its columns, so pair keys look the same for every job type.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from .errors import InputError
from .normalize import normalizer_for
from .settings import Settings, SourceSettings
from .sql import columns_in_sql, quote_ident, registered, sql_literal


@dataclass
class LoadedSources:
    """The registered input tables of one job."""

    tables: dict[str, str]  # source name -> DuckDB table name
    row_counts: dict[str, int]
    input_hashes: dict[str, str]
    columns: dict[str, list[str]] = field(default_factory=dict)


def _reading_advice(src: SourceSettings, error: Exception) -> str:
    """DuckDB's reading error in this library's terms: which setting to change (DuckDB names its own options)."""
    text = str(error)
    where = f"sources[{src.name}].read"
    if "not utf-8 encoded" in text or "Invalid unicode" in text:
        return f"it is not {src.read.encoding} text; set {where}.encoding (utf-8, utf-16 or latin-1)"
    if "maximum line size" in text.lower():
        return f"a line is longer than the limit; raise {where}.max_line_size (bytes)"
    return text.splitlines()[0]


def _read_raw(
    con: duckdb.DuckDBPyConnection, src: SourceSettings, path: Path | None, frame: pd.DataFrame | None
) -> str:
    raw = f"raw_{src.name}"
    if frame is not None:
        with registered(con, f"{raw}_frame", frame) as view:
            # A column holding only None reads as DuckDB's NULL type, which nothing can compare: text, as a CSV.
            untyped = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall() if r[1] == '"NULL"' or r[1] == "NULL"]
            cast = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in untyped)
            replace = f" REPLACE ({cast})" if cast else ""
            con.execute(f"CREATE OR REPLACE TABLE {raw} AS SELECT *{replace} FROM {view}")
        return raw
    if path is None:
        raise InputError(
            f"Source {src.name!r} has no path: set sources[].path, or pass data={{'{src.name}': df}} from Python."
        )
    if not path.exists():
        raise InputError(f"Source {src.name!r}: file not found: {path} (paths are relative to the settings file).")
    if path.is_dir() or path.stat().st_size == 0:
        raise InputError(
            f"Source {src.name!r}: {path} is {'a directory' if path.is_dir() else 'empty'}; give a CSV or Parquet file."
        )
    fmt, reader = _reader(src, path)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {raw} AS SELECT * FROM {reader}")
    except duckdb.Error as e:
        raise InputError(f"Source {src.name!r}: cannot read {path} as {fmt}: {_reading_advice(src, e)}") from None
    return raw


def _reader(src: SourceSettings, path: Path) -> tuple[str, str]:
    """(format, DuckDB table function reading the file)."""
    fmt = src.format or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt == "parquet":
        return fmt, f"read_parquet({sql_literal(str(path))})"
    # All text: ids like 00123 keep their zeros and no column is mistyped from a sample of rows.
    r = src.read
    options = [f"encoding={sql_literal(r.encoding)}"]
    options += [f"delim={sql_literal(r.delimiter)}"] if r.delimiter else []
    options += [f"max_line_size={int(r.max_line_size)}"] if r.max_line_size else []
    return fmt, f"read_csv({sql_literal(str(path))}, all_varchar=true, header=true, {', '.join(options)})"


def file_columns(src: SourceSettings, path: Path) -> list[str]:
    """The columns of a source's file, read from its header (or Parquet schema) alone; [] when unreadable."""
    con = duckdb.connect()
    try:
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_reader(src, path)[1]}").fetchall()]
    except duckdb.Error:
        return []
    finally:
        con.close()


def _normalise(con: duckdb.DuckDBPyConnection, src: SourceSettings, raw: str) -> str:
    """Trim, prepare and derive as a chain of views over the raw table: nothing is copied until the input table
    is built from the last view (at 1M records the copies per step cost more than the normalizing itself)."""
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {raw}").fetchall()}
    cols = list(types)
    select = []
    for c in cols:
        out = c.strip() if src.trim_whitespace else c
        expr = quote_ident(c)
        if src.trim_whitespace and types[c] == "VARCHAR":
            expr = f"NULLIF(TRIM({expr}), '')"
        select.append(f"{expr} AS {quote_ident(out)}")
    view = f"clean_{src.name}_0"
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(select)} FROM {raw}")
    for i, step in enumerate(src.prepare):
        view = _prepare(con, src, view, step, i)
    if src.derive:
        derived = ", ".join(f"({sql}) AS {quote_ident(col)}" for col, sql in src.derive.items())
        out = f"clean_{src.name}_derived"
        try:
            con.execute(f"CREATE OR REPLACE VIEW {out} AS SELECT *, {derived} FROM {view}")
            con.execute(f"DESCRIBE {out}").fetchall()  # binds the SQL now, so a bad expression is reported here
        except duckdb.Error as e:
            raise InputError(f"sources[{src.name}].derive: a SQL expression failed: {e}") from None
        view = out
    return view


def _prepare(con: duckdb.DuckDBPyConnection, src: SourceSettings, view: str, step, i: int) -> str:
    """A view adding a normalizer's columns to `view`: SQL rules inline, Python ones once per distinct value of
    their column (a small lookup table joined back)."""
    normalizer = normalizer_for(step)
    where = f"sources[{src.name}].prepare[{i}]"
    have = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
    for c in step.inputs:
        if c not in have:
            raise InputError(f"{where}: column {c!r} not found; columns: {', '.join(have)}")
    new = normalizer.output_columns()
    in_place = normalizer.in_place and new == [step.column]  # a clean step rewriting its column
    clash = [] if in_place else sorted(set(new) & set(have))
    if clash:
        raise InputError(
            f"{where}: the {step.kind} columns {clash} already exist in source {src.name!r}; "
            "set `prefix` / `into` on the step or rename those columns"
        )
    col = quote_ident(step.column)
    out = f"clean_{src.name}_{i + 1}"
    # The input is computed once in an inner query: the e-mail rules read it a dozen times (0.4 s less at 1M rows).
    expr = normalizer.sql_expression("__value")
    if expr is not None and not con.execute(f"SELECT 1 FROM {view} WHERE {col} IS NOT NULL LIMIT 1").fetchall():
        # Every value null (one record sent to resolve without an e-mail): DuckDB 2.0 fails to bind some rules
        # over a column its statistics know to be all null, and the answer is null anyway, of the rule's type
        # (read from the rule over one made-up value: a date rule gives DATE).
        if in_place:
            return view  # nothing to rewrite
        kind = con.execute(f"DESCRIBE SELECT {expr} AS v FROM (SELECT 'x'::VARCHAR AS __value)").fetchall()[0][1]
        con.execute(
            f"CREATE OR REPLACE VIEW {out} AS SELECT *, CAST(NULL AS {kind}) AS {quote_ident(new[0])} FROM {view}"
        )
        return out
    if expr is not None:  # a rule DuckDB runs itself, vectorised
        written = f"{expr} AS {quote_ident(new[0])}"
        select = f"* EXCLUDE (__value) REPLACE ({written})" if in_place else f"* EXCLUDE (__value), {written}"
        con.execute(
            f"CREATE OR REPLACE VIEW {out} AS SELECT {select} "
            f"FROM (SELECT *, {normalizer.sql_input(col)} AS __value FROM {view})"
        )
        return out
    if normalizer.reads_rows:  # one lookup row per distinct combination of the columns it reads
        cols = [quote_ident(c) for c in step.inputs]
        raws = [f"__raw{k}" for k in range(len(cols))]
        read = ", ".join(f"CAST({c} AS VARCHAR)" for c in cols)
        values = con.execute(
            f"SELECT DISTINCT {read} FROM {view} WHERE {' OR '.join(f'{c} IS NOT NULL' for c in cols)}"
        ).fetchall()
        rows = [list(r[0]) + r[1:] for r in normalizer.normalize_values([tuple(v) for v in values])]
        on = " AND ".join(f"CAST(c.{c} AS VARCHAR) IS NOT DISTINCT FROM p.{r}" for c, r in zip(cols, raws))
    else:
        raws = ["__raw"]
        values = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT CAST({col} AS VARCHAR) FROM {view} WHERE {col} IS NOT NULL"
            ).fetchall()
        ]
        rows = normalizer.normalize_values(values)
        on = f"CAST(c.{col} AS VARCHAR) = p.__raw"
    frame = pd.DataFrame(rows, columns=raws + new)
    frame = frame.astype(dict.fromkeys(raws, "string") | dict(zip(new, normalizer.output_dtypes(), strict=True)))
    cast = [
        f"CAST({quote_ident(n)} AS {t}) AS {quote_ident(n)}" for n, t in zip(new, normalizer.output_sql_types()) if t
    ]
    lookup = f"prepared_{src.name}_{i}"
    with registered(con, "__prepared", frame):
        replace = f" REPLACE ({', '.join(cast)})" if cast else ""
        con.execute(f"CREATE OR REPLACE TABLE {lookup} AS SELECT *{replace} FROM __prepared")
    con.execute(
        f"CREATE OR REPLACE VIEW {out} AS SELECT c.*, {', '.join('p.' + quote_ident(n) for n in new)} "
        f"FROM {view} c LEFT JOIN {lookup} p ON {on}"
    )
    return out


def _drop_intermediates(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """The raw table, the normalizing views and lookup tables of one source: the input table holds the result."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_name = ? "
        "OR starts_with(table_name, ?) OR starts_with(table_name, ?)",
        [f"raw_{name}", f"clean_{name}_", f"prepared_{name}_"],
    ).fetchall()
    for table, kind in sorted(rows, key=lambda r: r[1] != "VIEW"):  # views first: they read the tables
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {quote_ident(table)}")


def load_sources(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    required_columns: set[str],
    data: dict[str, pd.DataFrame] | None = None,
    allow_empty: bool = False,
) -> LoadedSources:
    """Read and validate every source; raise InputError before any Splink work if something is wrong.
    `allow_empty`: a source may hold no record (resolve: the new records of one source, the stored ones added
    after)."""
    data = data or {}
    unknown = set(data) - {s.name for s in settings.sources}
    if unknown:
        raise InputError(
            f"data= names {sorted(unknown)} match no source; sources are {[s.name for s in settings.sources]}"
        )
    truth = settings.truth_column
    judge_truth = settings.judge_truth_column
    for t, lineage in truth_columns(settings).items():
        if t in required_columns:
            what = f"The truth column {t!r}" if lineage == "truth" else f"Column {t!r} ({lineage})"
            raise InputError(
                f"{what} is also used as a matching feature (comparison, blocking rule or gate). "
                "Ground truth must never be matched on: remove it from comparisons/blocking or choose another truth column."
            )
    loaded = LoadedSources(tables={}, row_counts={}, input_hashes={})
    seen_columns: set[str] = set()
    for src in settings.sources:
        path = settings.input_path(src) if src.name not in data else None
        clean = _normalise(con, src, _read_raw(con, src, path, data.get(src.name)))
        cols = [r[0] for r in con.execute(f"DESCRIBE {clean}").fetchall()]
        needed = set(required_columns) | {src.id_column} | {t for t in (truth, judge_truth) if t}
        missing = sorted(needed - set(cols) - {"unique_id", "source_dataset"})
        if missing:
            raise InputError(
                f"Source {src.name!r} lacks column(s) {missing}. It has: {cols}. "
                "Rename them in the file, add them under sources[].derive, or change the comparisons/blocking rules."
            )
        n, n_null, n_distinct = con.execute(
            f"SELECT count(*), count(*) - count({quote_ident(src.id_column)}), count(DISTINCT {quote_ident(src.id_column)}) FROM {clean}"
        ).fetchall()[0]
        if n == 0 and not allow_empty:
            raise InputError(f"Source {src.name!r} is empty: there is nothing to match.")
        if n_null:
            raise InputError(
                f"Source {src.name!r}: id column {src.id_column!r} is null in {n_null} of {n} rows; every record needs an id."
            )
        if n_distinct != n:
            dup = con.execute(
                f"SELECT {quote_ident(src.id_column)}, count(*) c FROM {clean} GROUP BY 1 HAVING c > 1 ORDER BY c DESC LIMIT 3"
            ).fetchall()
            raise InputError(
                f"Source {src.name!r}: id column {src.id_column!r} is not unique ({n - n_distinct} duplicate rows; "
                f"e.g. {[d[0] for d in dup]}). Choose a unique id column or deduplicate the file."
            )
        # Only what matching, judging and evaluation use; kept columns a source lacks are null there, so
        # sources with different schemas line up (link jobs compare columns of the same name).
        keep = sorted((needed | set(settings.columns_to_keep)) - {src.id_column, "unique_id", "source_dataset"})
        select = [quote_ident(c) if c in cols else f"CAST(NULL AS VARCHAR) AS {quote_ident(c)}" for c in keep]
        table = f"input_{src.name}"
        try:  # the normalizing views run here, so an expression that fails on some row fails here
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT CAST({quote_ident(src.id_column)} AS VARCHAR) AS unique_id, "
                f"{sql_literal(src.name)} AS source_dataset{''.join(', ' + x for x in select)} FROM {clean}"
            )
        except duckdb.Error as e:
            raise InputError(
                f"Source {src.name!r}: preparing the records failed (sources[{src.name}].prepare / derive): {e}"
            ) from None
        _drop_intermediates(con, src.name)
        seen_columns |= set(cols)
        loaded.tables[src.name] = table
        loaded.row_counts[src.name] = n
        loaded.columns[src.name] = keep
        loaded.input_hashes[src.name] = _input_hash(path, con, table)
    absent = sorted(set(settings.columns_to_keep) - seen_columns)
    if absent:
        raise InputError(f"columns_to_keep {absent} are in no source; remove them or add them to a source.")
    return loaded


def _input_hash(path: Path | None, con: duckdb.DuckDBPyConnection, table: str) -> str:
    if path is not None:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    # A DataFrame from Python: hash its content as loaded.
    (h,) = con.execute(f"SELECT hash(list(t ORDER BY unique_id)) FROM {table} t").fetchall()[0]
    return f"{h:016x}"[:16]


def record_lookup(
    con: duckdb.DuckDBPyConnection, loaded: LoadedSources, keys: list[tuple[str, str]], columns: list[str]
) -> dict:
    """(source_dataset, unique_id) -> {column: value} for the given records, None for nulls."""
    if not keys:
        return {}
    wanted = pd.DataFrame(keys, columns=["source_dataset", "unique_id"]).drop_duplicates()
    out = {}
    with registered(con, "wanted_keys", wanted):
        for name, table in loaded.tables.items():
            have = [c for c in columns if c in loaded.columns[name]]
            sel = ", ".join(f"t.{quote_ident(c)}" for c in have)
            rows = con.execute(
                f"SELECT t.source_dataset, t.unique_id{', ' + sel if sel else ''} FROM {table} t "
                "JOIN wanted_keys w USING (source_dataset, unique_id)"
            ).fetchall()
            for row in rows:
                out[(row[0], row[1])] = {c: (None if v is None else v) for c, v in zip(have, row[2:])}
    return out


def column_lookup(con: duckdb.DuckDBPyConnection, loaded: LoadedSources, column: str) -> dict[tuple[str, str], object]:
    """(source_dataset, unique_id) -> value of `column` for every record where it is not null (e.g. the truth)."""
    out = {}
    for table in loaded.tables.values():
        rows = con.execute(
            f"SELECT source_dataset, unique_id, {quote_ident(column)} FROM {table} "
            f"WHERE {quote_ident(column)} IS NOT NULL"
        ).fetchall()
        out.update(((sd, uid), v) for sd, uid, v in rows)
    return out


def check_rules_run(con: duckdb.DuckDBPyConnection, settings: Settings, loaded: LoadedSources) -> None:
    """Every SQL blocking rule (blocking_rules, bootstrap rules) and every gate bound against the loaded records
    of each pair of sources, so a rule that parses but cannot run (a type mismatch, an unknown function) is an
    error naming it before any compute."""
    tables = list(loaded.tables.values())
    pairs = [(a, b) for a in tables for b in tables]
    sections = {
        "blocking_rules": settings.blocking_rules,
        "bootstrap.deterministic_rules": settings.bootstrap.deterministic_rules,
        "bootstrap.em_blocking_rules": settings.bootstrap.em_blocking_rules,
    }
    for section, rules in sections.items():
        for i, rule in enumerate(rules):
            if isinstance(rule, list):
                continue  # columns, checked with the other required columns
            for a, b in pairs:
                _bind(con, f"SELECT 1 FROM {a} AS l, {b} AS r WHERE ({rule}) LIMIT 0", f"{section}[{i}]", rule)
    routing_rules = [("gates", g) for g in settings.routing.gates] + [
        ("accept_rules", a) for a in settings.routing.accept_rules
    ]
    for section, gate in routing_rules:  # over Splink's pair columns: <col>_l, <col>_r
        cols = sorted(columns_in_sql(gate.sql))
        renamed = ", ".join(
            f"l.{quote_ident(c)} AS {quote_ident(c + '_l')}, r.{quote_ident(c)} AS {quote_ident(c + '_r')}"
            for c in cols
        )
        for a, b in pairs:
            sql = f"SELECT 1 FROM (SELECT {renamed or '1 AS x'} FROM {a} AS l, {b} AS r) WHERE ({gate.sql}) LIMIT 0"
            _bind(con, sql, f"routing.{section}[{gate.name}]", gate.sql)


def _bind(con, sql: str, where: str, rule: str) -> None:
    try:
        con.execute(sql).fetchall()
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        raise InputError(f"{where}: DuckDB cannot run `{rule}`: {first}") from None


def truth_columns(settings: Settings) -> dict[str, str]:
    """The truth columns and every column computed from one, through `prepare` and `derive` (transitively), with
    how each reads the truth: a derived copy of the truth is the truth, for the matching guard, learned blocking
    and what a judge is shown.

    Example:
        >>> from splink_er import load_settings, demo_settings_path
        >>> s = load_settings(demo_settings_path(), ["sources.0.derive={c2: 'upper(cluster)', c3: 'c2 || city'}"])
        >>> truth_columns(s)
        {'cluster': 'truth', 'c2': 'sources[fake_1000].derive.c2 reads cluster', 'c3': 'sources[fake_1000].derive.c3 reads c2'}
    """
    tainted = {t: "truth" for t in (settings.truth_column, settings.judge_truth_column) if t}
    for src in settings.sources:
        changed = True
        while changed:  # derive expressions may read columns derived before them
            changed = False
            for i, step in enumerate(src.prepare):
                read = [c for c in step.inputs if c in tainted]
                if read:
                    for col in normalizer_for(step).output_columns():
                        if col not in tainted:
                            tainted[col] = f"sources[{src.name}].prepare[{i}] normalizes {read[0]}"
                            changed = True
            for col, sql in src.derive.items():
                try:
                    read = sorted(columns_in_sql(sql) & set(tainted))
                except InputError as e:
                    raise InputError(f"sources[{src.name}].derive.{col}: {e}") from None
                if read and col not in tainted:
                    tainted[col] = f"sources[{src.name}].derive.{col} reads {read[0]}"
                    changed = True
    return tainted


def _not_resolved(settings: Settings, missing: list[str]) -> list[str]:
    """Of `missing` ("source:id"), those that did not arrive by `resolve` either (the entity store holds those)."""
    path = settings.entity_store_path
    if not missing or not settings.entities.enabled or not path.exists():
        return missing
    with duckdb.connect() as con:
        try:
            con.execute(f"ATTACH {sql_literal(path)} AS store (READ_ONLY)")
            known = {
                f"{sd}:{uid}"
                for sd, uid in con.execute(
                    "SELECT source_dataset, unique_id FROM store.records WHERE gone_run IS NULL AND "
                    "source_dataset || ':' || unique_id IN ?",
                    [missing],
                ).fetchall()
            }
        except duckdb.Error:  # a store being written: the inputs' answer stands
            return missing
    return [m for m in missing if m not in known]


def missing_records(settings: Settings, records: list[tuple[str, str]]) -> list[str]:
    """Of `records` (source, id), those ("source:id") no input holds nor `resolve` added; a source the settings do
    not name holds none. Sources given as DataFrames are not checked. Reads only the id columns."""
    names = {s.name: s for s in settings.sources}
    missing = [f"{src}:{uid}" for src, uid in dict.fromkeys(records) if src not in names]
    with duckdb.connect() as con:
        for name in sorted({src for src, _ in records} & set(names)):
            src = names[name]
            path = settings.input_path(src)
            if path is None:  # a DataFrame given from Python: nothing to check against here
                continue
            raw = _read_raw(con, src, path, None)
            ids = sorted({uid for s, uid in records if s == name})
            col = f"CAST({quote_ident(src.id_column)} AS VARCHAR)"
            col = f"TRIM({col})" if src.trim_whitespace else col
            found = {
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT {col} FROM {raw} WHERE {col} IN ({', '.join(sql_literal(i) for i in ids)})"
                ).fetchall()
            }
            missing += [f"{name}:{i}" for i in ids if i not in found]
    return _not_resolved(settings, missing)


def check_records_exist(settings: Settings, records: list[tuple[str, str]]) -> None:
    """InputError naming every (source, id) that is not a record of the inputs: a label on a record that does not
    exist (a typo, the sides swapped) would otherwise be stored and never used. Reads only the id columns."""
    names = {s.name: s for s in settings.sources}
    unknown_sources = sorted({src for src, _ in records} - set(names))
    if unknown_sources:
        raise InputError(f"no source named {', '.join(map(repr, unknown_sources))}; the sources are {list(names)}")
    missing = missing_records(settings, records)
    if missing:
        raise InputError(
            f"record(s) {', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''} not found in the inputs "
            f"(ids are matched on sources[].id_column; check the ids and which source each side is from: "
            "--source-l / --source-r)"
        )
