"""SQL text and DuckDB relations: quoting, the columns a SQL snippet reads, registered DataFrames, dropping
relations, and the number of pairs a job could compare.

A leaf module: everything that pastes a name or a value into SQL goes through `quote_ident` or `sql_literal`,
so a path or a source name with a quote in it is data, never syntax.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager


def quote_ident(name: str) -> str:
    """An identifier as DuckDB SQL.

    Example:
        >>> quote_ident('a"b')
        '"a""b"'
    """
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value) -> str:
    """A string (or path) as a DuckDB string literal.

    Example:
        >>> sql_literal("/tmp/it's here")
        "'/tmp/it''s here'"
    """
    return "'" + str(value).replace("'", "''") + "'"


def columns_in_sql(sql: str) -> set[str]:
    """Input column names a comparison / blocking / gate SQL refers to (`x_l`, `l.x` and `x` all give `x`).

    Example:
        >>> sorted(columns_in_sql("l.surname = r.surname AND dob_l = dob_r"))
        ['dob', 'surname']
    """
    return set(_columns_in_sql(sql))


@functools.lru_cache(maxsize=4096)  # the same settings' SQL is parsed by every job (and every resolve) again
def _columns_in_sql(sql: str) -> frozenset[str]:
    import sqlglot  # only users' SQL needs parsing: keep it off the import path
    from sqlglot import exp

    from .errors import InputError

    if sql.strip().upper() == "ELSE":
        return set()
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise InputError(f"Cannot parse SQL {sql!r}: {e}") from None
    names = set()
    for col in tree.find_all(exp.Column):
        names.add(col.name if col.table in ("l", "r") else re.sub(r"_(l|r)$", "", col.name))
    return frozenset(names)


@contextmanager
def registered(con, name: str, frame) -> Iterator[str]:
    """Register a DataFrame as `name` on a DuckDB connection for the length of a `with` block.

    Example:
        >>> import duckdb, pandas as pd
        >>> con = duckdb.connect()
        >>> with registered(con, "t", pd.DataFrame({"x": [1, 2]})) as t:
        ...     con.execute(f"SELECT sum(x) FROM {t}").fetchall()[0][0]
        3
    """
    con.register(name, frame)
    try:
        yield name
    finally:
        con.unregister(name)


def interrupted(error: BaseException) -> bool:
    """Whether `error` is a Ctrl-C that reached DuckDB during a query: DuckDB raises it as an ordinary error
    (RuntimeError 'Query interrupted', or its InterruptException), which a handler of `Exception` would swallow."""
    import duckdb

    return isinstance(error, duckdb.InterruptException) or (
        isinstance(error, RuntimeError) and "interrupted" in str(error).lower()
    )


def drop_relation(con, name: str) -> None:
    """Drop a table or view of this name, whichever it is (outputs switch between the two by job size).
    Tried as a table first: asking the catalog which it is cost more than the drop (a resolve drops ~15)."""
    import duckdb

    try:
        con.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
    except duckdb.CatalogException:  # it is a view
        con.execute(f"DROP VIEW IF EXISTS {quote_ident(name)}")


def pairs_in_groups(link_type: str, sum_of_squared_totals: int, sum_of_squared_parts: int, total: int) -> int:
    """Pairs a job could compare within groups of records (the whole input, or the records of one entity), from
    each group's size T and the sizes n of its parts per source: sum over groups of (T^2 - T) / 2, or of
    (T^2 - sum n^2) / 2 for link_only (no pair inside one source). The one pair-count formula of the library.
    """
    within_sources = sum_of_squared_parts if link_type == "link_only" else total
    return int(sum_of_squared_totals - within_sources) // 2


def possible_pairs(link_type: str, row_counts: list[int]) -> int:
    """Record pairs a job could compare without blocking: the prior's denominator.

    Example:
        >>> possible_pairs("dedupe_only", [1000]), possible_pairs("link_only", [10, 20])
        (499500, 200)
    """
    n = list(row_counts)
    total = sum(n)
    return pairs_in_groups(link_type, total * total, sum(x * x for x in n), total)


class Relation:
    """A DuckDB table or view one step produced, handed to the next step instead of a fixed table name (as
    Splink hands SplinkDataFrames around). `sql` fills `{this}` in a query with the relation's name.

    Example:
        >>> import duckdb
        >>> con = duckdb.connect()
        >>> _ = con.execute("CREATE TABLE t AS SELECT range AS x FROM range(5)")
        >>> t = Relation(con, "t")
        >>> t.count(), t.df("SELECT max(x) AS m FROM {this}")["m"][0]
        (5, np.int64(4))
    """

    def __init__(self, con, name: str) -> None:
        self.con, self.name = con, name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Relation({self.name!r})"

    def sql(self, query: str = "SELECT * FROM {this}") -> str:
        return query.replace("{this}", self.name)

    def df(self, query: str = "SELECT * FROM {this}"):
        """The query's result as a pandas DataFrame (for small results: heavy data stays in DuckDB)."""
        return self.con.execute(self.sql(query)).df()

    def count(self) -> int:
        return self.con.execute(f"SELECT count(*) FROM {self.name}").fetchall()[0][0]
